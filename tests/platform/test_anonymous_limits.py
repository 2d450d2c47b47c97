"""The anonymous routes are limited per address with a clear 429 JSON answer (and Retry-After), counted in the
shared cache; another address is not affected."""

from __future__ import annotations

import json

import pytest
from channels.testing import HttpCommunicator
from django.test import Client

from meshes import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def invite(owner_actor):
    return services.invite_create(actor=owner_actor, max_uses=5)


def assert_rate_limited(response_status: int, headers, body: dict) -> None:
    assert response_status == 429
    assert body["code"] == "rate_limited" and body["retryAfter"] >= 1
    assert int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize("route", ["join", "claim", "invite-code"])
def test_anonymous_routes_are_limited_per_address(settings, invite, route):
    settings.ANONYMOUS_RATE_LIMIT_PER_MIN = 3
    request = {
        "join": lambda c: c.post("/join", data=b"{}", content_type="application/json"),
        "claim": lambda c: c.post(f"/invites/{invite.code}/claim", data=b"{}", content_type="application/json"),
        "invite-code": lambda c: c.get(f"/api/public/invite-code/{invite.code}"),
    }[route]
    flooder, other = Client(REMOTE_ADDR="203.0.113.7"), Client(REMOTE_ADDR="203.0.113.8")
    answers = [request(flooder) for _ in range(4)]
    assert all(a.status_code != 429 for a in answers[:3])
    assert_rate_limited(answers[3].status_code, answers[3], answers[3].json())
    assert request(other).status_code != 429


async def hook(ip: str) -> tuple[int, dict, dict]:
    from claudemesh.asgi import application

    communicator = HttpCommunicator(
        application, "POST", "/hook/set-status", body=json.dumps({"cwd": "/x", "status": "idle"}).encode(),
        headers=[(b"content-type", b"application/json"), (b"host", b"testserver")],
    )
    communicator.scope["client"] = [ip, 0]
    response = await communicator.get_response()
    headers = {k.decode().title(): v.decode() for k, v in response["headers"]}
    return response["status"], headers, json.loads(response["body"])


async def test_the_status_hook_is_limited_per_address(settings):
    settings.HOOK_IP_RATE_LIMIT_PER_MIN = 2
    settings.BROKER_HOOK_RATE_LIMIT_PER_MIN = 1000
    assert [(await hook("198.51.100.1"))[0] for _ in range(2)] == [200, 200]
    assert_rate_limited(*(await hook("198.51.100.1")))
    assert (await hook("198.51.100.2"))[0] == 200
