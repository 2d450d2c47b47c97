"""Hostile bodies against every HTTP route that reads one (hypothesis): arbitrary JSON values, objects with the
routes' own field names holding wrong types, huge and deep values, raw bytes. The oracle: never a 5xx, always a
JSON answer, and a body the reader refuses answers 400/413 with a stable `code`."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.body_routes import json_body_routes

pytestmark = pytest.mark.django_db

FIELD_NAMES = [
    "role", "maxUses", "expiresInDays", "label", "capabilities", "expiresAt", "topicScopes", "id", "invite_token",
    "invite_payload", "peer_pubkey", "display_name", "recipient_x25519_pubkey", "cwd", "status", "pid", "session_id",
    "meshId", "memberId", "timestamp", "signature",
]  # fmt: skip
READER_CODES = {"too_deep", "number_too_long", "not_an_object", "invalid_utf8", "invalid_json", "body_required",
                "payload_too_large"}

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=20)
objects = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8)
bodies = (
    objects.map(lambda o: json.dumps(o).encode())
    | values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.integers(min_value=30, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.integers(min_value=41, max_value=6000).map(lambda digits: b'{"maxUses": ' + b"7" * digits + b"}")
)


@pytest.fixture
def routes(owner_actor):
    return [
        (path, {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {})
        for path, secret in json_body_routes(owner_actor, invite_uses=1000)
    ]


def test_hostile_bodies_on_every_route_get_clear_json_answers(routes, settings):
    settings.ANONYMOUS_RATE_LIMIT_PER_MIN = 0  # off: this is about bodies, not about rates
    settings.HOOK_IP_RATE_LIMIT_PER_MIN = 0
    client = Client()

    @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(bodies, min_size=1, max_size=3))
    def one_batch(batch):
        for body in batch:
            for path, headers in routes:
                response = client.post(path, data=body, content_type="application/json", **headers)
                assert response.status_code < 500, (path, body[:200], response.content[:300])
                answer = response.json()  # always JSON
                if answer.get("code") in READER_CODES:
                    assert response.status_code in (400, 413), (path, answer)

    one_batch()
