"""Who a send reaches (protocol.md §3.4–3.7): the routing context of a batch (a direct plan reads only its
targets, a multicast plan the whole mesh), grants, hierarchical groups and status gating, and the delivery
rows one send becomes. Pure of writes: `sending.messages_accept` inserts what the plans return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.models import DeliveryState, PeerState, Presence, session_key
from broker.services.bulk import DeliveryRow
from broker.services.liveness import effective_status
from broker.services.routing_reads import live_presence_rows, member_rows
from protocol import vocabulary
from protocol.vocabulary import Priority, PushSubtype, Status, is_direct_target

NO_PEER = "no connected peer for target (not online, or targetSpec is your own key without another session)"
BLOCKED = "blocked by recipient grants (sender lacks dm capability)"
IDLE, NOW = Status.IDLE.value, Priority.NOW.value  # plain str: compared once per recipient
REMINDER = PushSubtype.REMINDER.value
WEBHOOK = PushSubtype.WEBHOOK.value
ONE_SHOT_CHANNEL = "claudemesh-cli"  # our CLI's short connections: a member's DM goes to a long-lived session first
# What a send did for one recipient member when it was accepted (the ack says it, docs/wire-extensions.md).
LIVE, HELD, QUEUED, RECIPIENT_FULL = "live", "held", "queued", "queue_full"
_REACH_RANK = {RECIPIENT_FULL: 0, QUEUED: 1, HELD: 2, LIVE: 3}


class SendRejected(Exception):
    def __init__(self, text: str, reason: str):
        super().__init__(text)
        self.text = text
        self.reason = reason  # metrics label


@dataclass(frozen=True)
class Sender:
    mesh_id: str
    member_id: str
    member_pubkey: str
    session_pubkey: str | None
    presence_id: str


@dataclass
class SendInput:
    sender: Sender
    target_spec: str
    priority: str
    nonce: str
    ciphertext: str
    client_message_id: str | None
    subtype: str | None = None  # "reminder": a scheduled delivery, which may reach the scheduler itself


@dataclass
class Reach:
    """Who one send reached at acceptance: the rows pre-claimed for live connections, and per recipient member
    whether it went to a live session, is held by its status, or waits for the member to connect."""

    claimed: list[tuple[str, str]] = field(default_factory=list)  # (worker id, presence id), pushed from memory
    recipients: dict[str, tuple[str, str]] = field(default_factory=dict)  # member id → (display name, state)
    session_ended: bool = False  # the targeted session key is gone: the member's next session gets it

    def note(self, member: dict[str, Any], state: str) -> None:
        """A member with several sessions counts once, by the best thing that happened for it."""
        known = self.recipients.get(member["id"])
        if known is None or _REACH_RANK[state] > _REACH_RANK[known[1]]:
            self.recipients[member["id"]] = (member["display_name"], state)

    def clear(self) -> None:
        self.claimed.clear()
        self.recipients.clear()
        self.session_ended = False


def message_capability(*, target_spec: str, subtype: str | None) -> str | None:
    """The grant a message needs of its recipient: `dm` for one key, `broadcast` for `*`, groups and topics;
    none for what comes from outside any member's say (webhooks are the mesh's, system events the broker's)."""
    if subtype in (WEBHOOK, PushSubtype.SYSTEM.value):
        return None
    return vocabulary.Grant.DM.value if is_direct_target(target_spec) else vocabulary.Grant.BROADCAST.value


def recipient_allows(member: dict[str, Any], item: SendInput) -> bool:
    """The recipient's grants let this send reach it (the one rule of every live, queued and drained path)."""
    capability = message_capability(target_spec=item.target_spec, subtype=item.subtype)
    return capability is None or vocabulary.grants_allow(
        member["peer_grants"], sender_keys=(item.sender.member_pubkey, item.sender.session_pubkey), capability=capability
    )


def group_matches(groups: Any, name: str) -> bool:
    """`@a` reaches members of `a`, `a/b`, `a/b/c` (hierarchical groups, §3.6)."""
    if not isinstance(groups, list):
        return False
    prefix = name + "/"
    return any(
        isinstance(g, dict) and isinstance(g.get("name"), str) and (g["name"] == name or g["name"].startswith(prefix))
        for g in groups
    )


def _can_take_now(presence: dict[str, Any], priority: str, now: datetime) -> bool:
    status = effective_status(
        status=presence["status"], source=presence["status_source"], updated_at=presence["status_updated_at"], now=now
    )
    return status == IDLE or priority == NOW


# --- the routing context of a batch ------------------------------------------------------------------------


