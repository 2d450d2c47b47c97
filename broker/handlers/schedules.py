"""`schedule`, `list_scheduled`, `cancel_scheduled` (protocol.md §5.7). Entries live in the database and fire from
broker/scheduler.py on whichever worker gets there first; a new entry wakes this worker's scheduler."""

from __future__ import annotations

from typing import Any

from broker import wire_coordination
from broker.handlers.registry import handler, run_for_member
from broker.worker import get_worker
from meshes import selectors_coordination
from meshes.services.schedules import schedule_cancel, schedule_create
from protocol.envelope import WireEnvelope


def _envelope(frame: dict[str, Any]) -> WireEnvelope | None:
    """Our clients send an envelope (`nonce` + `ciphertext`) instead of the reference's plaintext `message`."""
    if "ciphertext" not in frame:
        return None
    nonce, ciphertext = frame.get("nonce", ""), frame.get("ciphertext")
    return WireEnvelope(nonce=nonce if isinstance(nonce, str) else "", ciphertext=ciphertext if isinstance(ciphertext, str) else "")


def _schedule(conn, actor, frame: dict[str, Any]) -> dict[str, Any]:
    entry = schedule_create(
        actor=actor, session_pubkey=conn.session_pubkey, to=frame.get("to"), message=frame.get("message"),
        envelope=_envelope(frame), note=frame.get("note"), deliver_at=frame.get("deliverAt"), cron=frame.get("cron"),
        zone_name=frame.get("timeZone"), subtype=frame.get("subtype"),
    )
    return wire_coordination.scheduled_ack(entry)


@handler("schedule")
async def handle_schedule(conn, frame) -> None:
    await run_for_member(conn, frame, lambda actor, f: _schedule(conn, actor, f))
    get_worker().scheduler.wake()


@handler("list_scheduled")
async def handle_list_scheduled(conn, frame) -> None:
    await run_for_member(conn, frame, lambda actor, _f: wire_coordination.scheduled_list(
        selectors_coordination.scheduled_for(actor=actor, session_pubkey=conn.session_pubkey)
    ))


@handler("cancel_scheduled")
async def handle_cancel_scheduled(conn, frame) -> None:
    scheduled_id = frame.get("scheduledId")
    await run_for_member(conn, frame, lambda actor, _f: wire_coordination.cancel_scheduled_ack(
        scheduled_id, schedule_cancel(actor=actor, scheduled_id=scheduled_id, session_pubkey=conn.session_pubkey)
    ))
