"""Shared files (protocol.md §5.17, §6.10): register one (metadata and the wrapped keys, checked; a one-time upload
token back), take its bytes, hand out short-lived download links to those it was shared with, grant one more
recipient, delete, and expire. The bytes are ciphertext the server cannot open (protocol/files.py)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import Forbidden, Gone, NotFound, ServiceError
from meshes.models import FileAccess, FileKey, FileStatus, Member, SharedFile
from meshes.selectors_files import file_of_mesh, key_candidates
from meshes.services.checks import clean_tags, printable, require_live_mesh, require_member
from meshes.text import storable
from protocol.encoding import HEX64
from protocol.files import max_sealed_size, parse_sealed_key
from protocol.vocabulary import Grant, grants_allow

UPLOAD_SALT = "claudemesh.files.upload"
DOWNLOAD_SALT = "claudemesh.files.download"
MAX_KEYS = 1000
MAX_SEALED_KEY_CHARS = 16_384
GROUP_TARGET = re.compile(r"^@[A-Za-z0-9_./-]{1,64}$")
STALE_PENDING = timedelta(hours=1)


def files_storage():
    return storages["files"]


def _too_large() -> ServiceError:
    return ServiceError("file_too_large", f"file too large (max {settings.FILES_MAX_BYTES // (1024 * 1024)}MB)",
                        status=413)


def _clean_target(value: Any) -> str:
    if value == "*" or (isinstance(value, str) and (HEX64.fullmatch(value) or GROUP_TARGET.fullmatch(value))):
        return value
    raise ServiceError("invalid_args", "targetSpec must be a member or session key, @group or *")


def _clean_keys(keys: Any) -> list[tuple[str, str]]:
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise ServiceError("invalid_args", f"keys must list 1-{MAX_KEYS} {{peerPubkey, sealedKey}} (an encrypted file needs its key)")
    cleaned: dict[str, str] = {}
    for entry in keys:
        peer = entry.get("peerPubkey") if isinstance(entry, dict) else None
        sealed = entry.get("sealedKey") if isinstance(entry, dict) else None
        if not isinstance(peer, str) or not (peer == "*" or HEX64.fullmatch(peer) or GROUP_TARGET.fullmatch(peer)):
            raise ServiceError("invalid_args", "each key's peerPubkey must be a member or session key, @group or *")
        if not isinstance(sealed, str) or len(sealed) > MAX_SEALED_KEY_CHARS or parse_sealed_key(sealed) is None \
                or not storable(sealed):
            raise ServiceError("invalid_args", "each key's sealedKey must be a wrapped file key (cmf1:…)")
        cleaned[peer] = sealed
    return list(cleaned.items())


def _clean_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ServiceError("invalid_args", "name is required")
    cleaned = printable(os.path.basename(name.replace("\\", "/"))).strip()[:255]
    if not cleaned or cleaned in (".", "..") or not storable(cleaned):
        raise ServiceError("invalid_args", "name is required (a file name, no path)")
    return cleaned


def _check_quota(actor: Actor, size: int) -> None:
    used = SharedFile.objects.kept().filter(mesh=actor.mesh).aggregate(total=Sum("sealed_size"))["total"] or 0
    quota = settings.FILES_MESH_QUOTA_BYTES
    if used + size > quota:
        mib = 1024 * 1024
        raise ServiceError("quota_exceeded", f"this mesh's files use {used // mib} MiB of its {quota // mib} MiB quota: "
                           "delete some (claudemesh file rm) or ask the server's operator for more", status=413)


def _check_recipient_accepts(actor: Actor, target: str, session_pubkey: str | None) -> None:
    """A member named directly must accept files from the sharer (its `file-read` grant)."""
    if not HEX64.fullmatch(target):
        return
    recipient = Member.objects.filter(mesh=actor.mesh, pubkey=target, revoked_at=None).first()
    if recipient is not None and not grants_allow(recipient.peer_grants, sender_keys=(actor.member.pubkey, session_pubkey),
                                                  capability=Grant.FILE_READ):
        raise Forbidden("forbidden", f"{recipient.display_name} does not accept files from you")


@transaction.atomic
def file_register(*, actor: Actor, name: Any, sealed_size: Any, target_spec: Any, keys: Any, mime: Any = None,
                  tags: Any = None, persistent: Any = True, plain_size: Any = None,
                  session_pubkey: str | None = None) -> tuple[SharedFile, str]:
    """(the pending file, its upload token). Nothing is stored for a refusal."""
    member = require_member(actor)
    require_live_mesh(actor.mesh)
    if isinstance(sealed_size, bool) or not isinstance(sealed_size, int) or sealed_size <= 0:
        raise ServiceError("invalid_args", "size must be the encrypted file's length in bytes")
    if sealed_size > max_sealed_size(settings.FILES_MAX_BYTES):
        raise _too_large()
    target = _clean_target(target_spec)
    wraps = _clean_keys(keys)
    _check_recipient_accepts(actor, target, session_pubkey)
    _check_quota(actor, sealed_size)
    keep = persistent is not False
    file = SharedFile.objects.create(
        mesh=actor.mesh, owner=member, owner_pubkey=member.pubkey, owner_name=member.display_name,
        name=_clean_name(name), mime=mime[:200] if isinstance(mime, str) and mime and storable(mime) else "application/octet-stream",
        tags=clean_tags(tags), target_spec=target, sealed_size=sealed_size, persistent=keep,
        size=plain_size if isinstance(plain_size, int) and not isinstance(plain_size, bool) and 0 <= plain_size <= sealed_size
        else sealed_size,
        expires_at=None if keep else timezone.now() + timedelta(hours=settings.FILES_EPHEMERAL_HOURS),
    )
    file.storage_key = f"{actor.mesh.id}/{file.id}"
    file.save(update_fields=["storage_key"])
    FileKey.objects.bulk_create([FileKey(file=file, peer_pubkey=peer, sealed_key=sealed, granted_by_pubkey=member.pubkey)
                                 for peer, sealed in wraps])
    return file, signing.dumps({"f": file.id, "m": member.id}, salt=UPLOAD_SALT)


def file_for_upload(*, token: str) -> SharedFile:
    """The pending file an upload token opens (the token is the upload's whole authority)."""
    try:
        data = signing.loads(token, salt=UPLOAD_SALT, max_age=settings.FILES_UPLOAD_SECONDS)
    except signing.SignatureExpired:
        raise Gone("upload_expired", "this upload link expired: register the file again") from None
    except signing.BadSignature:
        raise Forbidden("unauthorized", "not an upload token of this server") from None
    file = SharedFile.objects.kept().filter(pk=data.get("f"), owner_id=data.get("m")).first()
    if file is None or file.owner is None or file.owner.revoked_at is not None:
        raise NotFound("not_found", "file not found")
    if file.status != FileStatus.PENDING:
        raise ServiceError("already_uploaded", "this file's bytes are already uploaded", status=409)
    return file


def file_upload_finished(*, file: SharedFile, size: int) -> SharedFile:
    """The bytes are stored: exactly the declared length, or the file is refused and its bytes removed."""
    if size != file.sealed_size:
        file_bytes_remove(file)
        SharedFile.objects.filter(pk=file.pk).update(deleted_at=timezone.now())
        raise ServiceError("size_mismatch", f"the upload had {size} bytes, the file was registered with {file.sealed_size}")
    SharedFile.objects.filter(pk=file.pk).update(status=FileStatus.READY, uploaded_at=timezone.now())
    file.refresh_from_db()
    return file


def file_bytes_remove(file: SharedFile) -> None:
    if file.storage_key:
        try:
            files_storage().delete(file.storage_key)
        except OSError:
            pass  # already gone


# --- access ---------------------------------------------------------------------------------------------


def wrap_for(file: SharedFile, *, actor: Actor, session_pubkey: str | None, groups: list[str]) -> FileKey | None:
    """The caller's wrapped key for this file, or None."""
    candidates = key_candidates(member_pubkey=actor.member.pubkey if actor.member else None,
                                session_pubkey=session_pubkey, groups=groups)
    keys = {k.peer_pubkey: k for k in file.keys.filter(peer_pubkey__in=candidates)}
    return next((keys[k] for k in candidates if k in keys), None)


@transaction.atomic
def file_fetch(*, actor: Actor, file_id: Any, session_pubkey: str | None = None,
               groups: list[str] | None = None) -> tuple[SharedFile, FileKey | None, str]:
    """(file, the caller's wrapped key or None for the owner without one, a download URL path valid
    FILES_URL_SECONDS). Records the access."""
    member = require_member(actor)
    file = file_of_mesh(actor=actor, file_id=file_id)
    key = wrap_for(file, actor=actor, session_pubkey=session_pubkey, groups=groups or [])
    is_owner = file.owner_id == member.id
    if key is None and not is_owner:
        if file.target_spec not in ("*", member.pubkey, session_pubkey) and not file.target_spec.startswith("@"):
            raise Forbidden("forbidden", "file not targeted at you")
        raise Forbidden("forbidden", "no decryption key for this file")
    if not is_owner and not grants_allow(member.peer_grants, sender_keys=(file.owner_pubkey,), capability=Grant.FILE_READ):
        raise Forbidden("forbidden", f"you do not accept files from {file.owner_name} (your grants)")
    FileAccess.objects.create(file=file, member=member, peer_name=member.display_name)
    token = signing.dumps({"f": file.id, "m": member.id}, salt=DOWNLOAD_SALT)
    return file, key, f"/download/{file.id}?mesh={file.mesh_id}&token={token}"


def file_for_download(*, file_id: str, mesh_id: Any, token: Any) -> SharedFile:
    """The file a download link names, while the link lives (FILES_URL_SECONDS) and its member is still in."""
    if not isinstance(token, str) or not isinstance(mesh_id, str):
        raise ServiceError("invalid_args", "fileId, ?mesh= and ?token= required")
    try:
        data = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.FILES_URL_SECONDS)
    except signing.SignatureExpired:
        raise Forbidden("expired", "this download link expired: ask for the file again (get_file)") from None
    except signing.BadSignature:
        raise Forbidden("forbidden", "not a download link of this server") from None
    if data.get("f") != file_id:
        raise Forbidden("forbidden", "this link is for another file")
    if not Member.objects.filter(pk=data.get("m"), mesh_id=mesh_id, revoked_at=None).exists():
        raise Forbidden("forbidden", "not a member of this mesh")
    file = SharedFile.objects.available().filter(pk=file_id, mesh_id=mesh_id).first()
    if file is None:
        raise NotFound("not_found", "file not found")
    return file


