"""A key made on the dashboard can act as a member that holds its own key (a bot joined from a terminal), so the
bot can send and read its inbox over REST; members without a key are not offered."""

from __future__ import annotations

import pytest

from meshes.models import ApiKey, Member
from tests.support.identities import new_identity

pytestmark = pytest.mark.django_db


def test_the_create_form_binds_a_member_with_a_key(owner_client, mesh):
    bot = new_identity(mesh, "ci-bot")
    Member.objects.create(mesh=mesh, display_name="keyless")
    page = owner_client.get(f"/meshes/{mesh.id}/keys/").content.decode()
    assert f'value="{bot.member.id}"' in page and "keyless" not in page
    owner_client.post(f"/meshes/{mesh.id}/keys/new/", {"label": "ci", "capabilities": ["send", "read"],
                                                      "member_id": bot.member.id})
    assert ApiKey.objects.get(label="ci").member_id == bot.member.id
    owner_client.post(f"/meshes/{mesh.id}/keys/new/", {"label": "reader", "capabilities": ["read"], "member_id": ""})
    assert ApiKey.objects.get(label="reader").member_id is None
