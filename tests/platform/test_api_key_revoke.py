"""API key revoke (platform.md §2.4 as fixed): full id, ≥6-char unique prefix, ambiguity, mesh bounds, no
pattern characters, idempotence and audit; the service and the `/api/v1/api-keys/revoke` route."""

from __future__ import annotations

import pytest

from meshes import selectors, services
from meshes.errors import Forbidden, ServiceError
from meshes.models import ApiKey, AuditEvent
from meshes.wire import api_key_revoke_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def keyed(key_factory):
    """make(id) → an ApiKey in the owner's mesh whose id is exactly `id`."""

    def make(key_id: str, actor=None) -> ApiKey:
        key, _secret = key_factory(["read"], actor=actor)
        ApiKey.objects.filter(pk=key.pk).update(id=key_id)
        return ApiKey.objects.get(pk=key_id)

    return make


def pad(prefix: str) -> str:
    return (prefix + "Z" * 32)[:32]


def revoke(actor, ref):
    return api_key_revoke_body(services.api_key_revoke(actor=actor, key_ref=ref))


def revoked_events(mesh):
    return AuditEvent.objects.filter(mesh=mesh, event_type="api_key_revoked").count()


def test_full_id(owner_actor, keyed):
    key = keyed(pad("abcdef1"))
    assert revoke(owner_actor, key.id) == {"status": "revoked", "id": key.id}
    assert ApiKey.objects.get(pk=key.id).revoked_at is not None


def test_unique_six_char_prefix_revokes_and_answers_the_full_id(owner_actor, keyed):
    key = keyed(pad("abcdef1"))
    keyed(pad("abcdeg1"))  # shares five characters only
    assert revoke(owner_actor, "abcdef") == {"status": "revoked", "id": key.id}


def test_five_char_prefix_is_rejected(owner_actor, keyed):
    key = keyed(pad("abcdef1"))
    with pytest.raises(ServiceError) as caught:
        revoke(owner_actor, "abcde")
    assert caught.value.code == "invalid_args"
    assert ApiKey.objects.get(pk=key.id).revoked_at is None


@pytest.mark.parametrize("count", [2, 3])
def test_ambiguous_prefix_is_not_unique_with_the_count(owner_actor, keyed, count):
    ids = [pad(f"abcdef{n}") for n in range(count)]
    for key_id in ids:
        keyed(key_id)
    assert revoke(owner_actor, "abcdef") == {"status": "not_unique", "matches": count}
    assert not ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=False).exists()


def test_full_id_wins_over_prefix_matches(owner_actor, keyed):
    # An exact id is never ambiguous, even when it is also a prefix of a longer id
    short = keyed("abcdef12")
    keyed("abcdef1234")
    assert revoke(owner_actor, "abcdef12") == {"status": "revoked", "id": short.id}


def test_other_mesh_key_is_not_found(owner_actor, other_actor, keyed):
    foreign = keyed(pad("abcdef9"), actor=other_actor)
    assert revoke(owner_actor, foreign.id) == {"status": "not_found"}
    assert revoke(owner_actor, "abcdef") == {"status": "not_found"}
    assert ApiKey.objects.get(pk=foreign.id).revoked_at is None


@pytest.mark.parametrize("pattern", ["abcde%", "%%%%%%", "abc_ef", "______", "abcdef%", "abc\\ef", "abc ef", ""])
def test_pattern_characters_are_rejected_not_used(owner_actor, keyed, pattern):
    key = keyed(pad("abcdef1"))
    with pytest.raises(ServiceError) as caught:
        revoke(owner_actor, pattern)
    assert caught.value.code == "invalid_args"
    assert ApiKey.objects.get(pk=key.id).revoked_at is None


@pytest.mark.parametrize("ref", [None, 123, ["abcdef"], {"id": "abcdef"}])
def test_non_text_is_rejected(owner_actor, ref):
    with pytest.raises(ServiceError) as caught:
        revoke(owner_actor, ref)
    assert caught.value.code == "invalid_args"


def test_mixed_case_prefix_does_not_match(owner_actor, keyed):
    # Ids are case-sensitive; SQLite's LIKE is not, so this must hold on both databases
    key = keyed(pad("abcdef1"))
    assert revoke(owner_actor, "ABCDEF") == {"status": "not_found"}
    assert revoke(owner_actor, "abcDef") == {"status": "not_found"}
    assert revoke(owner_actor, key.id.upper()) == {"status": "not_found"}
    assert ApiKey.objects.get(pk=key.id).revoked_at is None


def test_case_only_difference_is_not_ambiguous(owner_actor, keyed):
    lower = keyed(pad("abcdef1"))
    keyed(pad("ABCDEF1"))
    assert revoke(owner_actor, "abcdef") == {"status": "revoked", "id": lower.id}


def test_repeat_revoke_is_idempotent_with_one_audit_event(owner_actor, keyed, mesh):
    key = keyed(pad("abcdef1"))
    first = revoke(owner_actor, key.id)
    revoked_at = ApiKey.objects.get(pk=key.id).revoked_at
    second = revoke(owner_actor, "abcdef")
    assert first == second == {"status": "revoked", "id": key.id}
    assert ApiKey.objects.get(pk=key.id).revoked_at == revoked_at
    assert revoked_events(mesh) == 1


def test_plain_member_cannot_revoke(owner_actor, keyed, mesh, make_user):
    from meshes.models import Member

    user = make_user()
    Member.objects.create(mesh=mesh, user=user, display_name="m", role="member")
    member_actor = selectors.actor_for_user(mesh_id=mesh.id, user=user)
    key = keyed(pad("abcdef1"))
    with pytest.raises(Forbidden) as caught:
        revoke(member_actor, key.id)
    assert caught.value.status == 403


# --- through the API ------------------------------------------------------------------------------------


def test_api_route_answers_each_status(api, key_factory, keyed):
    _admin, secret = key_factory(["admin"])
    target = keyed(pad("abcdef1"))
    keyed(pad("qwerty1"))
    keyed(pad("qwerty2"))

    def post(ref):
        response = api.post("/api/v1/api-keys/revoke", secret, {"id": ref})
        return response.status_code, response.json()

    assert post("abcdef") == (200, {"status": "revoked", "id": target.id})
    assert post("abcdef") == (200, {"status": "revoked", "id": target.id})
    assert post("qwerty") == (200, {"status": "not_unique", "matches": 2})
    assert post("zzzzzz") == (200, {"status": "not_found"})
    status, body = post("abc%e_")
    assert (status, body["code"]) == (400, "invalid_args")
    status, body = post("abcde")
    assert (status, body["code"]) == (400, "invalid_args")