@dataclass
class RoutingContext:
    now: datetime
    worker_id: str
    live: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # mesh id → live connections, oldest first
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)  # member id → saved groups / visibility (multicast)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    member_by_pubkey: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    session_owner: dict[tuple[str, str], str] = field(default_factory=dict)
    live_by_member: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    live_by_session: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    dead_workers: set[str] = field(default_factory=set)  # presences there are ghosts until retired: never pre-claimed

    def _index(self, rows: Iterable[dict[str, Any]]) -> None:
        for p in rows:
            self.live_by_member.setdefault(p["member_id"], []).append(p)
            if p["session_pubkey"]:
                self.live_by_session.setdefault((p["mesh_id"], p["session_pubkey"]), []).append(p)
                self.session_owner[(p["mesh_id"], p["session_pubkey"])] = p["member_id"]

    def add_live(self, presences: list[dict[str, Any]]) -> None:
        """Live connections, oldest first, as `routing_reads.live_presence_rows` returns them."""
        for p in presences:
            self.live.setdefault(p["mesh_id"], []).append(p)
            if p["dead"]:
                self.dead_workers.add(p["worker_id"])
        self._index(presences)

    def add_members(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.members[row["id"]] = row
            self.member_by_pubkey[(row["mesh_id"], row["pubkey"])] = row

    def unresolved_session_keys(self, inputs: list[SendInput]) -> set[str]:
        """Direct targets that are neither a known member key nor a live session key."""
        return {
            item.target_spec
            for item in inputs
            if is_direct_target(item.target_spec)
            and (item.sender.mesh_id, item.target_spec) not in self.member_by_pubkey
            and (item.sender.mesh_id, item.target_spec) not in self.session_owner
        }

    def adopt_offline_sessions(self, history: list[dict[str, Any]]) -> None:
        """An offline session key's owner, from its past connections (its messages wait for it to come back)."""
        for row in history:
            if row["member_id"] in self.members:
                self.session_owner[(row["mesh_id"], row["session_pubkey"])] = row["member_id"]


def routing_context(*, inputs: list[SendInput], worker_id: str, now: datetime) -> RoutingContext:
    """What routing a batch needs. A batch of direct messages reads only its targets' member and presence rows,
    so its cost does not grow with the mesh; a multicast needs every member and connection of the mesh."""
    mesh_ids = {item.sender.mesh_id for item in inputs}
    targets = {item.target_spec for item in inputs}
    if all(is_direct_target(target) for target in targets):
        return _direct_context(inputs, mesh_ids, targets, worker_id, now)
    return _multicast_context(inputs, mesh_ids, worker_id, now)


def _direct_context(inputs, mesh_ids: set[str], targets: set[str], worker_id: str, now: datetime) -> RoutingContext:
    ctx = RoutingContext(now, worker_id)
    ctx.add_live(live_presence_rows(now=now, mesh_ids=mesh_ids, pubkeys=targets))
    owners = set(ctx.live_by_member)  # the targets themselves, and the owners of targeted session keys
    ctx.add_members(member_rows(mesh_ids=mesh_ids, pubkeys=targets, ids=owners))
    history = _session_history(ctx, inputs, mesh_ids)
    missing = {row["member_id"] for row in history} - ctx.members.keys()
    if missing:
        ctx.add_members(member_rows(mesh_ids=mesh_ids, ids=missing))
    ctx.adopt_offline_sessions(history)
    if history:  # an ended session's message goes to its member's other live sessions: read them too
        owners = {row["member_id"] for row in history} - ctx.live_by_member.keys()
        ctx.add_live(live_presence_rows(now=now, mesh_ids=mesh_ids, member_ids=owners))
    return ctx


def _multicast_context(inputs, mesh_ids: set[str], worker_id: str, now: datetime) -> RoutingContext:
    saved = {
        row["member_id"]: row
        for row in PeerState.objects.filter(mesh_id__in=mesh_ids).values("member_id", "groups", "visible")
    }
    ctx = RoutingContext(now, worker_id, saved=saved)
    ctx.add_live(live_presence_rows(now=now, mesh_ids=mesh_ids))
    ctx.add_members(member_rows(mesh_ids=mesh_ids))
    ctx.adopt_offline_sessions(_session_history(ctx, inputs, mesh_ids))
    return ctx


def _session_history(ctx: RoutingContext, inputs: list[SendInput], mesh_ids: set[str]) -> list[dict[str, Any]]:
    unresolved = ctx.unresolved_session_keys(inputs)
    if not unresolved:
        return []
    return list(
        Presence.objects.filter(mesh_id__in=mesh_ids, session_pubkey__in=unresolved)
        .order_by("connected_at")
        .values("mesh_id", "session_pubkey", "member_id")
    )


# --- plans: one send → its delivery rows -------------------------------------------------------------------


def _pre_claim(ctx: RoutingContext, presence: dict[str, Any], delivery: DeliveryRow, reach: Reach) -> None:
    """Claim the row for a live connection in the send's own transaction: its worker pushes it from memory,
    without a drain query. If the push never happens (the layer dropped it, the socket closed), the row is
    re-sent by the retransmit sweep of the claimer's worker or released when the claimer closes."""
    delivery.state = DeliveryState.IN_FLIGHT
    delivery.claimed_by = presence["id"]
    delivery.claimed_at = ctx.now
    reach.claimed.append((presence["worker_id"], presence["id"]))


def plan_direct(item: SendInput, ctx: RoutingContext, message_id: str, reach: Reach) -> list[DeliveryRow]:
    sender, target = item.sender, item.target_spec
    reminder = item.subtype == REMINDER  # [PY] §10 item 7: a reminder may be to oneself, even this very session
    member = ctx.member_by_pubkey.get((sender.mesh_id, target))
    recipient_session = None
    if member is not None:
        candidates = [p for p in ctx.live_by_member.get(member["id"], ()) if p["id"] != sender.presence_id]
    else:
        owner_id = ctx.session_owner.get((sender.mesh_id, target))
        if owner_id is None or (target == sender.session_pubkey and not reminder):
            raise SendRejected(NO_PEER, "no_recipient")
        member = ctx.members[owner_id]
        candidates = [
            p for p in ctx.live_by_session.get((sender.mesh_id, target), ()) if p["id"] != sender.presence_id
        ]
        if candidates:
            recipient_session = target
        else:
            # [PY] The session has ended: held for it, the message would wait for a slot that may never come back.
            # Any current or next session of its member takes it (our peers keep their slots' session keys).
            reach.session_ended = True
            candidates = [p for p in ctx.live_by_member.get(member["id"], ()) if p["id"] != sender.presence_id]
    if member["id"] == sender.member_id and recipient_session is None:
        # To one's own member: another session of ours, never the sending connection itself. A reminder with no
        # session live waits for the member's next one.
        if not candidates and not reminder:
            raise SendRejected(NO_PEER, "no_recipient")
        if candidates:
            candidates = _long_lived_first(candidates, ctx)[:1]
            recipient_session = session_key(candidates[0]["session_pubkey"], candidates[0]["session_id"])
    if not recipient_allows(member, item):
        raise SendRejected(BLOCKED, "blocked")
    delivery = DeliveryRow(
        message_id=message_id,
        recipient_member_id=member["id"],
        recipient_session=recipient_session,
        gated=True,
        priority=item.priority,
    )
    alive = [p for p in candidates if p["worker_id"] not in ctx.dead_workers]
    ready = [p for p in alive if _can_take_now(p, item.priority, ctx.now)]
    if ready:  # exactly one session of the member gets it
        _pre_claim(ctx, _long_lived_first(ready, ctx)[0], delivery, reach)
        reach.note(member, LIVE)
    else:
        reach.note(member, HELD if alive else QUEUED)
    return [delivery]


def _long_lived_first(presences: list[dict[str, Any]], ctx: RoutingContext) -> list[dict[str, Any]]:
    """A member's long-lived sessions (Claude Code, watch) before its one-shot CLI runs; then this worker's."""
    return sorted(presences, key=lambda p: (p["channel"] == ONE_SHOT_CHANNEL, p["worker_id"] != ctx.worker_id))


def live_multicast_delivery(
    item: SendInput, ctx: RoutingContext, presence: dict[str, Any], message_id: str, reach: Reach
) -> DeliveryRow | None:
    """One live session's row of a multicast or topic send (ungated), pre-claimed unless its worker is dead; None
    when the recipient's grants deny the sender `broadcast` (a silent drop, §3.5)."""
    member = ctx.members.get(presence["member_id"])
    if member is None or not recipient_allows(member, item):
        return None
    delivery = DeliveryRow(
        message_id=message_id,
        recipient_member_id=member["id"],
        recipient_session=session_key(presence["session_pubkey"], presence["session_id"]),
        gated=False,
        priority=item.priority,
    )
    if presence["worker_id"] not in ctx.dead_workers:  # else pending: its session drains it when it is back
        _pre_claim(ctx, presence, delivery, reach)
        reach.note(member, LIVE)
    else:
        reach.note(member, QUEUED)
    return delivery


def plan_multicast(item: SendInput, ctx: RoutingContext, message_id: str, reach: Reach) -> list[DeliveryRow]:
    sender, target = item.sender, item.target_spec
    group = None if target in ("*", "@all") else target[1:]
    webhook = item.subtype == WEBHOOK  # §6.9: every member, hidden sessions and the webhook's creator too (no grants)
    deliveries = []
    online_members = set()
    for presence in ctx.live.get(sender.mesh_id, []):
        online_members.add(presence["member_id"])
        if not webhook and (presence["id"] == sender.presence_id or not presence["visible"]):
            continue
        if group is not None and not group_matches(presence["groups"], group):
            continue
        delivery = live_multicast_delivery(item, ctx, presence, message_id, reach)
        if delivery is not None:
            deliveries.append(delivery)
    # Better than the reference: matching members who are offline get it when they come back.
    for member in ctx.members.values():
        if member["mesh_id"] != sender.mesh_id or member["id"] in online_members or (
            member["id"] == sender.member_id and not webhook
        ):
            continue
        saved = ctx.saved.get(member["id"])
        if saved is not None and not saved["visible"] and not webhook:
            continue
        groups = saved["groups"] if saved and saved["groups"] else member["default_groups"]
        if group is not None and not group_matches(groups, group):
            continue
        if not recipient_allows(member, item):
            continue
        deliveries.append(
            DeliveryRow(message_id=message_id, recipient_member_id=member["id"], gated=False, priority=item.priority)
        )
        reach.note(member, QUEUED)
    return deliveries
