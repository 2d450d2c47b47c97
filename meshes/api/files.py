"""File bytes over HTTP (protocol.md §6.10), streamed both ways so a worker never holds a whole file:

- `POST /upload` is a plain ASGI app (Django would read the whole body before any view runs): the body goes
  chunk by chunk, through a small bounded queue, into the `files` storage written by a thread; past the registered
  length it stops at once with 413. Its authority is the one-time token `register_file` returned over the socket.
- `GET /download/<fileId>?mesh=&token=` streams the stored bytes to whoever holds a live download link.
"""

from __future__ import annotations

import asyncio
import io
import json
import queue
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.files import File
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from meshes.api.http import CORS_HEADERS, route
from meshes.errors import MeshError
from meshes.services.files import (
    file_bytes_remove,
    file_for_download,
    file_for_upload,
    file_upload_finished,
    files_storage,
)

QUEUE_CHUNKS = 16  # at most this many ASGI body chunks wait for the storage thread
READ_BYTES = 256 * 1024
_EOF, _ABORT = object(), object()


class _QueueReader(io.RawIOBase):
    """The upload body as a file the storage reads from (in its thread), fed by the ASGI receive loop."""

    def __init__(self, chunks: queue.Queue):
        self._chunks = chunks
        self._left = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left and not self._ended:
            item = self._chunks.get()
            if item is _ABORT:
                raise OSError("upload aborted")
            if item is _EOF:
                self._ended = True
            else:
                self._left = item
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


async def _respond(send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _token(scope) -> str:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]


def _declared(scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _save(storage_key: str, reader: _QueueReader) -> str:
    return files_storage().save(storage_key, File(reader, name=storage_key))


async def upload_app(scope, receive, send) -> None:
    if scope["method"] == "OPTIONS":
        await _respond(send, 204, {})
        return
    if scope["method"] != "POST":
        await _respond(send, 405, {"ok": False, "error": "method not allowed"})
        return
    try:
        # Outside Django's request cycle: database_sync_to_async closes stale connections as a request would.
        file = await database_sync_to_async(file_for_upload)(token=_token(scope))
    except MeshError as exc:
        status = 401 if exc.code == "unauthorized" else exc.status
        await _respond(send, status, {"ok": False, "error": exc.message, "code": exc.code})
        return
    declared = _declared(scope)
    if declared is not None and declared > file.sealed_size:
        await _respond(send, 413, {"ok": False, "error": f"file too large: registered with {file.sealed_size} bytes",
                                   "code": "file_too_large"})
        return
    chunks: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    loop = asyncio.get_running_loop()
    saving = loop.run_in_executor(None, _save, file.storage_key, _QueueReader(chunks))

    async def put(item) -> None:
        try:
            chunks.put_nowait(item)
        except queue.Full:  # the storage is slower than the network: wait for it (back-pressure)
            await loop.run_in_executor(None, chunks.put, item)

    received, refused = 0, None
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            refused = (400, "the upload was interrupted", "interrupted")
            break
        body = message.get("body", b"")
        received += len(body)
        if received > file.sealed_size:
            refused = (413, f"file too large: registered with {file.sealed_size} bytes", "file_too_large")
            break
        if body:
            await put(body)
        if not message.get("more_body", False):
            break
    await put(_ABORT if refused else _EOF)
    try:
        stored_as = await saving
    except Exception as exc:  # the storage failed, or we aborted it
        await sync_to_async(file_bytes_remove)(file)
        if refused is None:
            refused = (503, f"the file could not be stored ({type(exc).__name__}); retry", "unavailable")
        stored_as = None
    if refused is not None:
        await _respond(send, refused[0], {"ok": False, "error": refused[1], "code": refused[2]})
        return
    file.storage_key = stored_as
    try:
        await database_sync_to_async(_finish)(file, received)
    except MeshError as exc:
        await _respond(send, exc.status, {"ok": False, "error": exc.message, "code": exc.code})
        return
    await _respond(send, 200, {"ok": True, "fileId": file.id})


def _finish(file, size: int) -> None:
    type(file).objects.filter(pk=file.pk).update(storage_key=file.storage_key)
    file_upload_finished(file=file, size=size)


# --- download ---------------------------------------------------------------------------------------------


def _not_allowed(allowed: list[str]) -> JsonResponse:
    return JsonResponse({"error": "method not allowed"}, status=405)


def _download(request: HttpRequest, file_id: str) -> HttpResponse:
    try:
        file = file_for_download(file_id=file_id, mesh_id=request.GET.get("mesh"), token=request.GET.get("token"))
    except MeshError as exc:
        error = "fileId and ?mesh= required" if exc.code == "invalid_args" else exc.message
        return JsonResponse({"error": error, "code": exc.code}, status=exc.status)

    async def stream():
        handle = await sync_to_async(files_storage().open, thread_sensitive=False)(file.storage_key, "rb")
        try:
            while True:
                chunk = await sync_to_async(handle.read, thread_sensitive=False)(READ_BYTES)
                if not chunk:
                    break
                yield chunk
        finally:
            await sync_to_async(handle.close, thread_sensitive=False)()

    response = StreamingHttpResponse(stream(), content_type="application/octet-stream")  # ciphertext, whatever it was
    response["Content-Length"] = str(file.sealed_size)
    response["Content-Disposition"] = f'attachment; filename="{file.name.replace(chr(34), "")}.cmf"'
    response["Cache-Control"] = "private, max-age=60"
    return response


download = route(not_allowed=_not_allowed, GET=_download)
