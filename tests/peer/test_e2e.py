"""End to end against a real server process: two peers in separate config dirs join with real invites,
exchange direct, @group and broadcast messages both ways, and the server holds no readable plaintext.
An MCP client (the `mcp` package's stdio client) drives `claudemesh mcp` and receives channel notifications.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest

from tests.support.mcp_client import mcp_session

pytestmark = pytest.mark.slow

DUMP_MESSAGE_ROWS = """
import json
from django.apps import apps
rows = []
for model in apps.get_app_config("broker").get_models():
    if "message" not in model.__name__.lower():
        continue
    for row in model.objects.all():
        rows.append({"model": model.__name__, **{f.attname: str(getattr(row, f.attname)) for f in model._meta.concrete_fields}})
print(json.dumps(rows))
"""


def join_both(e2e_server, make_peer):
    invite = e2e_server.invite
    alice, bob = make_peer("alice"), make_peer("bob")
    joined = alice.json("join", f"{e2e_server.http_url}/join/{invite['token']}", "--name", "alice")
    assert joined["slug"] == invite["slug"] and joined["inviteVersion"] == 1
    joined = bob.json("join", f"{e2e_server.http_url}/i/{invite['code']}", "--name", "bob")
    assert joined["meshId"] == invite["meshId"]
    return alice, bob


def test_two_peers_exchange_direct_group_and_broadcast(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    for peer in (alice, bob):
        peer.run("group", "join", "@team")
    alice.watch()
    bob.watch()

    names = {p["displayName"] for p in alice.json("peers")}
    assert "bob" in names

    texts = {
        "alice-dm": "hello bob, this is a direct message 🔐",
        "bob-dm": "hi alice, direct reply",
        "alice-group": "alice to @team: deploy at noon",
        "bob-group": "bob to @team: ack",
        "alice-all": "alice to everyone",
        "bob-all": "bob to everyone",
    }
    sent = [
        alice.json("send", "bob", texts["alice-dm"]),
        bob.json("send", "alice", texts["bob-dm"], "--priority", "now"),
        alice.json("send", "@team", texts["alice-group"]),
        bob.json("send", "@team", texts["bob-group"]),
        alice.json("send", "*", texts["alice-all"]),
        bob.json("send", "*", texts["bob-all"], "--priority", "low"),
    ]
    assert all(s["ok"] and s["messageId"] for s in sent)

    assert bob.wait_for_text(texts["alice-dm"])["kind"] == "direct"
    assert alice.wait_for_text(texts["bob-dm"])["kind"] == "direct"
    assert bob.wait_for_text(texts["alice-group"])["kind"] == "group"
    assert alice.wait_for_text(texts["bob-group"])["kind"] == "group"
    assert bob.wait_for_text(texts["alice-all"])["kind"] == "group"
    assert alice.wait_for_text(texts["bob-all"])["kind"] == "group"

    rows = json.loads(e2e_server.shell(DUMP_MESSAGE_ROWS).strip().splitlines()[-1])
    assert len(rows) >= len(texts), rows
    stored = json.dumps(rows)
    database = b"".join(p.read_bytes() for p in e2e_server.tmp.glob("server.sqlite3*"))
    for text in texts.values():
        encoded = text.encode("utf-8")
        for needle in (encoded, base64.b64encode(encoded)):
            assert needle.decode() not in stored
            assert needle not in database


def test_inbox_marks_read_and_shows_undecryptable(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    alice.run("send", "bob", "first")  # bob is offline: queued for him
    unread = bob.json("inbox")
    assert [m["plaintext"] for m in unread] == ["first"]
    assert unread[0]["senderName"] == "alice" and unread[0]["senderMemberId"]
    assert bob.json("inbox", "--local") == []
    assert [m["plaintext"] for m in bob.json("inbox", "--local", "--all")] == ["first"]


def test_a_message_shown_by_watch_is_not_new_again(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    watch = bob.watch()
    alice.run("send", "bob", "seen live")
    line = json.loads(watch.stdout.readline())
    assert line["plaintext"] == "seen live" and line["senderName"] == "alice"
    bob.wait_for_text("seen live")
    assert bob.json("inbox", "--local") == []


def test_cli_verbs_against_the_broker(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    bob.watch()
    result = alice.run("send", "nobody-here", "hi", check=False)
    assert result.returncode == 5 and "no member or session called 'nobody-here'" in result.stderr
    assert "bob (member " in result.stderr
    assert alice.json("summary", "testing things") == {"summary": "testing things"}
    assert alice.json("status", "set", "dnd") == {"status": "dnd"}
    me = alice.json("whoami")
    assert me[0]["slug"] == e2e_server.invite["slug"]
    doctor = alice.json("doctor", check=False)
    hello_checks = [c for c in doctor["checks"] if "hello accepted" in c["name"]]
    assert hello_checks and hello_checks[0]["ok"], doctor
    alice.env["CLAUDEMESH_HOOK_DEBUG"] = "1"
    hook = alice.run("hook", "working")
    assert hook.stdout == "" and f"{e2e_server.http_url} {me[0]['slug']}: 200" in hook.stderr, hook.stderr
    sent = alice.json("send", "bob", "status please")
    status = alice.json("message-status", sent["messageId"])
    assert status["messageId"] == sent["messageId"]


def test_invites_and_api_keys_over_the_socket(e2e_server, make_peer):
    invite = e2e_server.invite
    admin, member = make_peer("admin"), make_peer("member")
    admin.run("join", f"ic://join/{invite['adminToken']}", "--name", "admin")
    member.run("join", f"{e2e_server.http_url}/i/{invite['code']}", "--name", "member")

    created = admin.json("invite", "--max-uses", "2", "--expires-days", "1")
    assert created["code"] and created["token"]
    newcomer = make_peer("newcomer")
    assert newcomer.json("join", created["shortUrl"])["meshId"] == invite["meshId"]

    result = member.run("invite", check=False)
    assert result.returncode == 7 and "forbidden" in result.stderr

    key = admin.json("apikey", "create", "ci-key", "--cap", "send")
    assert key["secret"].startswith("cm_")
    assert any(k["id"] == key["id"] for k in admin.json("apikey", "list"))
    result = admin.run("apikey", "revoke", "zzzzzzzz", check=False)
    assert result.returncode == 5 and "not_found" in result.stderr
    assert admin.json("apikey", "revoke", key["id"][:10]) == {"revoked": key["id"]}


def test_mcp_session_lists_calls_and_receives_channel_notifications(e2e_server, make_peer):
    invite = e2e_server.invite
    carol, dave = make_peer("carol"), make_peer("dave")
    carol.run("join", f"{e2e_server.http_url}/i/{invite['code']}", "--name", "carol")
    dave_member_id = dave.json("join", f"{e2e_server.http_url}/i/{invite['code']}", "--name", "dave")["memberId"]
    dave.watch()

    async def scenario():
        received: asyncio.Queue = asyncio.Queue()
        async with mcp_session(carol.env, received) as mcp:
            session, call, init = mcp.session, mcp.call, mcp.init
            assert init.capabilities.experimental == {"claude/channel": {}}
            assert "untrusted" in (init.instructions or "")
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert tools == {"list_peers", "list_members", "send_message", "check_messages", "set_summary",
                             "set_status", "message_status", "topics", "whoami", "state", "remember", "recall",
                             "tasks", "remind", "mesh_info", "share_file", "fetch_file"}
            text, error = await mcp.wait_open()  # the broker connection comes up in the background
            assert "open" in text and not error
            text, error = await call("list_peers")
            assert "dave" in text and not error
            assert not (await call("set_summary", {"summary": "reviewing"}))[1]
            assert not (await call("set_status", {"status": "working"}))[1]
            text, error = await call("list_members")
            assert "dave  member  online" in text and "carol  member  online" in text and "(you)" in text
            text, error = await call("send_message", {"to": "dave", "message": "hi dave from mcp"})
            assert text.startswith("✓ dave: delivered to a live session · id ") and not error, text
            message_id = text.split("full id ")[1].rstrip(")")
            text, error = await call("message_status", {"id": message_id[:8]})  # the short id it printed
            assert message_id[:12] in text and "dave (member " in text and not error
            text, error = await call("send_message", {"to": "nobody", "message": "x"})
            assert error and "no member or session called" in text and "dave (member" in text
            assert (await call("check_messages"))[0] == "No new messages."

            dave.run("send", "carol", "hello carol via channel", "--priority", "now")
            note = await mcp.next_message()
            assert note.content == "[URGENT] dave: hello carol via channel"
            assert note.meta["from_name"] == "dave" and note.meta["priority"] == "now"
            assert note.meta["from_member_id"] == dave_member_id
            assert note.meta["mesh_slug"] == invite["slug"]
            text, error = await call("check_messages")
            assert "hello carol via channel" in text and "1 new message" in text

            # Arrives while this session runs but is not read before it ends: must survive the restart.
            dave.run("send", "carol", "read me after a restart")
            await mcp.next_message()

        # A new MCP server process (Claude Code restarted) still has the unread message.
        async with mcp_session(carol.env) as restarted:
            text, _ = await restarted.call("check_messages")
            assert "read me after a restart" in text
            assert "hello carol via channel" not in text

        # Under a Claude Code that shows channel pushes, a pushed message is read: check_messages does not repeat it.
        async with mcp_session({**carol.env, "CLAUDEMESH_CHANNELS": "on"}, received) as shown:
            await shown.session.list_tools()
            await shown.wait_open()
            dave.run("send", "carol", "pushed and shown")
            note = await shown.next_message()
            assert "pushed and shown" in note.content
            assert (await shown.call("check_messages"))[0] == "No new messages."

    asyncio.run(scenario())
    dave.wait_for_text("hi dave from mcp")
    assert os.environ.get("CLAUDEMESH_CONFIG_DIR") != str(carol.config_dir)


def test_reconnect_keeps_session_and_a_send_made_while_down_goes_out_once(tmp_path, make_peer):
    """Stop the server under a connected client, send while it is down, start it again: the client reconnects
    with the same session id and key, the queued send goes out exactly once, and the recipient gets it."""
    from peer.client import MeshClient
    from peer.config import ConfigStore
    from peer.connection_terms import HelloOptions
    from peer.inbox import Inbox
    from tests.support.servers import MINT_INVITE, ServerProcess, free_port, manage, migrate, server_env


    port = free_port()
    env = server_env(tmp_path, port)
    migrate(env)
    server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        invite = json.loads(manage(env, "shell", "-c", MINT_INVITE).strip().splitlines()[-1])
        alice, bob = make_peer("alice"), make_peer("bob")
        alice.run("join", f"http://127.0.0.1:{port}/i/{invite['code']}", "--name", "alice")
        bob.run("join", f"http://127.0.0.1:{port}/i/{invite['code']}", "--name", "bob")
        bob.watch()

        async def scenario():
            store = ConfigStore(alice.config_dir)
            mesh = store.load().meshes[0]
            client = MeshClient(mesh, HelloOptions(display_name="alice", session_id="reconnect-test-session"),
                                inbox=Inbox(alice.config_dir))
            client.start()
            try:
                await client.connection.wait_open(10)
                session_key = client.connection.session.public_hex
                assert client.connection.delivery_ack is True
                server.stop()
                for _ in range(100):
                    if not client.connection.is_open:
                        break
                    await asyncio.sleep(0.1)
                assert not client.connection.is_open
                sending = asyncio.create_task(client.send_text("*", "sent while the broker was down"))
                await asyncio.sleep(0.5)
                assert not sending.done()
                server.start()
                result = await asyncio.wait_for(sending, 60)
                assert result["messageId"]
                assert client.connection.session.public_hex == session_key
                assert client.connection.options.session_id == "reconnect-test-session"
                peers = await client.peers(include_self=True)
                assert any(p.get("pubkey") == session_key and p.get("sessionId") == "reconnect-test-session" for p in peers)
            finally:
                await client.close()

        asyncio.run(scenario())
        bob.wait_for_text("sent while the broker was down", timeout=40)
        texts = bob.inbox_texts()
        assert texts.count("sent while the broker was down") == 1
    finally:
        server.stop()


def test_v2_claim_binds_the_ed25519_identity(e2e_server, make_peer):
    """CLAUDEMESH_INVITE_V2=1: the short code is claimed with POST /invites/<code>/claim, sending peer_pubkey
    and display_name, the root key arrives sealed, and the new identity can say hello."""
    erin, frank = make_peer("erin"), make_peer("frank")
    erin.env["CLAUDEMESH_INVITE_V2"] = "1"
    joined = erin.json("join", f"{e2e_server.http_url}/i/{e2e_server.invite['code']}", "--name", "erin")
    assert joined["inviteVersion"] == 2 and joined["meshId"] == e2e_server.invite["meshId"]
    entry = json.loads((erin.config_dir / "config.json").read_text())["meshes"][0]
    assert len(base64.urlsafe_b64decode(entry["rootKey"] + "=")) == 32
    assert entry["brokerUrl"] == e2e_server.process.ws_url
    frank.run("join", f"{e2e_server.http_url}/i/{e2e_server.invite['code']}", "--name", "frank")
    frank.watch()
    assert erin.json("send", "frank", "hello from a v2 member")["ok"]
    frank.wait_for_text("hello from a v2 member")


def test_removed_member_gets_a_clear_error_fast(e2e_server, make_peer):
    gina = make_peer("gina")
    joined = gina.json("join", f"{e2e_server.http_url}/i/{e2e_server.invite['code']}", "--name", "gina")
    e2e_server.shell(
        "from django.contrib.auth import get_user_model\n"
        "from meshes import selectors, services\n"
        f"owner = get_user_model().objects.get(email='{e2e_server.invite['ownerEmail']}')\n"
        f"actor = selectors.actor_for_user(mesh_id='{joined['meshId']}', user=owner)\n"
        f"services.member_remove(actor=actor, member_id='{joined['memberId']}')\n"
    )
    result = gina.run("peers", check=False, timeout=30)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "removed" in result.stderr and "Traceback" not in result.stderr


def test_original_client_frames_interoperate(e2e_server, make_peer):
    """A peer speaking the reference client's wire format by hand (no deliveryAck, raw PyNaCl crypto_box DM,
    base64-plaintext broadcast) reaches our client: the DM decrypts, the plaintext broadcast displays."""
    import time as _time

    import nacl.bindings as sodium
    import nacl.exceptions
    import nacl.signing
    import nacl.utils
    from websockets.sync.client import connect

    legacy, hana = make_peer("legacy"), make_peer("hana")
    legacy.run("join", f"{e2e_server.http_url}/i/{e2e_server.invite['code']}", "--name", "legacy")
    hana.run("join", f"{e2e_server.http_url}/i/{e2e_server.invite['code']}", "--name", "hana")
    hana.watch()
    mesh = json.loads((legacy.config_dir / "config.json").read_text())["meshes"][0]

    session = nacl.signing.SigningKey.generate()
    member_sk64 = bytes.fromhex(mesh["secretKey"])
    timestamp = int(_time.time() * 1000)
    canonical = f"{mesh['meshId']}|{mesh['memberId']}|{mesh['pubkey']}|{timestamp}".encode()
    hello = {"type": "hello", "meshId": mesh["meshId"], "memberId": mesh["memberId"], "pubkey": mesh["pubkey"],
             "sessionPubkey": bytes(session.verify_key).hex(), "displayName": "legacy", "sessionId": "legacy-1",
             "pid": os.getpid(), "cwd": "/tmp", "hostname": "legacy-host", "peerType": "ai", "channel": "claude-code",
             "timestamp": timestamp,
             "signature": nacl.signing.SigningKey(member_sk64[:32]).sign(canonical).signature.hex()}

    def receive(ws, kind):
        while True:
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("type") == kind:
                return frame

    with connect(e2e_server.process.ws_url) as ws:
        ws.send(json.dumps(hello))
        receive(ws, "hello_ack")
        ws.send(json.dumps({"type": "list_peers", "_reqId": "r1"}))
        peers = receive(ws, "peers_list")["peers"]
        hana_key = next(p["pubkey"] for p in peers if p["displayName"] == "hana")
        nonce = nacl.utils.random(24)
        session_sk64 = bytes(session) + bytes(session.verify_key)
        ct = sodium.crypto_box(b"dm from the original client", nonce,
                               sodium.crypto_sign_ed25519_pk_to_curve25519(bytes.fromhex(hana_key)),
                               sodium.crypto_sign_ed25519_sk_to_curve25519(session_sk64))
        ws.send(json.dumps({"type": "send", "id": "a1", "targetSpec": hana_key, "priority": "now",
                            "nonce": base64.b64encode(nonce).decode(), "ciphertext": base64.b64encode(ct).decode()}))
        assert receive(ws, "ack")["queued"] is True
        ws.send(json.dumps({"type": "send", "id": "a2", "targetSpec": "*", "priority": "next",
                            "nonce": base64.b64encode(nacl.utils.random(24)).decode(),
                            "ciphertext": base64.b64encode(b"plaintext broadcast from the original client").decode()}))
        assert receive(ws, "ack")["queued"] is True

        # And back: our client's DM opens with the original client's algorithm.
        hana.run("send", "legacy", "dm to the original client")
        while True:
            push = receive(ws, "push")
            if push.get("subtype") != "system" and push["senderPubkey"] != "system":
                break
        sender_x = sodium.crypto_sign_ed25519_pk_to_curve25519(bytes.fromhex(push["senderPubkey"]))
        opened = None
        for secret in (session_sk64, member_sk64):  # the reference tries its session secret, then its member secret
            try:
                opened = sodium.crypto_box_open(base64.b64decode(push["ciphertext"]), base64.b64decode(push["nonce"]),
                                                sender_x, sodium.crypto_sign_ed25519_sk_to_curve25519(secret))
                break
            except nacl.exceptions.CryptoError:
                continue
        assert opened == b"dm to the original client"

    dm = hana.wait_for_text("dm from the original client")
    assert dm["kind"] == "direct" and dm["senderPubkey"] == bytes(session.verify_key).hex()
    broadcast = hana.wait_for_text("plaintext broadcast from the original client")
    assert broadcast["kind"] == "broadcast"
