"""Files over the socket (protocol.md §5.17): `register_file` (additive: metadata and wrapped keys, answered with a
one-time upload token for `POST /upload`), `get_file` (a download link valid FILES_URL_SECONDS and the caller's
wrapped key), `list_files`, `file_status`, `grant_file_access`, `delete_file`. The rules are meshes' services."""

from __future__ import annotations

from typing import Any

from broker import selectors
from broker.handlers.registry import handler, run_for_member
from meshes import selectors_files
from meshes.actors import Actor
from meshes.services.files import file_delete, file_fetch, file_grant_access, file_register
from meshes.site import app_url
from protocol.encoding import iso_or_none


def _groups(conn) -> list[str]:
    return selectors.member_groups(mesh_id=conn.mesh_id, member_id=conn.member_id, extra=conn.groups)


def _entry(file) -> dict[str, Any]:
    return {"id": file.id, "name": file.name, "size": file.size, "sealedSize": file.sealed_size, "tags": file.tags,
            "uploadedBy": file.owner_name, "uploadedAt": iso_or_none(file.uploaded_at or file.created_at),
            "persistent": file.persistent, "encrypted": True, "targetSpec": file.target_spec,
            "expiresAt": iso_or_none(file.expires_at)}


@handler("register_file")
async def handle_register_file(conn, frame) -> None:
    def register(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
        file, token = file_register(actor=actor, name=frame.get("name"), sealed_size=frame.get("sealedSize"),
                                    plain_size=frame.get("size"), target_spec=frame.get("targetSpec"),
                                    keys=frame.get("keys"), mime=frame.get("mime"), tags=frame.get("tags"),
                                    persistent=frame.get("persistent", True), session_pubkey=conn.session_pubkey)
        return {"type": "file_registered", "fileId": file.id, "uploadUrl": f"{app_url()}/upload", "uploadToken": token}

    await run_for_member(conn, frame, register)


@handler("get_file")
async def handle_get_file(conn, frame) -> None:
    def fetch(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
        file, key, path = file_fetch(actor=actor, file_id=frame.get("fileId"), session_pubkey=conn.session_pubkey,
                                     groups=_groups(conn))
        reply = {"type": "file_url", "fileId": file.id, "url": f"{app_url()}{path}", "name": file.name,
                 "encrypted": True, "size": file.size, "sealedSize": file.sealed_size, "mime": file.mime,
                 "ownerPubkey": file.owner_pubkey, "uploadedBy": file.owner_name}
        if key is not None:
            reply.update(sealedKey=key.sealed_key, sealedBy=key.granted_by_pubkey, sealedFor=key.peer_pubkey)
        return reply

    await run_for_member(conn, frame, fetch)


@handler("list_files")
async def handle_list_files(conn, frame) -> None:
    def listing(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
        files = selectors_files.files_visible(actor=actor, session_pubkey=conn.session_pubkey, groups=_groups(conn),
                                              query=frame.get("query"), uploader=frame.get("from"))
        return {"type": "file_list", "files": [_entry(f) for f in files]}

    await run_for_member(conn, frame, listing)


@handler("file_status")
async def handle_file_status(conn, frame) -> None:
    def status(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
        file = selectors_files.file_for_status(actor=actor, file_id=frame.get("fileId"))
        return {"type": "file_status_result", "fileId": file.id, "accesses": [
            {"peerName": a.peer_name, "accessedAt": iso_or_none(a.accessed_at)}
            for a in selectors_files.file_accesses(file=file)
        ]}

    await run_for_member(conn, frame, status)


def _grant(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    key = file_grant_access(actor=actor, file_id=frame.get("fileId"), peer_pubkey=frame.get("peerPubkey"),
                            sealed_key=frame.get("sealedKey"))
    return {"type": "grant_file_access_ok", "fileId": key.file_id, "peerPubkey": key.peer_pubkey}


def _delete(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    file = file_delete(actor=actor, file_id=frame.get("fileId"))
    return {"type": "ack", "id": file.id, "messageId": file.id, "queued": False}


@handler("grant_file_access")
async def handle_grant_file_access(conn, frame) -> None:
    await run_for_member(conn, frame, _grant)


@handler("delete_file")
async def handle_delete_file(conn, frame) -> None:
    await run_for_member(conn, frame, _delete)
