"""File transfer benchmark against a running server (see `bench.run_server`): one roster member shares a file of
`--mib` MiB with another, end to end as our client does it (sealed while it streams up, opened while it streams
down), `--runs` times. Reports upload and download MiB/s (plaintext) and the server's RSS rise during each.

    python -m bench.files --roster R --url U --pids P [--mib 50] [--runs 3] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

from bench.procstats import ServerSampler
from bench.roster import load_roster
from bench.topics import open_peer
from peer.files import http_base
from protocol.crypto import box_decrypt, box_encrypt
from protocol.encoding import b64_decode, b64_encode
from protocol.files import (
    FileMeta,
    StreamOpener,
    new_file_key,
    parse_sealed_key,
    seal_stream,
    sealed_key_text,
    sealed_size,
)

MIB = 1024 * 1024


async def request(ws, frame: dict) -> dict:
    req_id = f"bench-{time.time_ns()}"
    await ws.send(json.dumps({**frame, "_reqId": req_id}))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("_reqId") == req_id:
            if reply.get("type") == "error":
                raise RuntimeError(reply)
            return reply


async def one_run(args, roster, sharer, fetcher, base: str, data: bytes) -> dict:
    alice, bob = roster.members[0], roster.members[1]
    key = new_file_key()
    meta = FileMeta("bench.bin", len(data))
    nonce, ciphertext = box_encrypt(b64_encode(key).encode(), recipient_ed25519_hex=bob.pubkey,
                                    sender_secret_hex=alice.secret_key)
    total = sealed_size(meta)
    reg = await request(sharer, {"type": "register_file", "name": meta.name, "size": meta.size, "sealedSize": total,
                                 "targetSpec": bob.pubkey, "persistent": False,
                                 "keys": [{"peerPubkey": bob.pubkey, "sealedKey": sealed_key_text(nonce, ciphertext)}]})

    async def body():
        for record in seal_stream((data[i:i + 4 * 65536] for i in range(0, len(data), 4 * 65536)), meta=meta, key=key,
                                  mesh_id=roster.mesh_id):
            yield record

    pids = [int(p) for p in args.pids.split(",") if p]
    up = ServerSampler(pids, interval=args.interval)
    up.start()
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.post(f"{base}/upload", content=body(), headers={
            "Authorization": f"Bearer {reg['uploadToken']}", "Content-Length": str(total)})
    upload_s = time.perf_counter() - started
    await up.stop()
    assert response.status_code == 200, response.text
    got = await request(fetcher, {"type": "get_file", "fileId": reg["fileId"]})
    wrap_nonce, wrap_ct = parse_sealed_key(got["sealedKey"])
    opened_key = b64_decode(box_decrypt(wrap_nonce, wrap_ct, sender_ed25519_hex=got["sealedBy"],
                                        recipient_secret_hex=bob.secret_key).decode())
    opener = StreamOpener(key=opened_key, mesh_id=roster.mesh_id)
    down = ServerSampler(pids, interval=args.interval)
    down.start()
    started = time.perf_counter()
    plain = 0
    path = "/download/" + got["url"].split("/download/", 1)[1]
    async with httpx.AsyncClient(timeout=120) as http, http.stream("GET", f"{base}{path}") as stream:
        async for chunk in stream.aiter_bytes(256 * 1024):
            plain += len(opener.feed(chunk))
    download_s = time.perf_counter() - started
    await down.stop()
    opener.finish()
    assert plain == len(data)
    await request(sharer, {"type": "delete_file", "fileId": reg["fileId"]})
    return {
        "upload_mib_s": round(args.mib / upload_s, 1), "download_mib_s": round(args.mib / download_s, 1),
        "upload_rss_rise_mib": round((up.peak_rss_kib - up.rss_start_kib) / 1024, 1),
        "download_rss_rise_mib": round((down.peak_rss_kib - down.rss_start_kib) / 1024, 1),
    }


async def main(args) -> dict:
    roster = load_roster(args.roster)
    base = http_base(args.url.split(",")[0])
    sharer = await open_peer(args.url.split(",")[0], roster.mesh_id, roster.members[0], "sharer")
    fetcher = await open_peer(args.url.split(",")[0], roster.mesh_id, roster.members[1], "fetcher")
    data = os.urandom(args.mib * MIB)
    runs = [await one_run(args, roster, sharer, fetcher, base, data) for _ in range(args.runs)]
    await sharer.close()
    await fetcher.close()
    return {"mib": args.mib, "runs": runs}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.files")
    parser.add_argument("--roster", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pids", default="", help="server pids (comma list) whose RSS is sampled")
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.01, help="RSS sampling interval, seconds")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
