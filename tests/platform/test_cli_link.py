"""Personal CLI links (docs/wire-extensions.md): `/join` with one binds the key to the account's member; a signed
`replaces` retires the machine's earlier identity; a forged or stale one changes nothing."""

from __future__ import annotations

import json

import pytest

from meshes import services
from meshes.errors import ServiceError
from meshes.models import Member
from protocol.crypto import SigningKeypair
from protocol.identity_link import replace_fields
from tests.support.oracles import unb64url

pytestmark = pytest.mark.django_db


def body(invite, key: SigningKeypair, **extra):
    return {"invite_token": invite.token, "invite_payload": json.loads(unb64url(invite.token)),
            "peer_pubkey": key.public_hex, "display_name": "typed-at-the-cli", **extra}


def earlier_member(owner_actor) -> tuple[Member, SigningKeypair]:
    key = SigningKeypair.generate()
    invite = services.invite_create(actor=owner_actor, max_uses=1)
    member = services.invite_join_v1(invite_token=invite.token, invite_payload=json.loads(unb64url(invite.token)),
                                     peer_pubkey=key.public_hex, display_name="alice-laptop").member
    return member, key


def test_a_personal_link_binds_the_key_to_the_accounts_member(api, owner_actor):
    link = services.invite_create_cli_link(actor=owner_actor)
    key = SigningKeypair.generate()
    response = api.post("/join", body=body(link, key))
    answer = response.json()
    assert response.status_code == 200 and answer["linked"] is True and answer["role"] == "owner"
    assert answer["memberId"] == owner_actor.member.id
    owner = Member.objects.get(pk=owner_actor.member.id)
    assert owner.pubkey == key.public_hex and owner.display_name != "typed-at-the-cli"
    assert Member.objects.filter(mesh=owner_actor.mesh).count() == 1


def test_replaces_signed_by_the_earlier_identity_retires_it(api, owner_actor):
    old, old_key = earlier_member(owner_actor)
    link = services.invite_create_cli_link(actor=owner_actor)
    key = SigningKeypair.generate()
    proof = replace_fields(mesh_id=old.mesh_id, old_member_id=old.id, old_secret_hex=old_key.secret_hex,
                           new_pubkey=key.public_hex)
    answer = api.post("/join", body=body(link, key, replaces=proof)).json()
    assert answer["retiredMemberId"] == old.id
    assert Member.objects.get(pk=old.id).revoked_at is not None


@pytest.mark.parametrize("forgery", ["other_key", "stale", "other_new_key", "not_an_object"])
def test_a_forged_or_stale_replaces_changes_nothing(api, owner_actor, forgery):
    old, old_key = earlier_member(owner_actor)
    link = services.invite_create_cli_link(actor=owner_actor)
    key = SigningKeypair.generate()
    signer = SigningKeypair.generate() if forgery == "other_key" else old_key
    new_pubkey = SigningKeypair.generate().public_hex if forgery == "other_new_key" else key.public_hex
    stamp = 1_000_000 if forgery == "stale" else None
    proof = replace_fields(mesh_id=old.mesh_id, old_member_id=old.id, old_secret_hex=signer.secret_hex,
                           new_pubkey=new_pubkey, timestamp=stamp)
    response = api.post("/join", body=body(link, key, replaces="x" if forgery == "not_an_object" else proof))
    assert response.status_code == 400
    assert Member.objects.get(pk=old.id).revoked_at is None
    assert Member.objects.get(pk=owner_actor.member.id).pubkey is None
    link.refresh_from_db()
    assert link.used_count == 0


def test_a_personal_link_is_not_an_invite_for_others(owner_actor, make_user):
    link = services.invite_create_cli_link(actor=owner_actor)
    with pytest.raises(ServiceError, match="connects one member's CLI"):
        services.invite_accept_for_user(code=link.code, user=make_user())
    with pytest.raises(ServiceError, match="personal CLI link"):
        services.invite_claim_v2(code=link.code, recipient_x25519_pubkey="A" * 43)
