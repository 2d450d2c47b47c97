"""Topics end to end on the mesh keyring, with real keys, a real server process and real peers (docs/encryption.md):
members of a topic exchange messages; a member who joins later reads the whole history once a holder re-wraps the
keys for it; a removed member cannot open what is sent after its removal; a substituted key blob is refused; and
the server's database holds no topic plaintext and no unwrapped key."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from peer.client import MeshClient
from peer.config import ConfigStore
from peer.connection_terms import HelloOptions, RequestFailed
from peer.inbox import WAITING, Inbox
from peer.keyring import KeyStore
from protocol.encoding import b64_decode, b64_encode
from protocol.keyring import open_scope, parse_scope, topic_scope

pytestmark = pytest.mark.slow

DUMP_TOPIC_ROWS = """
import json
from broker.models import KeyWrap
from meshes.models import TopicMessage
print(json.dumps({"history": [[m.nonce, m.ciphertext] for m in TopicMessage.objects.filter(topic__mesh_id=%r).order_by("seq")],
                  "wraps": [w.wrap for w in KeyWrap.objects.filter(mesh_id=%r)]}))
"""

REMOVE_MEMBER = """
from meshes import selectors, services
from meshes.models import Mesh
mesh = Mesh.objects.get(pk=%r)
actor = selectors.actor_for_user(mesh_id=mesh.id, user=mesh.owner)
services.member_remove(actor=actor, member_id=%r)
print("removed")
"""


def joined(e2e_server, make_peer, name: str):
    peer = make_peer(name)
    peer.json("join", f"{e2e_server.http_url}/join/{e2e_server.invite['token']}", "--name", name)
    return peer


class Member:
    """A peer's Python client (the SDK bots use) with its own config dir: inbox and keyring there."""

    def __init__(self, peer, groups: list[str] = ()):
        self.peer = peer
        self.entry = ConfigStore(peer.config_dir).load().meshes[0]
        self.inbox = Inbox(peer.config_dir)
        options = HelloOptions(display_name=peer.name, session_id=f"test-{peer.name}",
                               groups=[{"name": name} for name in groups])
        self.client = MeshClient(self.entry, options, inbox=self.inbox)

    async def __aenter__(self) -> Member:
        self.client.start()
        await self.client.connection.wait_open(15)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.close()

    def texts(self) -> list[str | None]:
        return [m.plaintext for m in self.inbox.all() if m.kind != "system"]

    async def wait_for(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.texts():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.peer.name} never got {text!r}: {self.texts()}")


