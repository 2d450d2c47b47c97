"""The Python SDK: the `peer` package as a library for bots and CI jobs (docs/api.md "Python SDK").

    from peer import Mesh

    Mesh.join("https://server/i/CODE", name="ci-bot")          # once: an identity of its own, on disk
    async with Mesh.open() as mesh:                              # the one joined mesh (or Mesh.open("slug"))
        await mesh.send("#deploys", "build 412 is green")        # end-to-end encrypted, as the CLI would
        async for message in mesh.messages(timeout=30):          # DMs and topic messages, decrypted
            await mesh.send(message.sender_member_id, f"echo: {message.plaintext}")

The same code the `claudemesh` command runs: identities in the config directory (`CLAUDEMESH_CONFIG_DIR`, or
`config_dir=`), the mesh keyring on disk, plaintext only on this machine. `seal()` builds an envelope for the REST
API (`peer.rest.RestClient.post_message`), `open_push()` opens what `/api/v1/messages` or the stream hands out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from peer.client import MeshClient, cli_session_id
from peer.config import Config, ConfigStore, MeshEntry, session_name
from peer.connection_terms import HelloOptions
from peer.enroll import join as enroll_join
from peer.inbox import Inbox, InboxMessage

CONNECT_TIMEOUT = 15.0


class MeshNotFound(LookupError):
    pass


def _store(config_dir: str | os.PathLike | None) -> ConfigStore:
    return ConfigStore(Path(config_dir)) if config_dir else ConfigStore()


class Mesh:
    """One joined mesh, connected while inside `async with`."""

    def __init__(self, entry: MeshEntry, config: Config, store: ConfigStore, *, name: str | None = None):
        self.entry = entry
        self._store = store
        self._inbox = Inbox(store.directory)
        self._queue: asyncio.Queue[InboxMessage] = asyncio.Queue()
        options = HelloOptions(display_name=name or session_name(config, entry), session_id=cli_session_id(),
                               channel="sdk", fail_fast=False)
        self.client = MeshClient(entry, options, inbox=self._inbox)
        self.client.listeners.append(self._received)

    # --- identities ----------------------------------------------------------------------------------------

    @staticmethod
    def join(link: str, *, name: str, config_dir: str | os.PathLike | None = None) -> MeshEntry:
        """Join with an invite link or code; the new identity is saved (0600) for `open()`."""
        store = _store(config_dir)
        config = store.load()
        result = enroll_join(link, config=config, display_name=name)
        store.save(config)
        return result.entry

    @classmethod
    def open(cls, slug: str | None = None, *, config_dir: str | os.PathLike | None = None,
             name: str | None = None) -> Mesh:
        store = _store(config_dir)
        config = store.load()
        if slug is None and len(config.meshes) == 1:
            return cls(config.meshes[0], config, store, name=name)
        entry = config.find(slug) if slug else None
        if entry is None:
            joined = ", ".join(m.slug for m in config.meshes) or "none"
            raise MeshNotFound(f"no joined mesh {slug!r} (joined: {joined})" if slug else
                               f"several meshes are joined ({joined}): name one")
        return cls(entry, config, store, name=name)

    # --- connection -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Mesh:
        self.client.start()
        await self.client.connection.wait_open(CONNECT_TIMEOUT)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.client.close()

    async def _received(self, _client: MeshClient, message: InboxMessage) -> None:
        if message.kind != "system":
            await self._queue.put(message)

    # --- messaging ---------------------------------------------------------------------------------------------

    async def send(self, to: str, text: str, *, priority: str = "next") -> dict[str, Any]:
        """`to`: a member or session name, a member id or pubkey (prefix), `@group`, `*` or `#topic`."""
        return await self.client.send_text(to, text, priority=priority)

    async def messages(self, *, timeout: float | None = None) -> AsyncIterator[InboxMessage]:
        """Messages as they arrive (queued ones first), until `timeout` seconds pass with none."""
        while True:
            try:
                message = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return
            self._inbox.mark_read([message], message.received_at)
            yield message

    async def peers(self) -> list[dict[str, Any]]:
        return await self.client.peers()

    async def members(self) -> list[dict[str, Any]]:
        return await self.client.members()

    # --- topics and state ---------------------------------------------------------------------------------------

    async def topics(self) -> list[dict[str, Any]]:
        return await self.client.topics.list()

    async def topic_join(self, name: str) -> dict[str, Any]:
        return await self.client.topics.join(name)

    async def topic_history(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        return (await self.client.topics.history(name, limit=limit)).get("messages", [])

    async def state_set(self, key: str, value: Any) -> dict[str, Any]:
        return await self.client.coordination.state_set(key, value)

    async def state_get(self, key: str) -> Any:
        return (await self.client.coordination.state_get(key)).get("value")

    # --- envelopes for the REST API ---------------------------------------------------------------------------

    async def seal(self, to: str, text: str) -> dict[str, str]:
        """`{targetSpec, nonce, ciphertext}` for `POST /api/v1/messages`: sealed here, with this member's key."""
        target_spec, envelope = await self.client.seal_for(to, text)
        return {"targetSpec": target_spec, "nonce": envelope.nonce, "ciphertext": envelope.ciphertext}

    async def open_push(self, push: dict[str, Any]) -> InboxMessage:
        """A message from `GET /api/v1/messages` (or the stream's `message` event), decrypted. Works without
        connecting for direct messages; topic messages need the keyring, so open those inside `async with`."""
        message = await self.client.read_push(push)
        if self.client.connection.is_open:
            with suppress(Exception):
                message.sender_name = await self.client.sender_name(message.sender_pubkey, message.sender_member_id)
        return message
