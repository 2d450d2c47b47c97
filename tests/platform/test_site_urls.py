"""Invite links reach the server (meshes/site.py): unset APP_URL / BROKER_WS_URL follow the request or what the
run command bound; set ones win; links that point at loopback are flagged on the invite pages."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from meshes import selectors, services
from tests.support.oracles import unb64url

pytestmark = pytest.mark.django_db


def test_an_invite_minted_over_the_network_names_the_address_it_was_minted_from(client, owner, mesh, settings):
    settings.APP_URL_EXPLICIT = settings.BROKER_WS_URL_EXPLICIT = False
    settings.APP_URL, settings.ALLOWED_HOSTS = "http://localhost:8000", ["192.168.7.9", "localhost"]
    client.force_login(owner)
    response = client.post(reverse("dashboard:invite_create", args=[mesh.id]),
                           {"role": "member", "max_uses": 1, "expires_in_days": 1}, HTTP_HOST="192.168.7.9:19500")
    assert response.status_code == 302
    invite = mesh.invites.order_by("-created_at").first()
    assert json.loads(unb64url(invite.token))["broker_url"] == "ws://192.168.7.9:19500/ws"
    page = client.get(response.url, HTTP_HOST="192.168.7.9:19500").content.decode()
    assert "http://192.168.7.9:19500/i/" in page and "local-only-warning" not in page


def test_a_loopback_request_does_not_override_the_network_address_the_server_bound(rf, owner_actor, settings):
    settings.APP_URL_EXPLICIT = settings.BROKER_WS_URL_EXPLICIT = False
    settings.APP_URL = "http://10.1.2.3:19500"  # what `serve --host 0.0.0.0 --port 19500` announces
    from meshes import site

    token = site.remember_origin("http://localhost:19500")
    try:
        invite = services.invite_create(actor=owner_actor)
    finally:
        site.forget_origin(token)
    assert json.loads(unb64url(invite.token))["broker_url"] == "ws://10.1.2.3:19500/ws"


def test_explicit_urls_win_and_loopback_links_are_flagged(client, owner, mesh, settings):
    settings.APP_URL_EXPLICIT = settings.BROKER_WS_URL_EXPLICIT = True
    settings.APP_URL, settings.BROKER_WS_URL = "http://localhost:8000", "ws://localhost:8000/ws"
    client.force_login(owner)
    client.post(reverse("dashboard:invite_create", args=[mesh.id]), {"role": "member", "max_uses": 1,
                                                                     "expires_in_days": 1})
    invite = mesh.invites.order_by("-created_at").first()
    assert selectors.invite_links(invite=invite)["shortUrl"].startswith("http://localhost:8000/i/")
    page = client.get(reverse("dashboard:invite", args=[mesh.id, invite.id])).content.decode()
    assert "local-only-warning" in page and "make run HOST=0.0.0.0" in page
    assert "local-only-warning" in client.get(reverse("dashboard:invites", args=[mesh.id])).content.decode()


def test_serve_announces_the_address_it_bound_when_nothing_is_set(settings):
    from broker.management.commands.serve import announce_bound_address

    settings.APP_URL_EXPLICIT = settings.BROKER_WS_URL_EXPLICIT = False
    settings.ALLOWED_HOSTS = ["localhost"]
    announce_bound_address("127.0.0.1", 19500)
    assert (settings.APP_URL, settings.BROKER_WS_URL) == ("http://127.0.0.1:19500", "ws://127.0.0.1:19500/ws")
    announce_bound_address("0.0.0.0", 19501)
    assert settings.APP_URL.endswith(":19501") and "0.0.0.0" not in settings.APP_URL
    assert settings.APP_URL.split("//")[1].split(":")[0] in settings.ALLOWED_HOSTS


@pytest.mark.slow
def test_a_server_started_on_another_port_mints_invites_that_reach_it(tmp_path, make_peer_home):
    """`make run PORT=…` with no APP_URL: an invite minted over the socket names that port, and a newcomer joins."""
    import subprocess
    import sys

    from tests.support.servers import MINT_INVITE, ROOT, ServerProcess, free_port, manage, migrate, server_env

    port = free_port()
    env = server_env(tmp_path, port)
    for key in ("APP_URL", "BROKER_WS_URL"):
        env.pop(key)
    migrate(env)
    server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        minted = json.loads(manage({**env, "BROKER_WS_URL": server.ws_url}, "shell", "-c", MINT_INVITE).splitlines()[-1])
        admin, newcomer = make_peer_home("admin"), make_peer_home("newcomer")

        def cli(peer_env, *args):
            return subprocess.run([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env=peer_env,
                                  capture_output=True, text=True, timeout=60)

        assert cli(admin, "join", f"ic://join/{minted['adminToken']}", "--name", "admin").returncode == 0
        created = json.loads(cli(admin, "invite", "--json").stdout)
        assert created["shortUrl"].startswith(f"http://127.0.0.1:{port}/i/")
        assert json.loads(unb64url(created["token"]))["broker_url"] == f"ws://127.0.0.1:{port}/ws"
        joined = cli(newcomer, "join", created["shortUrl"], "--name", "newcomer", "--json")
        assert joined.returncode == 0, joined.stderr
    finally:
        server.stop()


@pytest.fixture
def make_peer_home(tmp_path):
    import os

    def make(name: str) -> dict[str, str]:
        home = tmp_path / name
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEMESH_")}
        return {**env, "HOME": str(home), "CLAUDEMESH_CONFIG_DIR": str(home / "claudemesh")}

    return make


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_request_origin_reaches_the_service(owner, mesh, settings):
    """The same as the first test, through Django's ASGI handler (how `serve` runs it): the middleware's context
    must reach the sync view and the service it calls."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    settings.APP_URL_EXPLICIT = settings.BROKER_WS_URL_EXPLICIT = False
    settings.APP_URL, settings.ALLOWED_HOSTS = "http://127.0.0.1:8000", ["testserver"]
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.post(reverse("dashboard:invite_create", args=[mesh.id]),
                                 {"role": "member", "max_uses": 1, "expires_in_days": 1})
    assert response.status_code == 302, response.content.decode()[:3000]

    def newest_token():
        return mesh.invites.order_by("-created_at").first().token

    assert json.loads(unb64url(await sync_to_async(newest_token)()))["broker_url"] == "ws://testserver/ws"
