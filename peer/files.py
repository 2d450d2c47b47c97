"""Sharing files end to end (protocol.md §5.17, §6.10; docs/encryption.md "Files"): a fresh key per file, the
bytes sealed as they are read and streamed to `POST /upload`, the key wrapped like a message for the target (a
member or session, a group, or `*` through the keyring) and for ourselves. Fetching streams the ciphertext down,
opens it record by record into a temporary file beside the destination, and renames it only once the whole file
opened: a tampered or cut-short download leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from protocol.encoding import EncodingError, b64_decode, b64_encode
from protocol.files import (
    CHUNK_BYTES,
    FileCryptoError,
    FileMeta,
    StreamOpener,
    new_file_key,
    parse_sealed_key,
    seal_stream,
    sealed_key_text,
    sealed_size,
)

if TYPE_CHECKING:
    from peer.client import MeshClient

Progress = Callable[[int, int], None]  # (bytes done, total)
READ_BYTES = 4 * CHUNK_BYTES
TRANSFER_TIMEOUT = httpx.Timeout(30.0, read=120.0)


class FileError(Exception):
    """A share or fetch that cannot be done: `code` is a stable word (not_found, forbidden, tampered, …)."""

    def __init__(self, message: str, code: str = "failed"):
        super().__init__(message)
        self.code = code


def http_base(broker_url: str) -> str:
    """The broker's HTTP origin (`wss://host/ws` → `https://host`): uploads and downloads go where the socket goes,
    whatever address the server believes it has."""
    parts = urlsplit(broker_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def _same_origin(base: str, url: str) -> str:
    parts = urlsplit(url)
    return f"{base}{parts.path}" + (f"?{parts.query}" if parts.query else "")


class Files:
    def __init__(self, client: MeshClient):
        self.client = client
        self.base = http_base(client.mesh.broker_url)

    # --- share --------------------------------------------------------------------------------------------

    async def share(self, path: str | Path, to: str, *, persistent: bool = True, tags: list[str] | None = None,
                    notify: bool = True, progress: Progress | None = None) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise FileError(f"{path} is not a file", "not_found")
        target = await self.client.resolve(to)
        if target.topic is not None:
            raise FileError("files go to a member, a session, @group or *, not to a topic", "invalid")
        meta = FileMeta(name=path.name, size=path.stat().st_size, mime=_mime(path))
        key = new_file_key()
        keys = [await self._wrap(key, target)]
        own = self.client.mesh.pubkey
        if keys[0]["peerPubkey"] != own:  # ours too: to fetch it back, and to grant it to someone later
            keys.append(await self._wrap(key, await self.client.resolve(own)))
        total = sealed_size(meta)
        registered = await self.client.connection.request({
            "type": "register_file", "name": meta.name, "size": meta.size, "sealedSize": total, "mime": meta.mime,
            "targetSpec": target.spec, "keys": keys, "persistent": persistent, "tags": tags or [],
        }, "file_registered")
        file_id = str(registered["fileId"])
        await self._upload(_same_origin(self.base, str(registered["uploadUrl"])), str(registered["uploadToken"]),
                           path, meta, key, total, progress)
        result = {"fileId": file_id, "name": meta.name, "size": meta.size, "to": to, "label": target.label,
                  "targetSpec": target.spec, "encrypted": True}
        if notify and target.spec != own:
            sent = await self.client.send_text(to, f"📎 shared a file: {meta.name} ({human_size(meta.size)}) — "
                                                   f"fetch it with `claudemesh file get {file_id}`")
            result["messageId"] = sent.get("messageId")
        return result

    async def _wrap(self, key: bytes, target) -> dict[str, str]:
        envelope = await self.client.seal(target, b64_encode(key), as_member=True)
        return {"peerPubkey": target.spec, "sealedKey": sealed_key_text(envelope.nonce, envelope.ciphertext)}

    async def _upload(self, url: str, token: str, path: Path, meta: FileMeta, key: bytes, total: int,
                      progress: Progress | None) -> None:
        mesh_id = self.client.mesh.mesh_id

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            with path.open("rb") as handle:
                pieces = iter(lambda: handle.read(READ_BYTES), b"")
                for record in seal_stream(pieces, meta=meta, key=key, mesh_id=mesh_id):
                    sent += len(record)
                    if progress is not None:
                        progress(sent, total)
                    yield record
                    await asyncio.sleep(0)

        headers = {"Authorization": f"Bearer {token}", "Content-Length": str(total),
                   "Content-Type": "application/octet-stream"}
        try:
            async with httpx.AsyncClient(timeout=TRANSFER_TIMEOUT) as http:
                response = await http.post(url, content=body(), headers=headers)
        except FileCryptoError as exc:
            raise FileError(str(exc), "changed") from None
        except httpx.HTTPError as exc:
            raise FileError(f"upload failed: {exc}", "network") from None
        if response.status_code != 200:
            raise FileError(f"upload refused ({response.status_code}): {_error_text(response)}", _error_code(response))

    # --- fetch --------------------------------------------------------------------------------------------

    async def fetch(self, file_id: str, *, out: str | Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Download and open a file into `out` (a path, or a directory; default: the current directory)."""
        reply = await self.client.connection.request({"type": "get_file", "fileId": file_id}, "file_url")
        key = await self._unwrap(reply)
        destination = Path(out) if out is not None else Path.cwd()
        folder = destination if destination.is_dir() else destination.parent
        folder.mkdir(parents=True, exist_ok=True)
        opener = StreamOpener(key=key, mesh_id=self.client.mesh.mesh_id)
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".claudemesh-", suffix=".part", delete=False)
        try:
            with handle:
                await self._download(_same_origin(self.base, str(reply["url"])), opener, handle,
                                     int(reply.get("sealedSize") or 0), progress)
                meta = opener.finish()
            final = destination if not destination.is_dir() else folder / _safe_name(meta.name)
            os.replace(handle.name, final)
        except FileCryptoError as exc:
            os.unlink(handle.name)
            raise FileError(f"the file does not open: {exc}", "tampered") from None
        except BaseException:
            os.unlink(handle.name)
            raise
        return {"fileId": file_id, "name": meta.name, "size": meta.size, "path": str(final),
                "uploadedBy": reply.get("uploadedBy")}

    async def _unwrap(self, reply: dict[str, Any]) -> bytes:
        parsed = parse_sealed_key(reply.get("sealedKey"))
        if parsed is None:
            raise FileError("the broker holds no key of this file for you", "forbidden")
        nonce, ciphertext = parsed
        granter = str(reply.get("sealedBy") or "")
        if granter.lower() not in await self.client.roster_keys():
            raise FileError("the file's key was not wrapped by a member of this mesh", "tampered")
        sealed_for = str(reply.get("sealedFor") or "")
        opened = await self.client.open_message(sender_pubkey=granter, nonce=nonce, ciphertext=ciphertext,
                                                target_spec=sealed_for if sealed_for[:1] in ("*", "@") else None)
        try:
            key = b64_decode(opened.plaintext or "")
        except EncodingError:
            key = b""
        if len(key) != 32:
            raise FileError(f"the file's key does not open for you ({opened.failure or 'not a key'})", "forbidden")
        return key

    async def _download(self, url: str, opener: StreamOpener, handle, total: int, progress: Progress | None) -> None:
        done = 0
        try:
            async with httpx.AsyncClient(timeout=TRANSFER_TIMEOUT) as http, http.stream("GET", url) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise FileError(f"download refused ({response.status_code}): {_error_text(response)}",
                                    _error_code(response))
                async for chunk in response.aiter_bytes(READ_BYTES):
                    handle.write(opener.feed(chunk))
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except httpx.HTTPError as exc:
            raise FileError(f"download failed: {exc}", "network") from None

    # --- the rest -----------------------------------------------------------------------------------------

    async def list(self, *, query: str | None = None, uploader: str | None = None) -> list[dict[str, Any]]:
        frame: dict[str, Any] = {"type": "list_files"}
        if query:
            frame["query"] = query
        if uploader:
            frame["from"] = uploader
        reply = await self.client.connection.request(frame, "file_list")
        return [f for f in reply.get("files") or [] if isinstance(f, dict)]

    async def delete(self, file_id: str) -> None:
        await self.client.connection.request({"type": "delete_file", "fileId": file_id}, "ack")

    async def accesses(self, file_id: str) -> list[dict[str, Any]]:
        reply = await self.client.connection.request({"type": "file_status", "fileId": file_id}, "file_status_result")
        return [a for a in reply.get("accesses") or [] if isinstance(a, dict)]

    async def grant(self, file_id: str, to: str) -> dict[str, Any]:
        """Let one more member or session (or a group, or `*`) open a file we shared: our key, re-wrapped."""
        reply = await self.client.connection.request({"type": "get_file", "fileId": file_id}, "file_url")
        key = await self._unwrap(reply)
        target = await self.client.resolve(to)
        wrap = await self._wrap(key, target)
        await self.client.connection.request({"type": "grant_file_access", "fileId": file_id, **wrap},
                                             "grant_file_access_ok")
        return {"fileId": file_id, "to": to, "peerPubkey": wrap["peerPubkey"]}


def _mime(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _safe_name(name: str) -> str:
    cleaned = os.path.basename(name.replace("\\", "/")).strip() or "file"
    return cleaned if cleaned not in (".", "..") else "file"


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error") or body.get("message") or body)
    except ValueError:
        return response.text[:200]


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code") or response.status_code)
    except ValueError:
        return str(response.status_code)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"

