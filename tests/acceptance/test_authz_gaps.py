"""Authentication and authorization gaps not covered elsewhere (see docs/reliability.md for what is covered where:
tests/broker/test_handshake.py, tests/platform/test_join_v1.py, test_public_routes.py, test_api_permissions.py,
tests/dashboard/test_csrf.py, test_permissions.py).

- hello: another mesh's id, a signature by another key, a captured hello re-stamped or replayed, a replay inside
  the window only takes over its own session;
- a plain member (and a revoked one) trying every owner operation over the socket → `forbidden`, nothing made;
- hostile bodies and headers (hypothesis) on the unauthenticated routes and /api/v1 → 4xx JSON, never 5xx;
- CSRF: every POST form found by crawling every dashboard and account page refuses a token-less POST (403).
"""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshes import selectors, services
from meshes.models import ApiKey, Invite, Member, Role
from protocol.hello import hello_sign
from tests.support.acceptance import assert_clear_error, authenticated, hello_frame, record_results
from tests.support.identities import new_identity
from tests.support.sockets import db, open_socket, shutdown_broker

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
async def broker():
    yield
    await shutdown_broker()


async def refused(frame: dict) -> tuple[dict, tuple[int, str]]:
    sock = await open_socket()
    await sock.send(frame)
    error = await sock.expect("error")
    closed = await sock.expect("__closed__")
    return error, (closed["code"], closed["reason"])


# --- hello -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_hello_for_another_mesh_is_unauthorized(broker, mesh, make_user):
    # Given alice, a member of mesh A, and a mesh B she does not belong to
    alice = await db(new_identity)(mesh, "alice")
    other = await db(services.mesh_create)(owner=await db(make_user)(), name="Other")
    # When she signs a perfectly valid hello naming mesh B
    error, closed = await refused(hello_frame(alice, mesh_id=other.id))
    # Then she is refused as unknown there (§2.4 step 6c)
    assert (error["code"], error["message"], closed) == ("unauthorized", "pubkey not found in mesh", (1008, "unauthorized"))


@pytest.mark.django_db(transaction=True)
async def test_hello_signed_by_another_members_key_is_bad_signature(broker, mesh):
    alice = await db(new_identity)(mesh, "alice")
    mallory = await db(new_identity)(mesh, "mallory")
    # Given mallory's signature over alice's signed string
    stamp, signature = hello_sign(mesh_id=mesh.id, member_id=alice.member.id, pubkey=alice.pubkey,
                                  secret_hex=mallory.keypair.secret_hex)
    error, closed = await refused(hello_frame(alice, timestamp=stamp, signature=signature))
    assert (error["code"], closed) == ("bad_signature", (1008, "bad_signature"))


@pytest.mark.django_db(transaction=True)
async def test_captured_hello_cannot_be_replayed_later(broker, mesh):
    alice = await db(new_identity)(mesh, "alice")
    # Given a hello alice signed 2 minutes ago (captured off the wire)
    old = int(time.time() * 1000) - 120_000
    captured = hello_frame(alice, timestamp=old)
    # When it is replayed as is, then its timestamp is out of the ±60 s window
    error, closed = await refused(captured)
    assert (error["code"], closed) == ("timestamp_skew", (1008, "timestamp_skew"))
    # When it is replayed with a fresh timestamp, then the old signature no longer matches
    error, closed = await refused({**captured, "timestamp": int(time.time() * 1000)})
    assert (error["code"], closed) == ("bad_signature", (1008, "bad_signature"))


@pytest.mark.django_db(transaction=True)
async def test_a_replay_inside_the_window_is_refused(broker, mesh):
    """No nonce exists in v0.1 (§2.2), so the broker remembers each accepted signature for the skew window: a
    replayed hello, as it was or with a new sessionId, is refused and the original connection stays."""
    alice = await db(new_identity)(mesh, "alice")
    frame = hello_frame(alice)
    original = await open_socket()
    await original.send(frame)
    await original.expect("hello_ack")
    for replayed in (frame, {**frame, "sessionId": "another-session"}):
        replay = await open_socket()
        await replay.send(replayed)
        assert (await replay.expect("error"))["code"] == "replayed"
        closed = await replay.expect("__closed__")
        assert (closed["code"], closed["reason"]) == (1008, "replayed")
    await original.expect_nothing(lambda f: f.get("type") == "__closed__")
    await original.close()


# --- owner operations over the socket ------------------------------------------------------------------------

