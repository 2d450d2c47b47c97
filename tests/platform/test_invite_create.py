"""invite_create: every invite gets its own v1 token even when minted in the same second with the same role."""

from __future__ import annotations

import json

import pytest

from meshes import services
from meshes.models import Invite
from protocol import invites as wire_invites
from protocol.crypto import SigningKeypair
from tests.support.oracles import unb64url

pytestmark = pytest.mark.django_db


def test_twin_invites_in_one_second_get_distinct_tokens_that_all_work(owner_actor, api):
    # Given ten invites minted back to back with identical settings (a v1 token has no nonce)
    invites = [services.invite_create(actor=owner_actor, max_uses=1) for _ in range(10)]

    # Then each has its own token, code and verifiable signature, its v2 capability matches its row,
    assert len({invite.token for invite in invites}) == 10
    assert len({invite.code for invite in invites}) == 10
    for invite in invites:
        payload = wire_invites.v1_verify(invite.token)
        assert payload["expires_at"] == int(invite.expires_at.timestamp())
        assert json.loads(invite.capability_v2)["canonical"].split("|")[3] == str(payload["expires_at"])

    # and each one enrolls its own peer
    for invite in invites:
        body = {
            "invite_token": invite.token,
            "invite_payload": json.loads(unb64url(invite.token)),
            "peer_pubkey": SigningKeypair.generate().public_hex,
            "display_name": "peer",
        }
        assert api.post("/join", body=body).json()["ok"] is True
    assert set(Invite.objects.filter(pk__in=[i.id for i in invites]).values_list("used_count", flat=True)) == {1}
