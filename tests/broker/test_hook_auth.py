"""Who may set a session's status through `POST /hook/set-status`: the member itself with a signed hook; an
unsigned (reference) hook only reaches sessions that do not sign and that connected from the caller's address,
and never learns presence ids."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
from channels.testing import HttpCommunicator

from broker.models import Presence
from protocol.hooks import hook_signed_fields
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def signed(identity, cwd: str, status: str, **overrides) -> dict:
    fields = hook_signed_fields(
        mesh_id=identity.member.mesh_id, member_id=identity.member.id, secret_hex=identity.keypair.secret_hex,
        cwd=cwd, status=status,
    )
    return {"cwd": cwd, "status": status, "pid": 555, **fields, **overrides}


@dataclass
class Answer:
    status_code: int
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


async def post(async_client, body: dict, ip: str = "127.0.0.1") -> Answer:
    """The hook through the project's ASGI app, from client address `ip` (Django's test client cannot set it)."""
    from claudemesh.asgi import application

    communicator = HttpCommunicator(
        application, "POST", "/hook/set-status", body=json.dumps(body).encode(), headers=[(b"content-type", b"application/json"), (b"host", b"testserver")]
    )
    communicator.scope["client"] = [ip, 0]
    response = await communicator.get_response()
    return Answer(response["status"], response["body"])


async def status_of(cwd: str) -> str:
    return await db(lambda: Presence.objects.get(cwd=cwd, disconnected_at=None).status)()


async def test_an_anonymous_hook_from_elsewhere_cannot_hold_a_peers_messages(make_member, connect, async_client):
    """Given bob connected from 10.0.0.5, when an anonymous caller elsewhere posts `dnd` for bob's cwd (shown by
    list_peers), then bob's status is unchanged, his DMs still arrive, and no presence id is disclosed."""
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice, client=("10.0.0.4", 1))
    b = await connect(bob, client=("10.0.0.5", 1), pid=555, cwd="/work/bob")
    answer = (await post(async_client, {"cwd": "/work/bob", "status": "dnd", "pid": 555}, ip="10.6.6.6")).json()
    assert answer == {"ok": True, "pending": True}
    assert await status_of("/work/bob") == "idle"
    await a.send({"type": "send", "id": "x", "targetSpec": bob.pubkey, "nonce": "n", "ciphertext": "arrives"})
    ack = await a.expect("ack")
    assert (await b.expect_push(ack["messageId"]))["ciphertext"] == "arrives"
    await b.disconnect()
    again = await connect(bob, client=("10.0.0.5", 1), pid=555, cwd="/work/bob")  # nor does its pending status stick
    assert again.closed is None and await status_of("/work/bob") == "idle"


async def test_an_anonymous_hook_from_the_same_address_works_for_an_unsigned_session(make_member, connect, async_client):
    bob = await db(make_member)("bob")
    await connect(bob, client=("10.0.0.5", 1), pid=555, cwd="/work/bob")
    answer = (await post(async_client, {"cwd": "/work/bob", "status": "working", "pid": 555}, ip="10.0.0.5")).json()
    assert answer == {"ok": True}  # applied, but anonymous callers never see presence ids
    assert await status_of("/work/bob") == "working"


async def test_a_signing_session_ignores_anonymous_hooks(make_member, connect, async_client):
    bob = await db(make_member)("bob")
    await connect(bob, client=("10.0.0.5", 1), pid=555, cwd="/work/bob", signedHooks=True)
    await post(async_client, {"cwd": "/work/bob", "status": "dnd", "pid": 555}, ip="10.0.0.5")
    assert await status_of("/work/bob") == "idle"


async def test_a_signed_hook_sets_the_members_own_status_from_anywhere(make_member, connect, async_client):
    bob = await db(make_member)("bob")
    await connect(bob, client=("10.0.0.5", 1), pid=555, cwd="/work/bob", signedHooks=True)
    answer = (await post(async_client, signed(bob, "/work/bob", "working"), ip="192.0.2.1")).json()
    assert answer["ok"] is True and len(answer["presence_id"]) == 32
    assert await status_of("/work/bob") == "working"


async def test_a_signed_hook_reaches_only_the_signers_sessions(make_member, connect, async_client):
    bob, mallory = await db(make_member)("bob"), await db(make_member)("mallory")
    await connect(bob, client=("10.0.0.5", 1), pid=555, cwd="/work/bob", signedHooks=True)
    answer = (await post(async_client, signed(mallory, "/work/bob", "dnd"))).json()
    assert answer == {"ok": True, "pending": True}
    assert await status_of("/work/bob") == "idle"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"signature": "0" * 128}, "bad_signature"),
        ({"status": "dnd"}, "bad_signature"),  # signed for `working`
        ({"timestamp": int(time.time() * 1000) - 120_000}, "timestamp_skew"),
        ({"memberId": "../x"}, "malformed"),
    ],
)
async def test_a_bad_signed_hook_is_refused(make_member, connect, async_client, change, code):
    bob = await db(make_member)("bob")
    await connect(bob, pid=555, cwd="/work/bob", signedHooks=True)
    response = await post(async_client, {**signed(bob, "/work/bob", "working"), **change})
    assert (response.status_code, response.json()["code"]) == (401, code)
    assert await status_of("/work/bob") == "idle"
