"""A minimal in-process stand-in for the broker's messaging path, to test the harness on its own.

It trusts every hello (no signature or membership check), acks each send with a fresh messageId before
pushing it to one connection of the target pubkey, and records push_acks. `duplicate_every` / `drop_every`
make it misbehave on purpose so the harness's counting can be checked.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import defaultdict

from websockets.asyncio.server import serve

from protocol.crypto import SigningKeypair


def make_roster(peers: int, url: str | None = None) -> dict:
    members = []
    for n in range(peers):
        keys = SigningKeypair.generate()
        members.append({"memberId": f"member{n:027d}", "pubkey": keys.public_hex, "secretKey": keys.secret_hex})
    return {"meshId": "m" * 32, "brokerUrl": url, "members": members}


class FakeBroker:
    def __init__(self, duplicate_every: int = 0, drop_every: int = 0, delivery_ack: bool = True) -> None:
        self.duplicate_every = duplicate_every
        self.drop_every = drop_every
        self.delivery_ack = delivery_ack
        self.by_pubkey: dict[str, list] = defaultdict(list)
        self.sends = 0
        self.push_acked: set[str] = set()
        self.server = None
        self.port = 0

    async def start(self) -> FakeBroker:
        self.server = await serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, ws) -> None:
        pubkey = None
        try:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "hello":
                    pubkey = msg["pubkey"]
                    self.by_pubkey[pubkey].append(ws)
                    ack = {"type": "hello_ack", "presenceId": secrets.token_hex(16)}
                    if self.delivery_ack and msg.get("deliveryAck"):
                        ack["deliveryAck"] = True
                    await ws.send(json.dumps(ack))
                elif kind == "send":
                    await self._send(ws, pubkey, msg)
                elif kind == "push_ack":
                    self.push_acked.update(msg.get("messageIds") or [])
        finally:
            if pubkey:
                self.by_pubkey[pubkey].remove(ws)

    async def _send(self, ws, sender: str, msg: dict) -> None:
        self.sends += 1
        targets = self.by_pubkey.get(msg["targetSpec"]) or []
        if not targets:
            await ws.send(json.dumps({"type": "ack", "id": msg.get("id", ""), "messageId": "", "queued": False,
                                      "error": "no connected peer for target"}))
            return
        message_id = secrets.token_hex(16)
        await ws.send(json.dumps({"type": "ack", "id": msg.get("id", ""), "messageId": message_id, "queued": True}))
        if self.drop_every and self.sends % self.drop_every == 0:
            return
        push = json.dumps({"type": "push", "messageId": message_id, "meshId": "m" * 32, "senderPubkey": sender,
                           "priority": msg.get("priority", "next"), "nonce": msg["nonce"],
                           "ciphertext": msg["ciphertext"], "createdAt": "2026-01-01T00:00:00.000Z"})
        copies = 2 if self.duplicate_every and self.sends % self.duplicate_every == 0 else 1
        for _ in range(copies):
            await targets[0].send(push)


async def serve_forever(port: int = 0) -> None:  # handy for trying the harness by hand
    broker = await FakeBroker().start()
    print(broker.url, flush=True)
    await asyncio.Future()
