"""At 375 px (a phone) no dashboard page scrolls sideways, and an invite code never breaks across lines: Debian's
chromium driven by Playwright against a real server process, with a mesh that has long names, keys and codes."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.test_browser_walkthrough import browser, server  # noqa: F401  (fixtures)
from tests.support.servers import manage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FULL_MESH = """
import json
from django.contrib.auth import get_user_model
from meshes import selectors, services
from meshes.models import Member
User = get_user_model()
owner = User.objects.create_user(username="narrow@example.test", email="narrow@example.test", password="a narrow passphrase 42")
mesh = services.mesh_create(owner=owner, name="A mesh with a rather long name for a small screen")
actor = selectors.actor_for_user(mesh_id=mesh.id, user=owner)
for n in range(3):
    Member.objects.create(mesh=mesh, pubkey=f"{n:02d}" * 32, display_name=f"someone-with-a-long-name-{n}@laptop.example")
for n in range(3):
    services.invite_create(actor=actor, role="member", max_uses=5, expires_in_days=3)
services.api_key_create(actor=actor, label="a-key-with-a-long-label-for-ci", capabilities=["send", "read"])
services.mesh_rename(actor=actor, name="Renamed with an even longer name than before")
from datetime import timedelta
from django.utils import timezone
from meshes.models import ScheduledMessage, StateEntry, Task
member = Member.objects.filter(mesh=mesh).first()
Task.objects.create(mesh=mesh, title="t", assignee="someone-with-a-long-name-1@laptop.example", priority="whenever-you-can",
                    status="claimed", claimed_by_name="someone-with-a-long-name-2@laptop.example")
StateEntry.objects.create(mesh=mesh, key="a/rather/long/state/key/that/names/a/build/artifact/of/the/release", value=1,
                          updated_by_name="someone-with-a-long-name-0@laptop.example")
ScheduledMessage.objects.create(mesh=mesh, member=member, to="ab" * 32, message="x", cron="*/15 9-17 * * 1-5",
                                time_zone="America/Argentina/Buenos_Aires", deliver_at=timezone.now() + timedelta(hours=3))
from meshes.services.moderation import member_ban
from meshes.services.webhooks import webhook_create
webhook_create(actor=actor, name="a-webhook-with-a-long-name-for-ci-and-monitoring-01234", signed=True)
member_ban(actor=actor, member_id=Member.objects.get(mesh=mesh, pubkey="02" * 32).id)
print(json.dumps({"meshId": mesh.id}))
"""

WIDE = """[...document.querySelectorAll('body *')].filter(n => n.getBoundingClientRect().right > innerWidth + 1)
  .filter(n => !n.closest('.table-scroll, .tabs')).slice(0, 6)
  .map(n => n.tagName + '.' + n.className + ' ' + Math.round(n.getBoundingClientRect().right))"""
PAGES = ("", "topics/", "coordination/", "moderation/", "webhooks/", "invites/", "keys/", "audit/", "traffic/", "settings/")


def test_no_page_scrolls_sideways_at_375_px(server, browser):  # noqa: F811
    mesh_id = json.loads(manage(server.env, "shell", "-c", FULL_MESH).strip().splitlines()[-1])["meshId"]
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.goto(f"{server.http_url}/accounts/login/")
    page.fill("input[name=login]", "narrow@example.test")
    page.fill("input[name=password]", "a narrow passphrase 42")
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{server.http_url}/**")
    for suffix in PAGES:
        page.goto(f"{server.http_url}/meshes/{mesh_id}/{suffix}")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"/{suffix} is {overflow}px wider than the screen: {page.evaluate(WIDE)}"
    page.goto(f"{server.http_url}/meshes/{mesh_id}/invites/")
    codes = page.eval_on_selector_all("td.code a", "nodes => nodes.map(n => n.getClientRects().length)")
    assert codes and all(lines == 1 for lines in codes), codes
