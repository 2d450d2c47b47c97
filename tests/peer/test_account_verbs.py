"""The account from the terminal against a real server process: `claudemesh login` approved by a person signed in
to the dashboard (a real sign-in, CSRF and all), then `new` → `invite` → a second identity joins → `rename` →
`delete`, `list` synced with the server, `whoami`, revocation on the dashboard, `logout`."""

from __future__ import annotations

import json
import re
import stat
import time

import httpx
import pytest

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"


def _make_user(e2e_server, email: str) -> None:
    e2e_server.shell(
        "from accounts.models import User\n"
        f"User.objects.filter(email={email!r}).exists() or "
        f"User.objects.create_user(username={email!r}, email={email!r}, password={PASSWORD!r})"
    )


def _csrf(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def _signed_in_browser(base: str, email: str) -> httpx.Client:
    browser = httpx.Client(base_url=base, follow_redirects=True, timeout=15)
    page = browser.get("/accounts/login/")
    answer = browser.post("/accounts/login/", data={"login": email, "password": PASSWORD,
                                                     "csrfmiddlewaretoken": _csrf(page.text)})
    assert answer.status_code == 200 and "Sign in" not in answer.text.split("<main", 1)[-1][:400]
    return browser


def _login(e2e_server, peer, email: str) -> None:
    proc = peer.start("login", "--server", e2e_server.http_url, "--no-browser", "--json")
    url = None
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"(http\S+/cli-auth\?session=\S+)", line)
        url = match.group(1) if match else None
    assert url, "login printed no approval link"
    browser = _signed_in_browser(e2e_server.http_url, email)
    page = browser.get(url)
    assert page.status_code == 200 and "Approve" in page.text
    session = re.search(r"session=(\S+)", url).group(1)
    browser.post("/cli-auth", data={"csrfmiddlewaretoken": _csrf(page.text), "session": session, "decision": "approve"})
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["user"]["email"] == email


def test_login_new_invite_join_rename_delete_all_from_the_terminal(e2e_server, make_peer):
    _make_user(e2e_server, "alice@example.test")
    alice, bob = make_peer("alice"), make_peer("bob")
    assert alice.json("whoami", "--account")["signed_in"] is False
    _login(e2e_server, alice, "alice@example.test")
    auth_file = alice.config_dir / "auth.json"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert alice.json("whoami", "--account")["user"]["email"] == "alice@example.test"
    # new: the terminal's identity is the owner, joined here
    created = alice.json("new", "Launch", "Crew")
    assert created["slug"] == "launch-crew"
    assert [m["slug"] for m in alice.json("list")] == ["launch-crew"]
    # invite, join from a second identity
    invite = alice.json("invite", "--mesh", "launch-crew", "--uses", "2", "--expires", "3")
    link = invite.get("shortUrl") or invite.get("url")
    bob.run("join", link, "--name", "bob")
    names = {m["displayName"] for m in alice.json("members")["members"]}
    assert "bob" in names and len(names) == 2
    # rename the mesh (the slug stays); list shows the server's view
    renamed = alice.json("rename", "launch-crew", "Launch", "Team")
    assert renamed == {"ok": True, "slug": "launch-crew", "name": "Launch Team"}
    listed = alice.json("list")
    assert listed[0]["synced"] is True and listed[0]["role"] == "owner" and listed[0]["name"] == "Launch Team"
    # delete: refused without the typed slug, then archived for everyone
    wrong = alice.run("delete", "launch-crew", "--confirm", "launch", check=False)
    assert wrong.returncode == 3 and "nothing was deleted" in wrong.stderr
    assert bob.run("delete", "launch-crew", "--confirm", "launch-crew", check=False).returncode == 2  # not signed in
    deleted = alice.json("delete", "launch-crew", "--confirm", "launch-crew")
    assert deleted["deleted"] == "launch-crew" and deleted["removedLocally"] is True
    assert alice.json("list") == []
    assert bob.run("peers", check=False).returncode != 0  # the mesh is gone for bob too
    # logout revokes on the server and forgets the token
    token = json.loads(auth_file.read_text())["session_token"]
    out = alice.json("logout")
    assert out["revoked"] is True and not auth_file.exists()
    assert httpx.get(f"{e2e_server.http_url}/api/my/profile",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401


def test_a_terminal_revoked_on_the_dashboard_is_signed_out_at_once(e2e_server, make_peer):
    _make_user(e2e_server, "dora@example.test")
    dora = make_peer("dora")
    _login(e2e_server, dora, "dora@example.test")
    browser = _signed_in_browser(e2e_server.http_url, "dora@example.test")
    page = browser.get("/account/terminals/")
    revoke = re.search(r'action="(/account/terminals/[^"]+/revoke/)"', page.text).group(1)
    browser.post(revoke, data={"csrfmiddlewaretoken": _csrf(page.text)})
    refused = dora.run("new", "Too", "Late", check=False)
    assert refused.returncode == 2 and "no longer valid" in refused.stderr
    assert dora.json("whoami", "--account")["signed_in"] is False
