"""`claudemesh login` on the server side (protocol.md §6.7 with its [PY] fixes), as the reference CLI's HTTP
exchanges make it: a device code, a signed-in approval on `/cli-auth`, one poll that hands the token out once,
and the token as the bearer of `/cli/*` and `/api/my/*` until it is revoked or expires."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import CliSession, DeviceCode

pytestmark = pytest.mark.django_db
REFERENCE_HEADERS = {"Accept": "application/json", "User-Agent": "claudemesh-cli/1.0"}


def _start(client) -> dict:
    response = client.post("/cli/device-code", json.dumps({"hostname": "laptop", "platform": "linux", "arch": "x64"}),
                           content_type="application/json", headers=REFERENCE_HEADERS)
    assert response.status_code == 200
    return response.json()


def _approve_in_browser(user, session_id: str, decision: str = "approve") -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get(f"/cli-auth?session={session_id}")
    assert page.status_code == 200
    html = page.content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    decided = browser.post("/cli-auth", {"csrfmiddlewaretoken": token, "session": session_id, "decision": decision})
    assert decided.status_code == 200
    return browser


def _poll(client, device_code: str) -> dict:
    return client.get(f"/cli/device-code/{device_code}", headers=REFERENCE_HEADERS).json()


def test_the_reference_login_exchange_gives_a_token_once_after_a_signed_in_approval(client, make_user):
    # given a terminal that asked for a code
    alice = make_user("alice@example.test")
    start = _start(client)
    assert set(start) >= {"device_code", "user_code", "session_id", "expires_at", "verification_url", "token_url"}
    assert start["verification_url"].endswith("/cli-auth") and start["token_url"].endswith("/token")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", start["user_code"]) and start["session_id"].startswith("clm_sess_")
    assert _poll(client, start["device_code"]) == {"status": "pending"}
    # the page shows the code and the machine, and approves nothing by itself
    browser = Client()
    browser.force_login(alice)
    page = browser.get(f"/cli-auth?session={start['session_id']}").content.decode()
    assert start["user_code"] in page and "laptop" in page
    assert _poll(client, start["device_code"]) == {"status": "pending"}
    # when alice approves
    _approve_in_browser(alice, start["session_id"])
    # then the next poll carries the token and who it is, exactly once
    approved = _poll(client, start["device_code"])
    assert approved["status"] == "approved"
    assert approved["user"] == {"id": str(alice.pk), "display_name": "alice@example.test", "email": "alice@example.test"}
    assert _poll(client, start["device_code"]) == {"status": "consumed"}
    token = approved["session_token"]
    assert token.count(".") == 2 and len(token) > 50  # the JWT shape the reference CLI accepts when pasted
    # the token works as a bearer, and only its hash is stored (the device code too)
    profile = client.get("/api/my/profile", headers={"Authorization": f"Bearer {token}"})
    assert profile.status_code == 200 and profile.json()["email"] == "alice@example.test"
    session = CliSession.objects.get(user=alice)
    assert session.hostname == "laptop" and token not in session.token_hash
    assert not DeviceCode.objects.filter(device_code_digest=start["device_code"]).exists()


def test_an_anonymous_approval_and_a_body_naming_another_user_are_refused(client, make_user):
    alice, mallory = make_user("alice@example.test"), make_user("mallory@example.test")
    start = _start(client)
    # the reference's open approve route, as an attacker would call it
    forged = client.post(f"/cli/device-code/{start['session_id']}/approve",
                         json.dumps({"user_id": str(alice.pk), "email": alice.email}), content_type="application/json")
    assert forged.status_code in (401, 403)
    assert _poll(client, start["device_code"]) == {"status": "pending"}
    # the page needs a signed-in person
    anonymous = client.get(f"/cli-auth?session={start['session_id']}")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    # a signed-in approver gets its own account, whatever a body says
    signed_in = Client()
    signed_in.force_login(mallory)
    answer = signed_in.post(f"/cli/device-code/{start['session_id']}/approve",
                            json.dumps({"user_id": str(alice.pk), "email": alice.email}), content_type="application/json")
    assert answer.status_code == 200
    assert _poll(client, start["device_code"])["user"]["email"] == "mallory@example.test"
    # and a decided code cannot be decided again by someone else
    other = Client()
    other.force_login(alice)
    again = other.post(f"/cli/device-code/{start['session_id']}/approve", content_type="application/json")
    assert again.status_code == 409


def test_a_denied_or_expired_code_gives_no_token(client, make_user):
    alice = make_user("alice@example.test")
    denied = _start(client)
    _approve_in_browser(alice, denied["session_id"], decision="deny")
    assert _poll(client, denied["device_code"]) == {"status": "denied"}
    late = _start(client)
    DeviceCode.objects.filter(session_id=late["session_id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _poll(client, late["device_code"]) == {"status": "expired"}
    browser = Client()
    browser.force_login(alice)
    refused = browser.post(f"/cli/device-code/{late['session_id']}/approve", content_type="application/json")
    assert refused.status_code == 410
    assert _poll(client, "no-such-code") == {"status": "expired"}
    assert not CliSession.objects.exists()


def _signed_in_token(client, user) -> str:
    start = _start(client)
    _approve_in_browser(user, start["session_id"])
    return _poll(client, start["device_code"])["session_token"]


def test_revoking_a_terminal_on_the_dashboard_or_by_logout_takes_effect_at_once(client, make_user):
    alice = make_user("alice@example.test")
    token = _signed_in_token(client, alice)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/cli/meshes", headers=bearer).status_code == 200
    # the dashboard lists it, and revokes it
    browser = Client()
    browser.force_login(alice)
    listing = browser.get("/account/terminals/").content.decode()
    session = CliSession.objects.get(user=alice)
    assert "laptop" in listing and f"terminal-{session.id}" in listing
    browser.post(f"/account/terminals/{session.id}/revoke/")
    refused = client.get("/cli/meshes", headers=bearer)
    assert refused.status_code == 401 and refused.json()["error"].startswith("this sign-in was revoked")
    # logout revokes the token it holds; an expired session is refused too
    second = _signed_in_token(client, alice)
    out = client.post("/cli/session/revoke", json.dumps({"token": second}), content_type="application/json")
    assert out.json() == {"ok": True, "found": True}
    assert client.get("/api/my/profile", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    third = _signed_in_token(client, alice)
    CliSession.objects.filter(revoked_at=None).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/my/profile", headers={"Authorization": f"Bearer {third}"}).status_code == 401
    # another account cannot revoke alice's terminals
    mallory = Client()
    mallory.force_login(make_user("mallory@example.test"))
    mallory.post(f"/account/terminals/{CliSession.objects.latest('created_at').id}/revoke/")
    assert CliSession.objects.latest("created_at").revoked_at is None


def test_bearer_failures_answer_the_reference_codes(client):
    assert client.get("/cli/meshes").json()["code"] == "missing_bearer_token"
    assert client.get("/cli/meshes", headers={"Authorization": "Bearer "}).json()["code"] == "empty_bearer_token"
    wrong = client.get("/cli/meshes", headers={"Authorization": "Bearer a.b.c"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_or_revoked_token"
    minted = client.post("/cli/token", json.dumps({"user_id": "1", "email": "x@example.test"}),
                         content_type="application/json")
    assert minted.status_code == 403 and "token" not in minted.json()


def test_the_paste_token_page_mints_a_token_shown_once(client, make_user):
    alice = make_user("alice@example.test")
    browser = Client()
    browser.force_login(alice)
    assert "Make a token" in browser.get("/token").content.decode()
    html = browser.post("/token").content.decode()
    token = re.search(r'id="cli-token-value" class="mono" readonly value="([^"]+)"', html).group(1)
    assert client.get("/api/my/profile", headers={"Authorization": f"Bearer {token}"}).json()["id"] == str(alice.pk)
    assert CliSession.objects.get(user=alice).kind == "paste-token"