@transaction.atomic
def file_grant_access(*, actor: Actor, file_id: Any, peer_pubkey: Any, sealed_key: Any) -> FileKey:
    member = require_member(actor)
    file = file_of_mesh(actor=actor, file_id=file_id)
    if file.owner_pubkey != member.pubkey:
        raise Forbidden("forbidden", "only the file owner can grant access")
    [(peer, sealed)] = _clean_keys([{"peerPubkey": peer_pubkey, "sealedKey": sealed_key}])
    _check_recipient_accepts(actor, peer, None)
    key, _ = FileKey.objects.update_or_create(
        file=file, peer_pubkey=peer,
        defaults={"sealed_key": sealed, "granted_by_pubkey": member.pubkey, "granted_at": timezone.now()},
    )
    return key


@transaction.atomic
def file_delete(*, actor: Actor, file_id: Any) -> SharedFile:
    """[PY] §10 item 10: the owner, or an owner/admin of the mesh. The bytes go at once; the row stays (deleted)."""
    member = require_member(actor)
    file = file_of_mesh(actor=actor, file_id=file_id, available=False, lock=True)
    if file.owner_id != member.id and not actor.is_manager:
        raise Forbidden("forbidden", "only the file's owner or a mesh owner/admin can delete it")
    file.deleted_at = timezone.now()
    file.save(update_fields=["deleted_at"])
    transaction.on_commit(lambda: file_bytes_remove(file))
    return file


def files_expire(*, now=None) -> int:
    """Ephemeral files past their time and uploads never finished: bytes removed, rows marked deleted."""
    now = now or timezone.now()
    done = 0
    expired = SharedFile.objects.kept().filter(expires_at__lte=now)
    stale = SharedFile.objects.kept().filter(status=FileStatus.PENDING, created_at__lte=now - STALE_PENDING)
    for file in list(expired[:200]) + list(stale[:200]):
        file_bytes_remove(file)
        done += SharedFile.objects.filter(pk=file.pk, deleted_at=None).update(deleted_at=now)
    return done
