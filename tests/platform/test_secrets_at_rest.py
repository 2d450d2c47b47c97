"""What the database holds: no invite row carries its v1 token or the mesh root key inside it."""

from __future__ import annotations

import pytest
from django.db import connection

from meshes import services
from meshes.models import Invite
from protocol.invites import v1_decode

pytestmark = pytest.mark.django_db


def raw_rows(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 -- a fixed table name
        return repr(cursor.fetchall())


def test_an_invite_row_holds_neither_its_token_nor_the_root_key(mesh, owner_actor, api, peer):
    invite = services.invite_create(actor=owner_actor, max_uses=2)
    token = Invite.objects.get(pk=invite.pk).token  # rebuilt from the mesh's encrypted keys
    stored = raw_rows("meshes_invite")
    assert token not in stored and mesh.root_key_b64url() not in stored
    assert token == invite.token
    # the rebuilt token still enrolls, and the short code still resolves to it
    payload = v1_decode(token)
    joined = api.post("/join", body={"invite_token": token, "invite_payload": payload, "peer_pubkey": peer.public_hex, "display_name": "p"})
    assert joined.status_code == 200 and joined.json()["ok"] is True
    assert api.get(f"/api/public/invite-code/{invite.code}").json()["token"] == token