async def history_texts(member: Member, topic: str, *, until_open: bool = True, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        page = await member.client.topics.history(topic, limit=200)
        messages = page["messages"]
        if not until_open or all(m["failure"] is None for m in messages) or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(0.2)


def test_a_topic_is_encrypted_end_to_end_for_its_members_only(e2e_server, make_peer):
    alice_peer, bob_peer, carol_peer = (joined(e2e_server, make_peer, n) for n in ("alice", "bob", "carol"))

    async def scenario():
        async with Member(alice_peer) as alice, Member(bob_peer) as bob, Member(carol_peer) as carol:
            created = await alice.client.topics.create("plans")
            topic_id = created["topic"]["id"]
            for member in (bob, carol):
                await member.client.topics.join("plans")
            ack = await alice.client.send_text("#plans", "launch at dawn 🚀")
            assert ack["targetSpec"] == f"#{topic_id}" and ack["reach"]["live"] == 2
            await bob.wait_for("launch at dawn 🚀")
            await carol.wait_for("launch at dawn 🚀")
            pushed = next(m for m in bob.inbox.all() if m.plaintext == "launch at dawn 🚀")
            assert pushed.kind == "topic" and pushed.topic == "plans" and pushed.failure is None
            await bob.client.send_text("#plans", "bring coffee")
            await alice.wait_for("bring coffee")
            await carol.wait_for("bring coffee")

            # A member who joins later reads the whole history once a holder (online) re-wraps the keys for it.
            dave_peer = joined(e2e_server, make_peer, "dave")
            async with Member(dave_peer) as dave:
                await dave.client.topics.join("plans")
                history = await history_texts(dave, "plans")
                assert [m["text"] for m in history] == ["bring coffee", "launch at dawn 🚀"]
                assert {m["senderName"] for m in history} == {"alice", "bob"}

                # Removed from the mesh: the next sender starts a new epoch without carol.
                e2e_server.shell(REMOVE_MEMBER % (alice.entry.mesh_id, carol.entry.member_id))
                await alice.client.send_text("#plans", "carol must not read this")
                await dave.wait_for("carol must not read this")
                await bob.wait_for("carol must not read this")
            return topic_id, KeyStore(alice_peer.config_dir, alice.entry.mesh_id), carol

    topic_id, alice_keys, carol = asyncio.run(scenario())
    scope = topic_scope(topic_id)
    rows = json.loads(e2e_server.shell(DUMP_TOPIC_ROWS % (carol.entry.mesh_id, carol.entry.mesh_id)).strip().splitlines()[-1])
    assert len(rows["history"]) == 3
    last_nonce, last_ciphertext = rows["history"][-1]
    after_removal = parse_scope(b64_decode(last_ciphertext))
    assert after_removal.scope == scope and after_removal.epoch == 2  # rotated
    carol_keys = KeyStore(carol.peer.config_dir, carol.entry.mesh_id)
    assert set(carol_keys.epochs(scope)) == {1}  # what it had, and nothing new
    nonce = b64_decode(last_nonce)
    for key in carol_keys.epochs(scope).values():
        with pytest.raises(ValueError):
            open_scope(after_removal, mesh_id=carol.entry.mesh_id, nonce=nonce, key=key)
    # The database holds ciphertext and wraps only: no text, no key in any encoding.
    stored = json.dumps(rows)
    for text in ("launch at dawn", "bring coffee", "carol must not read this"):
        assert text not in stored and b64_encode(text.encode()) not in stored
    for key in alice_keys.epochs(scope).values():
        assert key.hex() not in stored and b64_encode(key) not in stored



SUBSTITUTE_WRAP = """
from broker.models import KeyWrap
from meshes.models import Member
from protocol.crypto import SigningKeypair
from protocol.keyring import new_scope_key, wrap_key
bob = Member.objects.get(pk=%r)
outsider = SigningKeypair.generate()  # a key the hostile server made: not a member of the mesh
row = KeyWrap.objects.get(mesh_id=bob.mesh_id, scope="mesh", epoch=1, recipient=bob)
row.wrap = wrap_key(new_scope_key(), mesh_id=bob.mesh_id, scope="mesh", epoch=1, recipient_pubkey=bob.pubkey,
                    granter=outsider)
row.save()
print("swapped")
"""


def test_a_key_blob_the_server_substitutes_is_refused_and_the_message_waits(e2e_server, make_peer):
    alice_peer, bob_peer = (joined(e2e_server, make_peer, n) for n in ("alice", "bob"))

    async def scenario():
        async with Member(alice_peer) as alice:
            await alice.client.send_text("*", "before bob connects")  # epoch 1 of the mesh scope, wrapped for bob
        e2e_server.shell(SUBSTITUTE_WRAP % ConfigStore(bob_peer.config_dir).load().meshes[0].member_id)
        async with Member(bob_peer) as bob:
            deadline = time.monotonic() + 10
            while not [m for m in bob.inbox.all() if m.kind == "group"] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            [message] = [m for m in bob.inbox.all() if m.kind == "group"]
            return message, list(bob.client.keys.rejected), KeyStore(bob_peer.config_dir, bob.entry.mesh_id)

    message, rejected, bob_keys = asyncio.run(scenario())
    assert message.plaintext is None and message.failure == WAITING
    assert rejected and "not a member of this mesh" in rejected[0]
    assert bob_keys.epochs("mesh") == {}


def test_a_reference_clients_plaintext_topic_message_shows_marked_as_not_encrypted(e2e_server, make_peer):
    from protocol.envelope import seal_plaintext

    alice_peer, bob_peer = (joined(e2e_server, make_peer, n) for n in ("alice", "bob"))

    async def scenario():
        async with Member(alice_peer) as alice, Member(bob_peer) as bob:
            general = await alice.client.topics.find("#general")
            # What the reference CLI sends to a topic: base64 plaintext (client.md §5.3).
            await alice.client.connection.send(f"#{general['id']}", seal_plaintext("hello from an old client"))
            await bob.wait_for("hello from an old client")
            return next(m for m in bob.inbox.all() if m.plaintext == "hello from an old client")

    message = asyncio.run(scenario())
    assert message.kind == "broadcast" and message.topic == "general"  # shown as "broadcast (plaintext)"


BIG_ROSTER = """
from meshes import services
from meshes.models import Member, Mesh
from protocol.crypto import SigningKeypair
mesh = Mesh.objects.get(pk=%r)
members = Member.objects.bulk_create(
    [Member(mesh=mesh, pubkey=SigningKeypair.generate().public_hex, display_name=f"member-{n}") for n in range(%d)]
)
services.topic_subscribe_general_bulk(members=members)
print(Member.objects.filter(mesh=mesh, revoked_at=None, pubkey__isnull=False).count())
"""


def test_a_broadcast_to_a_thousand_members_fits_one_small_envelope_and_opens(e2e_server, make_peer):
    alice_peer, bob_peer = (joined(e2e_server, make_peer, n) for n in ("alice", "bob"))
    mesh_id = ConfigStore(alice_peer.config_dir).load().meshes[0].mesh_id
    assert int(e2e_server.shell(BIG_ROSTER % (mesh_id, 998)).strip().splitlines()[-1]) == 1000
    text = "x" * 1024

    async def scenario():
        async with Member(alice_peer) as alice, Member(bob_peer) as bob:
            ack = await alice.client.send_text("*", text)
            await bob.wait_for(text, timeout=30)
            return ack, next(m for m in bob.inbox.all() if m.plaintext == text)

    ack, message = asyncio.run(scenario())
    assert ack["reach"]["queued"] == 998 and ack["reach"]["live"] == 1
    assert message.kind == "group" and message.failure is None
    assert len(message.ciphertext) + len(message.nonce) < 8 * 1024


def test_leaving_a_topic_rotates_its_key_for_the_next_message(e2e_server, make_peer):
    alice_peer, bob_peer = (joined(e2e_server, make_peer, n) for n in ("alice", "bob"))

    async def scenario():
        async with Member(alice_peer) as alice, Member(bob_peer) as bob:
            topic_id = (await alice.client.topics.create("core"))["topic"]["id"]
            await bob.client.topics.join("core")
            await alice.client.send_text("#core", "before bob left")
            await bob.wait_for("before bob left")
            await bob.client.topics.leave("core")
            await alice.client.send_text("#core", "after bob left")
            page = await alice.client.topics.history("core")
            # A hostile broker that forgets epoch 2 (to have alice send with the key bob still has) is caught.
            e2e_server.shell(FORGET_EPOCH % (alice.entry.mesh_id, topic_scope(topic_id)))
            with pytest.raises(RequestFailed) as replayed:
                await alice.client.send_text("#core", "must not go out under epoch 1")
            assert replayed.value.code == "key_epoch_replayed"
            return topic_id, page, KeyStore(bob_peer.config_dir, bob.entry.mesh_id), alice.client.keys.store

    topic_id, page, bob_keys, alice_keys = asyncio.run(scenario())
    assert [m["text"] for m in page["messages"]] == ["after bob left", "before bob left"]
    assert set(alice_keys.epochs(topic_scope(topic_id))) == {1, 2}  # a new epoch, without bob
    assert set(bob_keys.epochs(topic_scope(topic_id))) == {1}


def test_a_large_group_uses_the_keyring_and_a_small_one_keeps_per_message_keys(e2e_server, make_peer):
    alice_peer, bob_peer = (joined(e2e_server, make_peer, n) for n in ("alice", "bob"))
    mesh_id = ConfigStore(alice_peer.config_dir).load().meshes[0].mesh_id
    e2e_server.shell(BIG_GROUP % (mesh_id, 70))

    async def scenario():
        async with Member(alice_peer) as alice, Member(bob_peer, groups=["big", "small"]) as bob:
            await alice.client.send_text("@big", "to the big group")
            await alice.client.send_text("@small", "to the small group")
            await bob.wait_for("to the big group")
            await bob.wait_for("to the small group")
            return {m.plaintext: m for m in bob.inbox.all()}

    received = asyncio.run(scenario())
    big, small = received["to the big group"], received["to the small group"]
    assert parse_scope(b64_decode(big.ciphertext)).scope == "group:big" and big.kind == "group"
    assert b64_decode(small.ciphertext).startswith(b"CMG1") and small.kind == "group"


FORGET_EPOCH = """
from broker.models import KeyWrap, ScopeEpoch
for model in (KeyWrap, ScopeEpoch):
    model.objects.filter(mesh_id=%r, scope=%r, epoch=2).delete()
print("forgotten")
"""

BIG_GROUP = """
from meshes.models import Member, Mesh
from protocol.crypto import SigningKeypair
mesh = Mesh.objects.get(pk=%r)
Member.objects.bulk_create([Member(mesh=mesh, pubkey=SigningKeypair.generate().public_hex, display_name=f"big-{n}",
                                   default_groups=[{"name": "big"}]) for n in range(%d)])
print("ok")
"""