OWNER_OPS = [
    {"type": "apikey_create", "label": "stolen", "capabilities": ["admin"]},
    {"type": "apikey_list"},
    {"type": "apikey_revoke", "id": "<victim>"},
    {"type": "invite_create", "role": "admin", "maxUses": 100, "expiresInDays": 365},
    {"type": "invite_create"},
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("standing", ["member", "revoked"])
async def test_a_member_cannot_run_owner_operations_over_the_socket(broker, mesh, owner, standing):
    # Given an existing API key and invite, and a connected plain member
    actor = await db(selectors.actor_for_user)(mesh_id=mesh.id, user=owner)
    victim, _secret = await db(services.api_key_create)(actor=actor, label="victim", capabilities=["read"])
    keys, invites = await db(ApiKey.objects.count)(), await db(Invite.objects.count)()
    bob = await db(new_identity)(mesh, "bob", Role.MEMBER)
    sock = await authenticated(bob)
    if standing == "revoked":  # removed while connected: the very next request must see it
        await db(Member.objects.filter(pk=bob.member.pk).update)(revoked_at=timezone.now())
    # When he tries every owner operation
    for index, op in enumerate(OWNER_OPS):
        request = {**{k: (victim.id if v == "<victim>" else v) for k, v in op.items()}, "_reqId": f"op{index}"}
        await sock.send(request)
        reply = await sock.expect(lambda f, r=f"op{index}": f.get("_reqId") == r, 5)
        # Then each one is refused with `forbidden` and its _reqId
        assert_clear_error(reply, request)
        assert reply["code"] == "forbidden", reply
    # And nothing was created or revoked
    assert await db(ApiKey.objects.count)() == keys and await db(Invite.objects.count)() == invites
    assert (await db(ApiKey.objects.get)(pk=victim.pk)).revoked_at is None
    await sock.close()


# --- hostile HTTP ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


def _is_json_error(response) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict)


@pytest.mark.django_db
def test_hostile_bodies_on_public_routes_never_500(owner_actor):
    """Given a live invite, when /join and the claim routes get random bodies (valid fields mixed with junk,
    non-objects, non-JSON bytes), then every answer is JSON and none is a server error."""
    invite = services.invite_create(actor=owner_actor, max_uses=1)
    client = Client()
    tally = {"tried": 0}
    payload = json.loads(__import__("base64").urlsafe_b64decode(invite.token + "=" * (-len(invite.token) % 4)))
    fields = {"invite_token": invite.token, "invite_payload": payload, "peer_pubkey": "ab" * 32,
              "display_name": "x", "recipient_x25519_pubkey": "A" * 43, "peer_pubkey_x": "y"}

    @FUZZ
    @given(
        path=st.sampled_from(["/join", f"/invites/{invite.code}/claim", "/invites/ZZZZZZZZ/claim",
                              f"/api/public/invites/{invite.code}/claim"]),
        body=st.one_of(
            st.dictionaries(st.sampled_from(sorted(fields)), json_values, max_size=5),
            st.builds(lambda d, keep: {**{k: fields[k] for k in keep}, **d},
                      st.dictionaries(st.sampled_from(sorted(fields)), json_values, max_size=2),
                      st.lists(st.sampled_from(sorted(fields)), unique=True)),
            json_values,
        ),
        raw=st.one_of(st.none(), st.binary(max_size=60), st.text(max_size=60).map(str.encode)),
    )
    def one(path, body, raw):
        data = raw if raw is not None else json.dumps(body).encode()
        response = client.post(path, data=data, content_type="application/json")
        tally["tried"] += 1
        tally[response.status_code] = tally.get(response.status_code, 0) + 1
        # a well-formed join of the valid invite may succeed (200); everything else is a 4xx — never a 5xx
        assert response.status_code < 500, (path, data[:200], response.status_code, response.content[:300])
        assert _is_json_error(response), response.content[:300]

    one()
    invite.refresh_from_db()
    assert invite.used_count <= invite.max_uses
    record_results("authz_gaps", "public_route_bodies", {
        "requestsTried": tally.pop("tried"), "serverErrors": 0, "statuses": {str(k): v for k, v in sorted(tally.items())},
    })


