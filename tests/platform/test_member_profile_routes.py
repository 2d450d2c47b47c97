"""`claudemesh profile` as the reference CLI calls it (protocol.md §6.8): the member list and a member's PATCH,
with the caller proven by the account token (and `X-Member-Id` one of its own members) or a member signature."""

from __future__ import annotations

import json

import pytest

from accounts.cli_sessions import cli_session_mint
from meshes.models import AuditEvent, Member, Role
from protocol.http_signing import signed_headers
from tests.support.identities import new_identity

pytestmark = pytest.mark.django_db


def _bearer(user, member_id: str | None = None) -> dict[str, str]:
    _, token = cli_session_mint(user=user, kind="device-code")
    return {"Authorization": f"Bearer {token}", **({"X-Member-Id": member_id} if member_id else {})}


def _patch(client, mesh_id, member_id, headers, body):
    return client.generic("PATCH", f"/mesh/{mesh_id}/member/{member_id}", json.dumps(body),
                          content_type="application/json", headers=headers)


def test_a_member_reads_the_roster_and_edits_itself_with_its_account_token(client, mesh, make_user):
    carol_user = make_user("carol@example.test")
    carol, dave = new_identity(mesh, "carol", user=carol_user), new_identity(mesh, "dave")
    headers = _bearer(carol_user, carol.member.id)
    listed = client.get(f"/mesh/{mesh.id}/members", headers=headers)
    assert listed.status_code == 200 and listed.json()["ok"] is True
    assert {m["displayName"] for m in listed.json()["members"]} >= {"carol", "dave"}
    assert all({"online", "sessionCount", "messageMode", "permission"} <= set(m) for m in listed.json()["members"])
    edited = _patch(client, mesh.id, carol.member.id, headers,
                    {"displayName": "Carol B", "roleTag": "reviewer", "groups": [{"name": "backend", "role": "lead"}],
                     "messageMode": "inbox"})
    assert edited.status_code == 200
    assert edited.json()["member"]["displayName"] == "Carol B" and set(edited.json()["changes"]) == {
        "display_name", "role_tag", "default_groups", "message_mode"}
    stored = Member.objects.get(pk=carol.member.pk)
    assert stored.default_groups == [{"name": "backend", "role": "lead"}] and stored.message_mode == "inbox"
    assert AuditEvent.objects.filter(mesh=mesh, event_type="member_profile_updated").count() == 1
    # a member may not edit another, nor its own permission
    assert _patch(client, mesh.id, dave.member.id, headers, {"displayName": "x"}).status_code == 403
    refused = _patch(client, mesh.id, carol.member.id, headers, {"permission": "admin"})
    assert refused.status_code == 403 and "permission" in refused.json()["error"]
    assert _patch(client, mesh.id, carol.member.id, headers, {"messageMode": "loud"}).status_code == 400
    assert _patch(client, mesh.id, carol.member.id, headers, {}).json()["error"] == "no fields to update"


def test_the_caller_is_proven_not_named(client, mesh, make_user, owner):
    dave = new_identity(mesh, "dave")
    # the reference's bare header is not enough
    assert client.get(f"/mesh/{mesh.id}/members", headers={"X-Member-Id": dave.member.id}).status_code == 401
    # an account naming a member that is not its own
    stranger = _bearer(make_user("stranger@example.test"), dave.member.id)
    forged = _patch(client, mesh.id, dave.member.id, stranger, {"displayName": "owned"})
    assert forged.status_code == 403 and forged.json()["error"] == "member does not belong to authenticated user"
    # a member-signed request (our CLI) works; an owner's account edits anyone, permission included
    path = f"/mesh/{mesh.id}/members"
    signed = signed_headers(method="GET", path=path, mesh_id=mesh.id, member_id=dave.member.id,
                            secret_hex=dave.keypair.secret_hex, body=b"")
    assert client.get(path, headers=signed).status_code == 200
    promoted = _patch(client, mesh.id, dave.member.id, _bearer(owner), {"permission": "admin"})
    assert promoted.status_code == 200 and Member.objects.get(pk=dave.member.pk).role == Role.ADMIN
