"""Every close code and reason of protocol.md §2.10 reaches the client over a real socket from the server the
README runs (`manage.py serve`): an in-process communicator accepts any code, so only a real server process can
show that a refused hello is really closed. Measured on daphne 4.2.3 before choosing the server: refused hellos
and sockets that never say hello stayed open (autobahn refuses to send 1008), a frame over 64 KiB dropped the TCP
connection (1006) instead of 1009 (docs/reliability.md)."""

from __future__ import annotations

import json
import signal
import time

import pytest

from protocol.crypto import SigningKeypair
from protocol.hello import hello_frame
from tests.support.rawws import RawSocket
from tests.support.servers import ServerProcess, free_port, manage, migrate, server_env

pytestmark = pytest.mark.slow

SEED = """
import json, sys
from django.contrib.auth import get_user_model
from meshes.models import Member
from meshes import services
owner = get_user_model().objects.create_user(username="o@close.test", email="o@close.test", password="x-password-123")
mesh = services.mesh_create(owner=owner, name="Close Mesh")
members = {}
for name, pubkey in json.loads(PUBKEYS).items():
    members[name] = Member.objects.create(mesh=mesh, pubkey=pubkey, display_name=name).id
print(json.dumps({"meshId": mesh.id, "members": members}))
"""
REVOKE = """
from django.utils import timezone
from meshes.models import Member
Member.objects.filter(pk=MEMBER).update(revoked_at=timezone.now())
"""
LIVE = """
from broker.models import Presence, PeerState
print(Presence.objects.filter(disconnected_at=None).count(), PeerState.objects.count())
"""


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port, BROKER_HELLO_TIMEOUT_SECONDS="1", BROKER_MAX_CONNECTIONS_PER_IP="40")
    migrate(env)
    keys = {name: SigningKeypair.generate() for name in ("alice", "bob", "gone")}
    script = SEED.replace("PUBKEYS", repr(json.dumps({n: k.public_hex for n, k in keys.items()})))
    seed = json.loads(manage(env, "shell", "-c", script).strip().splitlines()[-1])
    process = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        yield process, seed, keys
    finally:
        process.stop()


def hello(seed, keys, name, **overrides) -> bytes:
    frame = hello_frame(
        mesh_id=seed["meshId"], member_id=seed["members"][name], pubkey=keys[name].public_hex,
        secret_hex=keys[name].secret_hex, session_id=f"s-{name}-{time.monotonic_ns()}", pid=1, cwd="/tmp",
    )
    frame.update(overrides)
    return json.dumps(frame).encode()


def refused(port: int, payload: bytes) -> tuple[dict, tuple[int, str]]:
    sock = RawSocket(port)
    try:
        sock.send_frame(payload)
        opcode, error = sock.next_frame()
        assert opcode == 0x1
        return json.loads(error), sock.close_frame()
    finally:
        sock.close()


def test_refused_hellos_are_closed_1008_with_their_reason(server):
    process, seed, keys = server
    cases = {
        "bad_signature": hello(seed, keys, "alice", signature="0" * 128),
        "timestamp_skew": hello(seed, keys, "alice", timestamp=1),
        "malformed": hello(seed, keys, "alice", pubkey="zz"),
        "unauthorized": hello(seed, {**keys, "alice": SigningKeypair.generate()}, "alice"),
        "bad_session_pubkey": hello(seed, keys, "alice", sessionPubkey="XYZ"),
    }
    for code, payload in cases.items():
        error, closed = refused(process.port, payload)
        assert error["code"] == code
        assert closed == (1008, code)


def test_revoked_member_is_closed_4002_banned(server):
    process, seed, keys = server
    manage(process.env, "shell", "-c", REVOKE.replace("MEMBER", repr(seed["members"]["gone"])))
    error, closed = refused(process.port, hello(seed, keys, "gone"))
    assert error["code"] == "revoked" and closed == (4002, "banned")


def test_sockets_that_never_say_hello_are_closed(server):
    process, _, _ = server
    sockets = [RawSocket(process.port) for _ in range(30)]
    try:
        assert {sock.close_frame() for sock in sockets} == {(1008, "no_hello")}
    finally:
        for sock in sockets:
            sock.close()


def test_over_the_per_ip_cap_is_closed_1008_ip_capacity(server):
    process, _, _ = server
    held = [RawSocket(process.port) for _ in range(40)]
    try:
        extra = RawSocket(process.port)
        opcode, error = extra.next_frame()
        assert json.loads(error)["code"] == "capacity"
        assert extra.close_frame() == (1008, "ip_capacity")
        extra.close()
    finally:
        for sock in held:
            sock.close()


def test_oversized_frame_is_1009_and_invalid_utf8_is_1007(server):
    process, seed, keys = server
    big = RawSocket(process.port)
    big.send_frame(b"x" * 70_000)
    assert big.close_frame()[0] == 1009
    bad = RawSocket(process.port)
    bad.send_frame(b'{"type": "\xff\xfe"}')
    assert bad.close_frame()[0] == 1007


def test_sigterm_closes_1001_shutting_down_and_ends_presences(server):
    process, seed, keys = server
    sockets = []
    for name in ("alice", "bob"):
        sock = RawSocket(process.port)
        sock.send_frame(hello(seed, keys, name))
        assert json.loads(sock.next_frame()[1])["type"] == "hello_ack"
        sockets.append(sock)
    process.stop(signal.SIGTERM)
    for sock in sockets:
        assert sock.close_frame() == (1001, "shutting down")
        sock.close()
    live, saved = manage(process.env, "shell", "-c", LIVE).split()[-2:]
    assert (live, saved) == ("0", "2")