@pytest.mark.django_db
def test_hostile_authorization_headers_on_the_api_are_401(owner_actor):
    """Given a real admin key, when /api/v1 gets random Authorization headers (near misses of the real secret:
    truncated, extended, upper-cased, reversed, prefix only, wrong scheme), then every one is 401 with a stable code."""
    _key, secret = services.api_key_create(actor=owner_actor, label="real", capabilities=["admin"])
    client = Client()
    tally = {"tried": 0}

    @FUZZ
    @given(
        header=st.one_of(
            st.text(max_size=80),
            st.builds(lambda scheme, token: f"{scheme} {token}", st.sampled_from(["Bearer", "bearer", "Basic", ""]),
                      st.one_of(st.text(max_size=60), st.just(secret[:-1]), st.just(secret + "x"),
                                st.just(secret.upper()), st.just("cm_" + secret[3:][::-1]), st.just(secret[:11]))),
        ).filter(lambda h: h.strip() not in (f"Bearer {secret}", f"bearer {secret}")),
        path=st.sampled_from(["/api/v1/me", "/api/v1/members", "/api/v1/invites", "/api/v1/api-keys"]),
    )
    def one(header, path):
        try:
            response = client.get(path, HTTP_AUTHORIZATION=header)
        except ValueError:  # header values Django's test client itself refuses (newlines): never reach the server
            return
        tally["tried"] += 1
        assert response.status_code == 401, (header, response.status_code, response.content[:200])
        assert response.json()["code"] in {"api_key_missing", "api_key_invalid"}

    one()
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200  # control
    record_results("authz_gaps", "api_authorization_headers", {"requestsTried": tally["tried"], "accepted": 0})


# --- CSRF on every form ---------------------------------------------------------------------------------------


class FormFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self._current = {"action": attrs.get("action") or "", "fields": {}}
            self.forms.append(self._current)
        elif tag in ("input", "select", "textarea") and self._current is not None and attrs.get("name"):
            self._current["fields"][attrs["name"]] = attrs.get("value") or "x"

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


@pytest.mark.django_db
def test_every_post_form_on_every_page_refuses_a_post_without_csrf_token(owner, mesh, owner_actor):
    # Given a mesh with an invite, an API key and a second member, and its owner signed in
    invite = services.invite_create(actor=owner_actor, max_uses=3)
    services.api_key_create(actor=owner_actor, label="k", capabilities=["read"])
    Member.objects.create(mesh=mesh, pubkey="cd" * 32, display_name="bob", role=Role.MEMBER)
    browser = Client()
    browser.force_login(owner)
    pages = ["/", "/meshes/", "/meshes/new/", f"/meshes/{mesh.id}/", f"/meshes/{mesh.id}/invites/",
             f"/meshes/{mesh.id}/invites/{invite.id}/", f"/meshes/{mesh.id}/keys/", f"/meshes/{mesh.id}/audit/",
             f"/meshes/{mesh.id}/settings/", f"/i/{invite.code}", "/accounts/password/change/", "/accounts/email/",
             "/accounts/logout/"]
    forms: dict[str, dict] = {}
    for page in pages:
        response = browser.get(page)
        assert response.status_code == 200, (page, response.status_code)
        finder = FormFinder()
        finder.feed(response.content.decode())
        for form in finder.forms:
            action = form["action"] or page
            assert "csrfmiddlewaretoken" in form["fields"], f"POST form without a CSRF token field: {page} → {action}"
            forms.setdefault(action, form)
    anonymous = Client()
    for page in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        finder = FormFinder()
        finder.feed(anonymous.get(page).content.decode())
        for form in finder.forms:
            forms.setdefault((form["action"] or page) + "#anonymous", {**form, "anonymous": True})
    assert len(forms) >= 12, sorted(forms)

    # When each form is posted with its fields but without the token, then it is refused with 403
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(owner)
    forged_anon = Client(enforce_csrf_checks=True)
    for action, form in forms.items():
        data = {k: v for k, v in form["fields"].items() if k != "csrfmiddlewaretoken"}
        client = forged_anon if form.get("anonymous") else forged
        response = client.post(action.split("#")[0], data)
        assert response.status_code == 403, (action, response.status_code)
    # And nothing changed
    assert ApiKey.objects.filter(mesh=mesh, revoked_at=None).count() == 1
    assert Invite.objects.filter(mesh=mesh, revoked_at=None).count() == 1
    assert Member.objects.filter(mesh=mesh, revoked_at=None).count() == 2
    record_results("authz_gaps", "csrf_forms", {"formsFound": len(forms), "forgedPostsRefused": len(forms),
                                                "forms": sorted(re.sub(r"[A-Za-z0-9]{20,}", "<id>", a) for a in forms)})
