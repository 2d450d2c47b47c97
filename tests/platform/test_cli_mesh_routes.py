"""The mesh routes a signed-in terminal calls, as the reference CLI sends them (client.md Appendix B): `new`
(`/cli/mesh/create`), `invite` (with e-mail through Django's mail settings), `whoami`/`list` (`/api/my/*`,
`/cli/meshes`), `rename` (`PATCH /api/my/meshes/<slug>`), `delete`, and grants with the account token. Each
obeys the dashboard's rules and is audited with `via: "cli"`."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from accounts.cli_sessions import cli_session_mint
from meshes.models import AuditEvent, Member, Mesh, Role
from protocol.crypto import SigningKeypair
from tests.support.identities import new_identity

pytestmark = pytest.mark.django_db
REFERENCE_HEADERS = {"Accept": "application/json", "User-Agent": "claudemesh-cli/1.0"}


def _bearer(user) -> dict[str, str]:
    _, token = cli_session_mint(user=user, kind="device-code", hostname="laptop")
    return {**REFERENCE_HEADERS, "Authorization": f"Bearer {token}"}


def _call(client, method: str, path: str, headers: dict, body=None):
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, path, data=data, content_type="application/json", headers=headers)


def test_new_invite_list_rename_and_delete_as_the_reference_cli_calls_them(client, make_user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alice = make_user("alice@example.test")
    headers = _bearer(alice)
    pubkey = SigningKeypair.generate().public_hex
    # new: the terminal's key becomes the owner member, bound to the account
    created = _call(client, "POST", "/cli/mesh/create", headers, {"name": "Team Alpha", "pubkey": pubkey})
    assert created.status_code == 200
    body = created.json()
    assert {"id", "slug", "name", "member_id"} <= set(body) and body["slug"] == "team-alpha"
    owner = Member.objects.get(pk=body["member_id"])
    assert owner.pubkey == pubkey and owner.user == alice and owner.role == Role.OWNER
    # invite, e-mailed through Django's mail settings
    invited = _call(client, "POST", "/cli/mesh/team-alpha/invite", headers, {"email": "bob@example.test", "role": "admin"})
    assert invited.status_code == 200
    invite = invited.json()
    assert invite["url"].endswith(f"/i/{invite['code']}") and invite["emailed"] is True and invite["role"] == "admin"
    assert mail.outbox[-1].to == ["bob@example.test"] and invite["url"] in mail.outbox[-1].body
    assert "rootKey" not in mail.outbox[-1].body and "/join/" not in mail.outbox[-1].body
    # whoami and list
    assert _call(client, "GET", "/api/my/profile", headers).json() == {
        "id": str(alice.pk), "display_name": "alice@example.test", "email": "alice@example.test"}
    mine = _call(client, "GET", "/api/my/meshes", headers).json()
    assert mine == [{"id": body["id"], "slug": "team-alpha", "name": "Team Alpha", "role": "owner", "member_count": 1}]
    listed = _call(client, "GET", "/cli/meshes", headers).json()["meshes"]
    assert listed[0]["is_owner"] is True and listed[0]["active_peers"] == 0 and listed[0]["broker_url"].endswith("/ws")
    # rename keeps the slug
    renamed = _call(client, "PATCH", "/api/my/meshes/team-alpha", headers, {"name": "Team Beta"})
    assert renamed.status_code == 200 and Mesh.objects.get(pk=body["id"]).name == "Team Beta"
    # delete archives
    deleted = _call(client, "DELETE", "/cli/mesh/team-alpha", headers, {"user_id": str(alice.pk)})
    assert deleted.json()["ok"] is True and deleted.json()["deleted"] == "team-alpha"
    assert Mesh.objects.get(pk=body["id"]).archived_at is not None
    assert _call(client, "GET", "/cli/meshes", headers).json() == {"meshes": []}
    # every step is in the mesh's audit log, from the terminal
    events = list(AuditEvent.objects.filter(mesh_id=body["id"]).order_by("id").values_list("event_type", "payload"))
    assert [e for e, _ in events] == ["mesh_created", "invite_created", "invite_emailed", "mesh_renamed", "mesh_archived"]
    assert all(payload["via"] == "cli" for _, payload in events)


def test_the_account_rules_are_the_dashboard_s(client, make_user, mesh, owner):
    member_user = make_user("member@example.test")
    new_identity(mesh, "carol", user=member_user)
    headers = _bearer(member_user)
    # a plain member may not invite or delete, and a stranger does not see the mesh at all
    assert _call(client, "POST", f"/cli/mesh/{mesh.slug}/invite", headers, {}).status_code == 403
    refused = _call(client, "DELETE", f"/cli/mesh/{mesh.slug}", headers)
    assert refused.status_code == 403 and refused.json()["error"] == "Only the mesh owner can delete it"
    assert _call(client, "PATCH", f"/api/my/meshes/{mesh.slug}", headers, {"name": "Mine now"}).status_code == 403
    stranger = _bearer(make_user("stranger@example.test"))
    assert _call(client, "POST", f"/cli/mesh/{mesh.slug}/invite", stranger, {}).status_code == 404
    assert _call(client, "DELETE", f"/cli/mesh/{mesh.slug}", stranger).status_code == 404
    # bad bodies get the reference's messages
    owner_headers = _bearer(owner)
    assert _call(client, "POST", "/cli/mesh/create", owner_headers, {"pubkey": "00" * 32}).json()["error"] == "name required"
    no_key = _call(client, "POST", "/cli/mesh/create", owner_headers, {"name": "Keyless"})
    assert no_key.status_code == 400 and no_key.json()["error"] == "pubkey required (64 hex chars)"
    bad_key = _call(client, "POST", "/cli/mesh/create", owner_headers, {"name": "Bad key", "pubkey": "zz"})
    assert bad_key.status_code == 400 and not Mesh.objects.filter(name="Bad key").exists()
    bad_mail = _call(client, "POST", f"/cli/mesh/{mesh.slug}/invite", owner_headers, {"email": "not an address"})
    assert bad_mail.status_code == 400


def test_grants_merge_with_the_account_token(client, make_user, mesh):
    bob_user = make_user("bob@example.test")
    bob, alice = new_identity(mesh, "bob", user=bob_user), new_identity(mesh, "alice")
    path = f"/cli/mesh/{mesh.slug}/grants"
    merged = _call(client, "POST", path, _bearer(bob_user), {"grants": {alice.pubkey: ["dm"]}})
    assert merged.status_code == 200 and merged.json() == {"ok": True, "grants": {alice.pubkey: ["dm"]}}
    assert Member.objects.get(pk=bob.member.pk).peer_grants == {alice.pubkey: ["dm"]}
    stranger = _call(client, "POST", path, _bearer(make_user()), {"grants": {alice.pubkey: []}})
    assert stranger.status_code == 404
    assert _call(client, "POST", path, {}, {"grants": {}}).status_code == 401
