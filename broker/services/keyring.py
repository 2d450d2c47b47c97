"""Writes to the mesh keyring (docs/encryption.md): epochs started, wraps stored, key requests opened. The
broker checks what it can without any key (shape, epoch, recipient, granter, the granter's signature) and
stores the rest as opaque blobs; first writer wins, nothing is ever replaced."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from broker.models import KeyRequest, KeyWrap, ScopeEpoch
from broker.selectors_keyring import current_epoch, holds_epoch, require_scope_members, scope_holder_ids
from meshes.errors import Conflict, Forbidden, NotFound, ServiceError
from meshes.models import Member
from protocol.keyring import KeyringError, check_epoch, check_wrap

MAX_WRAPS_PER_FRAME = 150  # 150 × ≈380 characters of JSON stays under the 64 KiB frame


@dataclass
class KeyPutOutcome:
    stored: int = 0
    skipped: int = 0  # recipients that already held this epoch: the first wrap stays
    granted: set[str] = field(default_factory=set)  # requesters who got a key and are no longer waiting


def _scope_members(member: Member, scope: Any) -> dict[str, str]:
    members = require_scope_members(mesh_id=member.mesh_id, scope=scope)
    if member.id not in members:
        raise Forbidden("not_in_scope", f"you are not a member of {scope}")
    return members


def _check_epoch(epoch: Any) -> int:
    try:
        return check_epoch(epoch)
    except KeyringError as exc:
        raise ServiceError("invalid_args", str(exc)) from None


@transaction.atomic
def key_put(*, member: Member, scope: Any, epoch: Any, wraps: Any, create: bool = False) -> KeyPutOutcome:
    """Store wraps of one epoch. `create` starts the epoch and must name current + 1 (a racing second creator
    gets `epoch_exists`); otherwise the caller must already hold the epoch, or have started it."""
    members = _scope_members(member, scope)
    epoch = _check_epoch(epoch)
    if not isinstance(wraps, list) or not wraps or len(wraps) > MAX_WRAPS_PER_FRAME:
        raise ServiceError("invalid_args", f"wraps must be a list of 1–{MAX_WRAPS_PER_FRAME} entries")
    entries = _checked(member, scope, epoch, wraps, members)
    if create:
        _start_epoch(member, scope, epoch)
    else:
        started = ScopeEpoch.objects.filter(mesh_id=member.mesh_id, scope=scope, epoch=epoch).first()
        if started is None:
            raise NotFound("epoch_not_found", f"{scope} has no epoch {epoch}: start it with create")
        if started.created_by_id != member.id and not holds_epoch(
            mesh_id=member.mesh_id, scope=scope, epoch=epoch, member_id=member.id
        ):
            raise Forbidden("not_a_holder", f"only a holder of epoch {epoch} can share it")
    held = set(
        KeyWrap.objects.filter(mesh_id=member.mesh_id, scope=scope, epoch=epoch, recipient_id__in=entries)
        .values_list("recipient_id", flat=True)
    )
    fresh = [
        KeyWrap(mesh_id=member.mesh_id, scope=scope, epoch=epoch, recipient_id=rid, granter=member, wrap=blob)
        for rid, blob in entries.items()
        if rid not in held
    ]
    KeyWrap.objects.bulk_create(fresh, ignore_conflicts=True)
    outcome = KeyPutOutcome(stored=len(fresh), skipped=len(entries) - len(fresh))
    # A requester that already held this epoch is answered too: it may only have missed fetching it.
    receivers = set(entries) - {member.id}
    waiting = KeyRequest.objects.filter(mesh_id=member.mesh_id, scope=scope, member_id__in=receivers)
    outcome.granted = set(waiting.values_list("member_id", flat=True))
    waiting.delete()
    return outcome


def _checked(member: Member, scope: str, epoch: int, wraps: list, members: dict[str, str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for entry in wraps:
        recipient_id = entry.get("memberId") if isinstance(entry, dict) else None
        blob = entry.get("wrap") if isinstance(entry, dict) else None
        if not isinstance(recipient_id, str) or recipient_id not in members:
            raise ServiceError("invalid_wrap", f"wrap for {str(recipient_id)[:40]!r}: not a member of {scope}")
        try:
            check_wrap(blob, mesh_id=member.mesh_id, scope=scope, epoch=epoch,
                       recipient_pubkey=members[recipient_id], granter_pubkey=member.pubkey or "")
        except KeyringError as exc:
            raise ServiceError("invalid_wrap", f"wrap for {recipient_id}: {exc}") from None
        entries[recipient_id] = blob
    return entries


def _start_epoch(member: Member, scope: str, epoch: int) -> None:
    current = current_epoch(mesh_id=member.mesh_id, scope=scope)
    if epoch != current + 1:
        raise Conflict("epoch_exists", f"{scope} is at epoch {current}: a new epoch must be {current + 1}")
    try:
        with transaction.atomic():
            ScopeEpoch.objects.create(mesh_id=member.mesh_id, scope=scope, epoch=epoch, created_by=member)
    except IntegrityError:
        raise Conflict("epoch_exists", f"{scope} epoch {epoch} was started by someone else meanwhile") from None


@dataclass(frozen=True)
class KeyRequestOutcome:
    holders: set[str]  # members who can answer
    notify: bool  # push the request to their live sessions (not again within REQUEST_REPEAT_SECONDS)


REQUEST_REPEAT_SECONDS = 30  # a repeated request within this is stored but not pushed again: no request floods


@transaction.atomic
def key_request(*, member: Member, scope: Any) -> KeyRequestOutcome:
    """The caller waits for the scope's keys; kept until a holder shares them."""
    _scope_members(member, scope)
    now = timezone.now()
    request, created = KeyRequest.objects.get_or_create(mesh_id=member.mesh_id, scope=scope, member=member)
    notify = created or request.created_at <= now - timedelta(seconds=REQUEST_REPEAT_SECONDS)
    if notify and not created:
        request.created_at = now
        request.save(update_fields=["created_at"])
    holders = scope_holder_ids(mesh_id=member.mesh_id, scope=scope) - {member.id}
    return KeyRequestOutcome(holders=holders, notify=notify)
