"""One JSON body reader for every HTTP route: hostile bodies get a clear 400/413 JSON answer with a stable
`code`, never a 500 or an HTML page, and nothing is written."""

from __future__ import annotations

import pytest

from meshes.models import ApiKey, Invite, Member
from tests.support.body_routes import json_body_routes

pytestmark = pytest.mark.django_db

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
HUGE_INT = b'{"maxUses": ' + b"9" * 5000 + b"}"
HOSTILE = [
    (DEEP, 400, "too_deep"),
    (DEEP_OBJECT, 400, "too_deep"),
    (HUGE_INT, 400, "number_too_long"),
    (b'{"maxUses": 1e' + b"9" * 60 + b"}", 400, "number_too_long"),
    (b'{"maxUses": NaN}', 400, "invalid_json"),
    (b"[1,2]", 400, "not_an_object"),
    (b"\xff\xfe{}", 400, "invalid_utf8"),
    (b'{"a": "\xc3"}', 400, "invalid_utf8"),
    (b"{nope", 400, "invalid_json"),
    (b'{"pad": "' + b"x" * 10_000_000 + b'"}', 413, "payload_too_large"),
]


@pytest.fixture
def routes(owner_actor):
    return [
        (path, {"Authorization": f"Bearer {secret}"} if secret else {})
        for path, secret in json_body_routes(owner_actor, invite_uses=5)
    ]


def counts() -> tuple[int, int, int]:
    return Invite.objects.count(), ApiKey.objects.count(), Member.objects.count()


@pytest.mark.parametrize(("raw", "status", "code"), HOSTILE, ids=lambda v: v[:12] if isinstance(v, bytes) else v)
def test_hostile_body_gets_a_clear_json_answer_on_every_route(api, routes, raw, status, code):
    before = counts()
    for path, headers in routes:
        response = api.call("POST", path, raw=raw, headers=headers)
        assert response.status_code == status, (path, response.content[:200])
        assert response["Content-Type"].startswith("application/json"), path
        assert response.json()["code"] == code, (path, response.json())
    assert counts() == before


@pytest.mark.parametrize("path", ["/api/v1/invites", "/api/v1/api-keys", "/api/v1/api-keys/revoke"])
def test_an_empty_body_creates_nothing(api, routes, path):
    headers = dict(routes)[path]
    before = counts()
    for raw in (b"", b"  \n"):
        response = api.call("POST", path, raw=raw, headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, "body_required")
    assert counts() == before


def test_a_modest_nesting_still_parses(api, routes):
    headers = dict(routes)["/api/v1/invites"]
    nested = b'{"role": "member", "maxUses": 2, "extra": ' + b"[" * 20 + b"]" * 20 + b"}"
    assert api.call("POST", "/api/v1/invites", raw=nested, headers=headers).status_code == 201
