"""The routes over a real daphne process (ASGI, the full middleware stack, no test client): an API key
drives /api/v1, a peer enrolls with POST /join, another claims the short code, the short link resolves."""

from __future__ import annotations

import base64
import json

import httpx
import nacl.public
import pytest

from protocol.crypto import SigningKeypair
from tests.support.servers import ServerProcess, free_port, manage, migrate, server_env

pytestmark = pytest.mark.slow

SEED = """
import json
from django.contrib.auth import get_user_model
from meshes import selectors, services
owner = get_user_model().objects.create_user(username="o@http.test", email="o@http.test", password="x-password-123")
mesh = services.mesh_create(owner=owner, name="HTTP Mesh")
actor = selectors.actor_for_user(mesh_id=mesh.id, user=owner)
key, secret = services.api_key_create(actor=actor, label="e2e", capabilities=["admin"])
print(json.dumps({"meshId": mesh.id, "secret": secret, "rootKey": mesh.root_key_b64url()}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("platform-http")
    port = free_port()
    env = server_env(tmp, port)
    migrate(env)
    seed = json.loads(manage(env, "shell", "-c", SEED).strip().splitlines()[-1])
    process = ServerProcess(port=port, env=env, log_path=tmp / "server.log").start()
    try:
        yield process, seed
    finally:
        process.stop()


def test_api_key_invite_join_and_claim_over_http(server):
    process, seed = server
    auth = {"Authorization": f"Bearer {seed['secret']}"}
    with httpx.Client(base_url=process.http_url, timeout=10) as http:
        # Given an admin API key: it sees its mesh and mints an invite (no cookie, no CSRF token)
        me = http.get("/api/v1/me", headers=auth)
        assert me.status_code == 200 and me.json()["mesh"]["id"] == seed["meshId"]
        assert http.get("/api/v1/me").json()["code"] == "api_key_missing"
        invite = http.post("/api/v1/invites", headers=auth, json={"maxUses": 3})
        assert invite.status_code == 201, invite.text
        invite = invite.json()

        # When a peer resolves the short code and enrolls with the v1 token
        resolved = http.get(f"/api/public/invite-code/{invite['code']}").json()
        token = resolved["token"]
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        peer = SigningKeypair.generate()
        joined = http.post(
            "/join",
            json={
                "invite_token": token,
                "invite_payload": payload,
                "peer_pubkey": peer.public_hex,
                "display_name": "p",
            },
        )

        # and another claims the same code with an x25519 key
        recipient = nacl.public.PrivateKey.generate()
        public = base64.urlsafe_b64encode(bytes(recipient.public_key)).rstrip(b"=").decode()
        claimed = http.post(f"/api/public/invites/{invite['code']}/claim", json={"recipient_x25519_pubkey": public})

        # Then both are members, the root key arrives sealed, and the invite shows two uses
        assert resolved["found"] is True and token == invite["token"]
        assert joined.status_code == 200 and joined.json()["ok"] is True
        assert claimed.status_code == 200, claimed.text
        sealed = claimed.json()["sealed_root_key"]
        root = nacl.public.SealedBox(recipient).decrypt(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
        assert base64.urlsafe_b64encode(root).rstrip(b"=").decode() == seed["rootKey"]
        listed = {i["id"]: i for i in http.get("/api/v1/invites", headers=auth).json()["invites"]}
        assert listed[invite["id"]]["usedCount"] == 2
        members = http.get("/api/v1/members", headers=auth).json()["members"]
        assert peer.public_hex in {m["pubkey"] for m in members}
        assert http.get(f"/api/public/invite/{token}").json()["valid"] is True
