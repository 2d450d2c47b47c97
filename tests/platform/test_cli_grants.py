"""`/cli/mesh/<slug>/grants`: a member reads and merges its own grants over HTTP, proving who it is with a
signature of its member key; unsigned, forged, replayed and foreign-mesh requests are refused."""

from __future__ import annotations

import json

import pytest

from meshes.models import Member
from protocol.http_signing import signed_headers
from tests.support.identities import new_identity

pytestmark = pytest.mark.django_db


def _signed(identity, method: str, path: str, body: bytes = b"", *, secret: str | None = None) -> dict[str, str]:
    headers = signed_headers(method=method, path=path, mesh_id=identity.member.mesh_id, member_id=identity.member.id,
                             secret_hex=secret or identity.keypair.secret_hex, body=body)
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}


def test_a_signed_member_merges_and_reads_its_grants(client, mesh):
    bob, alice = new_identity(mesh, "bob"), new_identity(mesh, "alice")
    path = f"/cli/mesh/{mesh.slug}/grants"
    body = json.dumps({"grants": {alice.pubkey: ["dm"]}}).encode()
    response = client.post(path, body, content_type="application/json", **_signed(bob, "POST", path, body))
    assert response.status_code == 200 and response.json() == {"ok": True, "grants": {alice.pubkey: ["dm"]}}
    assert Member.objects.get(pk=bob.member.pk).peer_grants == {alice.pubkey: ["dm"]}
    got = client.get(path, **_signed(bob, "GET", path))
    assert got.json() == {"ok": True, "grants": {alice.pubkey: ["dm"]}}


def test_unsigned_forged_replayed_and_foreign_requests_are_refused(client, mesh, make_user):
    from meshes import services

    bob, alice = new_identity(mesh, "bob"), new_identity(mesh, "alice")
    path = f"/cli/mesh/{mesh.slug}/grants"
    body = json.dumps({"grants": {alice.pubkey: []}}).encode()
    assert client.post(path, body, content_type="application/json").status_code == 401
    forged = _signed(bob, "POST", path, body, secret=alice.keypair.secret_hex)
    assert client.post(path, body, content_type="application/json", **forged).status_code == 401
    headers = _signed(bob, "POST", path, body)
    assert client.post(path, body, content_type="application/json", **headers).status_code == 200
    assert client.post(path, body, content_type="application/json", **headers).status_code == 401  # replay
    other = services.mesh_create(owner=make_user(), name="Other mesh")
    foreign = f"/cli/mesh/{other.slug}/grants"
    assert client.post(foreign, body, content_type="application/json",
                       **_signed(bob, "POST", foreign, body)).status_code == 403
    bad = json.dumps({"grants": {alice.pubkey: ["fly"]}}).encode()
    refused = client.post(path, bad, content_type="application/json", **_signed(bob, "POST", path, bad))
    assert refused.status_code == 400 and "fly" in refused.json()["error"]
