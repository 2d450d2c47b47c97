"""The peer client library: mesh operations on top of one MeshConnection. The CLI and the MCP server are thin
layers over this module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peer.config import MeshEntry, config_dir
from peer.connection import SEND_TIMEOUT, MeshConnection
from peer.connection_terms import HelloOptions, RequestFailed
from peer.coordination import Coordination
from peer.describe import system_text
from peer.inbox import WAITING, Inbox, InboxMessage, now_iso
from peer.keyring import KeyStore, ScopeKeys
from peer.moderation import Moderation
from peer.reminders import Reminders
from peer.scope_messages import TOPIC_SCOPE_PREFIX, read_scope_message, scope_envelope
from peer.sealing import RecordSealer
from peer.targets import Target, resolve_target
from peer.topics import Topics
from protocol.crypto import SigningKeypair
from protocol.envelope import OpenedMessage, WireEnvelope, open_push, seal_direct, seal_group
from protocol.keyring import MESH_SCOPE, scope_for_target, seal_scope
from protocol.vocabulary import PRIORITIES, PushSubtype

PEER_CACHE_SECONDS = 30.0
KEYRING_EVENTS = ("key_requested", "key_granted")
MAX_PER_MESSAGE_RECIPIENTS = 64  # a group this small keeps one key per message (CMG1); larger ones use the keyring


def cli_session_id() -> str:
    """One-shot CLI connections get their own session id so they never evict a live push-pipe (client.md §9.16)."""
    parent = os.environ.get("CLAUDEMESH_SESSION_ID", "").strip()
    base = f"{parent}:cli" if parent else "cli"
    return f"{base}:{os.getpid()}-{int(time.time() * 1000)}"


class MeshClient:
    def __init__(self, mesh: MeshEntry, options: HelloOptions, inbox: Inbox | None = None,
                 session: SigningKeypair | None = None, spare_keys: Callable[[], list[SigningKeypair]] | None = None,
                 keyring_dir: Path | None = None):
        self.mesh = mesh
        self.spare_keys = spare_keys  # this identity's other session keys, tried last (peer/session_slots.py)
        self.inbox = inbox
        self.connection = MeshConnection(mesh, options, on_push=self._on_push, session=session)
        self.listeners: list = []  # async callables(InboxMessage) run for each new inbound message
        self._peers_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])
        self._members_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])
        # Names learnt from peer_joined/peer_returned events: a short-lived sender may be gone by the time
        # its message is read, so the live peer list alone cannot name it.
        self.known_names: dict[str, str] = {}
        self.topics = Topics(request=self.connection.request, open_message=self.open_message,
                             sender_name=self.sender_name)
        store = KeyStore(keyring_dir or (inbox.path.parent if inbox is not None else config_dir()), mesh.mesh_id)
        self.keys = ScopeKeys(store=store, mesh_id=mesh.mesh_id, member_id=mesh.member_id, member=mesh.keypair,
                              request=self.connection.request, members_of=self.scope_members)
        sealer = RecordSealer(keys=self.keys, mesh_id=mesh.mesh_id, author=mesh.keypair, roster=self.roster_keys)
        self.coordination = Coordination(request=self.connection.request, fire=self.connection.fire, sealer=sealer,
                                         sealed=lambda: self.broker_has_extensions)
        self.moderation = Moderation(request=self.connection.request)
        self.reminders = Reminders(request=self.connection.request, seal_for=self.seal_for, member_pubkey=mesh.pubkey,
                                   member_secret=mesh.secret_key, sealed=lambda: self.broker_has_extensions)

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.connection.start()

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> MeshClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @property
    def own_keys(self) -> list[tuple[str, str]]:
        """(pubkey, secret) pairs to decrypt with: session key first, then the member key (client.md §5.4)."""
        session = self.connection.session
        keys = [(session.public_hex, session.secret_hex), (self.mesh.pubkey, self.mesh.secret_key)]
        for spare in self.spare_keys() if self.spare_keys else []:
            if spare.public_hex != session.public_hex:
                keys.append((spare.public_hex, spare.secret_hex))
        return keys

    # --- reads --------------------------------------------------------------------------------------------

    async def peers(self, *, include_self: bool = False) -> list[dict[str, Any]]:
        reply = await self.connection.request({"type": "list_peers"}, "peers_list")
        peers = [p for p in reply.get("peers") or [] if isinstance(p, dict)]
        self._peers_cache = (time.monotonic(), peers)
        if include_self:
            return peers
        return [p for p in peers if p.get("pubkey") != self.connection.session.public_hex]

    @property
    def broker_has_extensions(self) -> bool:
        """Our broker says `deliveryAck` in hello_ack; the reference's does not and knows no `list_members`."""
        return bool(self.connection.hello_ack.get("deliveryAck"))

    async def members(self) -> list[dict[str, Any]]:
        """Every member of the mesh, online or not (wire extension `list_members`)."""
        reply = await self.connection.request({"type": "list_members"}, "members_list")
        members = [m for m in reply.get("members") or [] if isinstance(m, dict)]
        self._members_cache = (time.monotonic(), members)
        return members

    async def roster(self) -> list[dict[str, Any]]:
        """The members when the broker can list them, else nothing (names then resolve against live sessions)."""
        return await self.members() if self.broker_has_extensions else []

    async def message_status(self, message_id: str) -> dict[str, Any]:
        return await self.connection.request({"type": "message_status", "messageId": message_id}, "message_status_result")

    async def sender_name(self, sender_pubkey: str, member_id: str | None = None) -> str:
        """The sender's member name (by member id, whatever session sent it), else a live session's name; from
        caches refreshed when older than 30 s or missing the sender."""
        if member_id and self.broker_has_extensions:
            member = await self._cached(self._members_cache, self.members, lambda m: m.get("memberId") == member_id)
            if member is not None and member.get("displayName"):
                return str(member["displayName"])
        if sender_pubkey in self.known_names:
            return self.known_names[sender_pubkey]
        peer = await self._cached(self._peers_cache, lambda: self.peers(include_self=True), lambda p: _has_key(p, sender_pubkey))
        if peer is not None and peer.get("displayName"):
            return str(peer["displayName"])
        return f"peer-{sender_pubkey[:8]}"

    async def _cached(self, cache, refresh, match) -> dict[str, Any] | None:
        stamp, rows = cache
        if time.monotonic() - stamp > PEER_CACHE_SECONDS or not any(match(row) for row in rows):
            try:
                rows = await refresh()
            except Exception:  # naming is best effort: the message is stored whatever its label
                pass
        return next((row for row in rows if match(row)), None)

    # --- sending ------------------------------------------------------------------------------------------

    async def resolve(self, to: str) -> Target:
        if to.strip().startswith("#"):
            topic = await self.topics.find(to)
            return Target(spec=f"#{topic['id']}", multicast=True, label=f"#{topic['name']}", topic=str(topic["name"]))
        needs_roster = not (to.strip() == "*" or to.strip().startswith("@"))
        peers = await self.peers(include_self=True) if needs_roster else []
        members = await self.roster() if needs_roster else []
        return resolve_target(to, peers, members, own_session_pubkey=self.connection.session.public_hex)

    async def send_text(self, to: str, text: str, *, priority: str = "next") -> dict[str, Any]:
        """Resolve `to`, encrypt end to end, send; returns {messageId, target, targetSpec, label} and, from our
        broker, what happened per recipient (`reach`, `recipients`, `sessionEnded`, `queueFull`)."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        if not text:
            raise ValueError("message is empty")
        # While disconnected, wait (up to the send timeout) rather than fail the peer/member lookups at once.
        await self.connection.wait_open(SEND_TIMEOUT)
        target = await self.resolve(to)
        envelope = await self.seal(target, text)
        ack = await self.connection.send(target.spec, envelope, priority=priority)
        result = {"messageId": ack.get("messageId", ""), "target": to, "targetSpec": target.spec, "label": target.label}
        for key in ("reach", "recipients", "sessionEnded", "queueFull"):
            if key in ack:
                result[key] = ack[key]
        return result

    async def seal(self, target: Target, text: str, *, as_member: bool = False) -> WireEnvelope:
        """Direct: to the member key. Topics, `*`, `@all` and large groups: the scope's keyring key (O(1) in the
        members). Small groups, and any multicast through a broker without the keyring: one key per message.
        Sealed from the session key (what the broker labels our pushes with), or `as_member` for a message the
        broker sends later from the member key (a scheduled one)."""
        sender_secret = self.mesh.secret_key if as_member else self.connection.session.secret_hex
        if not target.multicast:
            return seal_direct(text, recipient_pubkey=target.seal_to or target.spec, sender_secret_hex=sender_secret)
        scope = scope_for_target(target.spec)
        recipients: list[str] | None = None
        if target.group is not None or not self.broker_has_extensions:
            recipients = await self.multicast_recipients(target)
        if scope is None or not self.broker_has_extensions or (
            recipients is not None and len(recipients) <= MAX_PER_MESSAGE_RECIPIENTS
        ):
            return seal_group(text, recipient_pubkeys=recipients or [], sender_secret_hex=sender_secret)
        epoch, key = await self.keys.for_send(scope, await self.roster_keys())
        nonce, ciphertext = seal_scope(text, mesh_id=self.mesh.mesh_id, scope=scope, epoch=epoch, key=key,
                                       author=self.mesh.keypair)
        return WireEnvelope(nonce=nonce, ciphertext=ciphertext)

    async def seal_for(self, to: str, text: str) -> tuple[str, WireEnvelope]:
        """(targetSpec, envelope from the member key) for a message the broker delivers later."""
        target = await self.resolve(to)
        return target.spec, await self.seal(target, text, as_member=True)

    async def scope_members(self, scope: str) -> dict[str, str]:
        """member id → pubkey of who a scope's key is for, as the broker lists them."""
        if scope.startswith(TOPIC_SCOPE_PREFIX):
            return await self.topics.member_keys(scope[len(TOPIC_SCOPE_PREFIX):])
        if scope == MESH_SCOPE:
            members = await self.members()
            return {str(m["memberId"]): str(m["pubkey"]) for m in members if m.get("pubkey") and m.get("memberId")}
        group = scope.partition(":")[2]
        inside = set(await self.multicast_recipients(Target(spec=f"@{group}", multicast=True, label=group, group=group)))
        members = self._members_cache[1]  # just read by multicast_recipients
        return {str(m["memberId"]): str(m["pubkey"]).lower() for m in members
                if m.get("memberId") and str(m.get("pubkey", "")).lower() in inside}

    async def roster_keys(self) -> set[str]:
        """The member keys of the mesh (who may grant a key or author a message), refreshed every 30 s."""
        stamp, rows = self._members_cache
        if time.monotonic() - stamp > PEER_CACHE_SECONDS or not rows:
            rows = await self.members()
        return {str(m["pubkey"]).lower() for m in rows if m.get("pubkey")}

    async def multicast_recipients(self, target: Target) -> list[str]:
        """Member keys to wrap the message key for: every member (offline too) for * and @all; for @group the
        members whose default groups hold it plus the members of live sessions that joined it."""
        if target.topic is not None:
            keys = list((await self.topics.member_keys(target.spec[1:])).values())
            return sorted({k.lower() for k in keys} | {self.mesh.pubkey})
        members = await self.members()
        if target.group is None:
            keys = [str(m.get("pubkey")) for m in members if m.get("pubkey")]
        else:
            keys = [str(m["pubkey"]) for m in members if m.get("pubkey") and _in_group(m.get("groups"), target.group)]
            for peer in await self.peers(include_self=True):
                if _in_group(peer.get("groups"), target.group) and peer.get("memberPubkey"):
                    keys.append(str(peer["memberPubkey"]))
            if not keys:
                raise RequestFailed("no_recipients", f"nobody in {target.label} (no member has joined that group)")
        keys.append(self.mesh.pubkey)  # our own other sessions receive multicast too
        return sorted({k.lower() for k in keys})

    async def set_status(self, status: str) -> None:
        await self.connection.fire({"type": "set_status", "status": status})

    async def set_summary(self, summary: str) -> None:
        await self.connection.fire({"type": "set_summary", "summary": summary})

    async def join_group(self, name: str, role: str | None = None) -> None:
        frame = {"type": "join_group", "name": name}
        if role:
            frame["role"] = role
        await self.connection.fire(frame)

    async def rename_member(self, name: str) -> dict[str, Any]:
        return await self.connection.request({"type": "member_rename", "name": name}, "member_renamed")

    # --- admin --------------------------------------------------------------------------------------------

    async def invite_create(self, *, role: str | None, max_uses: int | None, expires_in_days: int | None) -> dict:
        frame: dict[str, Any] = {"type": "invite_create"}
        if role:
            frame["role"] = role
        if max_uses is not None:
            frame["maxUses"] = max_uses
        if expires_in_days is not None:
            frame["expiresInDays"] = expires_in_days
        return await self.connection.request(frame, "invite_created")

    async def apikey_create(self, *, label: str, capabilities: list[str], topics: list[str] | None,
                            expires_at: str | None, member_id: str | None = None) -> dict:
        frame: dict[str, Any] = {"type": "apikey_create", "label": label, "capabilities": capabilities}
        if member_id:
            frame["memberId"] = member_id
        if topics:
            frame["topicScopes"] = topics
        if expires_at:
            frame["expiresAt"] = expires_at
        return await self.connection.request(frame, "apikey_created")

    async def apikey_list(self) -> list[dict]:
        reply = await self.connection.request({"type": "apikey_list"}, "apikey_list_response")
        return [k for k in reply.get("keys") or [] if isinstance(k, dict)]

    async def apikey_revoke(self, key_id: str) -> dict:
        return await self.connection.request({"type": "apikey_revoke", "id": key_id}, "apikey_revoke_response")

    # --- receiving ----------------------------------------------------------------------------------------

    async def open_message(self, *, sender_pubkey: str, nonce: str, ciphertext: str, sender_member_id: Any = None,
                           target_spec: str | None = None, subtype: str | None = None) -> OpenedMessage:
        """Any message, pushed or from a topic's history: keyring (CMS1) messages here, the rest by `open_push`."""
        envelope = None if subtype == "system" or sender_pubkey == "system" else scope_envelope(ciphertext)
        if envelope is None:
            return open_push(sender_pubkey=sender_pubkey, nonce=nonce, ciphertext=ciphertext, own_keys=self.own_keys,
                             subtype=subtype)
        try:
            roster = await self.roster_keys()
            if envelope.author not in roster:  # a member who joined since the last look
                roster = {str(m["pubkey"]).lower() for m in await self.members() if m.get("pubkey")}
        except Exception:
            roster = set()
        author = None
        if isinstance(sender_member_id, str) and sender_member_id:
            member = next((m for m in self._members_cache[1] if m.get("memberId") == sender_member_id), None)
            author = str(member["pubkey"]) if member is not None and member.get("pubkey") else None
        reading = await read_scope_message(envelope, keys=self.keys, nonce=nonce, target_spec=target_spec,
                                           author_pubkey=author, roster=roster)
        return OpenedMessage(kind=reading.kind, plaintext=reading.plaintext, encrypted=True, failure=reading.failure)

    async def read_push(self, frame: dict[str, Any]) -> InboxMessage:
        sender = str(frame.get("senderPubkey") or "")
        nonce = str(frame.get("nonce") or "")
        ciphertext = str(frame.get("ciphertext") or "")
        subtype = frame.get("subtype") if isinstance(frame.get("subtype"), str) else None
        target_spec = frame.get("targetSpec") if isinstance(frame.get("targetSpec"), str) else None
        member_id = frame.get("senderMemberId")
        event_data = frame.get("eventData")
        if subtype == PushSubtype.WEBHOOK:  # plaintext by nature: the body a CI or monitor posted (§6.9)
            opened = OpenedMessage(kind="webhook", plaintext=json.dumps(event_data, ensure_ascii=False), encrypted=False)
        else:
            opened = await self.open_message(sender_pubkey=sender, nonce=nonce, ciphertext=ciphertext,
                                             sender_member_id=member_id, target_spec=target_spec, subtype=subtype)
        plaintext = opened.plaintext
        if opened.kind == "system":
            plaintext = system_text(str(frame.get("event") or ""), event_data if isinstance(event_data, dict) else {})
        topic = await self.topics.name_of(target_spec[1:]) if target_spec and target_spec.startswith("#") else None
        return InboxMessage(
            mesh_id=str(frame.get("meshId") or self.mesh.mesh_id),
            mesh_slug=self.mesh.slug,
            message_id=str(frame.get("messageId") or f"local-{time.time_ns()}"),
            sender_pubkey=sender,
            sender_name=None,
            sender_member_id=member_id if isinstance(member_id, str) and member_id else None,
            priority=str(frame.get("priority") or "next"),
            kind=opened.kind,
            plaintext=plaintext,
            failure=opened.failure,
            nonce=nonce,
            ciphertext=ciphertext,
            created_at=str(frame.get("createdAt") or now_iso()),
            received_at=now_iso(),
            subtype=subtype,
            event=frame.get("event") if isinstance(frame.get("event"), str) else None,
            event_data=json.dumps(event_data) if event_data not in (None, {}, "") else None,
            topic=topic,
            target_spec=target_spec,
        )

    async def _on_push(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "state_change":
            await self._tell(await self.read_state_change(frame))
            return
        message = await self.read_push(frame)
        data = frame.get("eventData")
        if message.kind == "system" and message.event in KEYRING_EVENTS:
            if isinstance(data, dict):  # the client's own business: never shown to a person or to Claude
                await self._on_keyring_event(message.event, data)
            return
        if message.kind == "system" and isinstance(data, dict) and data.get("pubkey") and data.get("name"):
            self.known_names[str(data["pubkey"])] = str(data["name"])
        if message.kind == "webhook":
            message.sender_name = f"webhook {message.event or '?'}"
        elif message.kind != "system" and message.sender_pubkey:
            message.sender_name = await self.sender_name(message.sender_pubkey, message.sender_member_id)
        is_new = True
        if self.inbox is not None and message.kind != "system":
            is_new = self.inbox.add(message)  # stored before the push is acknowledged to the broker
        if is_new:
            await self._tell(message)

    async def read_state_change(self, frame: dict[str, Any]) -> InboxMessage:
        """A `state_change` as a system message (client.md §7: `[state] <key> = <value> (set by <name>)`)."""
        change = await self.coordination.state_change(frame)
        value = json.dumps(change["value"]) if change["failure"] is None else f"[unreadable: {change['failure']}]"
        return InboxMessage(
            mesh_id=self.mesh.mesh_id, mesh_slug=self.mesh.slug, message_id=f"state-{time.time_ns()}",
            sender_pubkey="system", sender_name=None, sender_member_id=None, priority="low", kind="system",
            plaintext=f"[state] {change['key']} = {value} (set by {change['updatedBy'] or 'unknown'})", failure=None,
            nonce="", ciphertext="", created_at=now_iso(), received_at=now_iso(), subtype="system",
            event="state_change", event_data=json.dumps({"key": change["key"], "version": change["version"]}),
            topic=None, target_spec=None,
        )

    async def _tell(self, message: InboxMessage) -> None:
        for listener in self.listeners:
            await listener(self, message)

    async def _on_keyring_event(self, event: str | None, data: dict[str, Any]) -> None:
        """Keyring events: answer a member waiting for keys we hold; open what waited for keys we now have."""
        scope = data.get("scope")
        if not isinstance(scope, str):
            return
        if event == "key_requested" and isinstance(data.get("memberId"), str) and isinstance(data.get("pubkey"), str):
            await self.keys.share(scope, data["memberId"], data["pubkey"])
        elif event == "key_granted":
            self.keys.granted(scope)
            await self.reopen_waiting()

    async def reopen_waiting(self) -> None:
        """Messages stored while their key was missing, opened now (and shown as new)."""
        if self.inbox is None:
            return
        for message in self.inbox.waiting_for_key(self.mesh.mesh_id):
            opened = await self.open_message(sender_pubkey=message.sender_pubkey, nonce=message.nonce,
                                             ciphertext=message.ciphertext, sender_member_id=message.sender_member_id,
                                             target_spec=message.target_spec)
            if opened.failure == WAITING:
                continue
            message.plaintext, message.failure = opened.plaintext, opened.failure
            self.inbox.reopened(message)
            await self._tell(message)


def _has_key(peer: dict[str, Any], pubkey: str) -> bool:
    return pubkey in (peer.get("pubkey"), peer.get("memberPubkey"))


def _in_group(groups: Any, name: str) -> bool:
    if not isinstance(groups, list):
        return False
    for group in groups:
        group_name = group.get("name") if isinstance(group, dict) else group
        if isinstance(group_name, str) and group_name.lstrip("@") == name:
            return True
    return False

