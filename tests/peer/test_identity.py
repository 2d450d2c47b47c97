"""Lasting names and one identity per person, with the real `claudemesh` command against a real server: a member
name at join (never `<host>-<pid>`), session names apart from it, renaming, a dashboard account's personal CLI
link (its role, one member), retiring an earlier identity, and invite refusals in words."""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = pytest.mark.slow

CLI_LINK = """
import json
from django.contrib.auth import get_user_model
from meshes import selectors, services
owner = get_user_model().objects.get(email="{email}")
actor = selectors.actor_for_user(mesh_id="{mesh_id}", user=owner)
link = services.invite_create_cli_link(actor=actor)
print(json.dumps({{"code": link.code, "token": link.token}}))
"""

MEMBERS = """
import json
from meshes.models import Member
print(json.dumps([[m.display_name, m.role, bool(m.pubkey), m.revoked_at is not None]
                  for m in Member.objects.filter(mesh_id="{mesh_id}").order_by("joined_at")]))
"""


def shell_json(e2e_server, code: str):
    return json.loads(e2e_server.shell(code).strip().splitlines()[-1])


def short_link(e2e_server, code: str) -> str:
    return f"{e2e_server.http_url}/i/{code}"


def test_a_member_name_comes_from_git_or_user_at_host_never_a_pid(e2e_server, make_peer):
    bob, carol = make_peer("bob"), make_peer("carol")
    (bob.config_dir.parent / "home" / ".gitconfig").write_text("[user]\n\tname = Bob Builder\n")
    carol.env["USER"] = "carol"
    assert bob.json("join", short_link(e2e_server, e2e_server.invite["code"]))["memberName"] == "Bob Builder"
    expected = f"carol@{socket.gethostname().split('.')[0]}"
    assert carol.json("join", short_link(e2e_server, e2e_server.invite["code"]))["memberName"] == expected
    names = {m["displayName"] for m in bob.json("members")["members"]}
    assert {"Bob Builder", expected} <= names


def test_a_session_name_is_not_the_member_name_and_rename_changes_the_lasting_one(e2e_server, make_peer):
    alice, bob = make_peer("alice"), make_peer("bob")
    alice.run("join", short_link(e2e_server, e2e_server.invite["code"]), "--name", "alice")
    bob.run("join", short_link(e2e_server, e2e_server.invite["code"]), "--name", "bob")
    bob.env["CLAUDEMESH_SESSION_NAME"] = "bob-build-box"
    bob.watch()
    assert "bob-build-box" in {p["displayName"] for p in alice.json("peers")}
    assert "bob" in {m["displayName"] for m in alice.json("members")["members"]}
    assert alice.json("send", "bob", "to the member")["recipients"][0]["state"] == "live"
    renamed = alice.json("rename", "Alice", "Smith")
    assert renamed["memberName"] == "Alice Smith"
    assert "Alice Smith" in {m["displayName"] for m in bob.json("members")["members"]}
    assert alice.json("whoami")[0]["memberName"] == "Alice Smith"
    bob.env.pop("CLAUDEMESH_SESSION_NAME")
    bob.run("send", "Alice Smith", "hello under the new name")
    assert [m["senderName"] for m in alice.json("inbox")] == ["bob"]


def test_a_dashboard_account_links_its_cli_as_one_member_with_its_role(e2e_server, make_peer):
    """Given the mesh's owner on the dashboard, when they join from the CLI with their personal link, then there
    is still one member for them, with the owner role and their name, now holding the CLI's key."""
    invite = e2e_server.invite
    link = shell_json(e2e_server, CLI_LINK.format(email=invite["ownerEmail"], mesh_id=invite["meshId"]))
    owner = make_peer("owner")
    joined = owner.json("join", short_link(e2e_server, link["code"]), "--name", "laptop-name-ignored")
    assert joined["linked"] is True and joined["role"] == "owner"
    members = shell_json(e2e_server, MEMBERS.format(mesh_id=invite["meshId"]))
    assert len(members) == 1 and members[0][1:] == ["owner", True, False]
    assert joined["memberName"] == members[0][0] != "laptop-name-ignored"
    again = owner.run("join", short_link(e2e_server, link["code"]), check=False)  # single use
    assert again.returncode != 0 and "no uses left" in again.stderr


def test_a_personal_link_retires_the_machines_earlier_identity(e2e_server, make_peer):
    """Given the owner's laptop joined earlier with an ordinary invite (a second member, `alice-laptop`), when it
    joins with the owner's personal link, then the earlier member is retired and the owner holds the key."""
    invite = e2e_server.invite
    laptop = make_peer("laptop")
    first = laptop.json("join", short_link(e2e_server, invite["code"]), "--name", "alice-laptop")
    link = shell_json(e2e_server, CLI_LINK.format(email=invite["ownerEmail"], mesh_id=invite["meshId"]))
    linked = laptop.json("join", short_link(e2e_server, link["code"]))
    assert linked["retiredMemberId"] == first["memberId"] and linked["role"] == "owner"
    members = shell_json(e2e_server, MEMBERS.format(mesh_id=invite["meshId"]))
    live = [m for m in members if not m[3]]
    assert len(live) == 1 and live[0][1] == "owner" and live[0][2] is True
    assert laptop.json("whoami")[0]["memberId"] == linked["memberId"]
    assert [m["role"] for m in laptop.json("members")["members"]] == ["admin"]  # the wire calls owners admin


def test_invite_refusals_are_words_and_bare_codes_never_leave_for_a_third_party(e2e_server, make_peer):
    newcomer = make_peer("newcomer")
    bare = newcomer.run("join", "ABCDEFGH", check=False)
    assert bare.returncode == 3
    assert "needs to know your server" in bare.stderr and "CLAUDEMESH_BROKER_URL" in bare.stderr
    unknown = newcomer.run("join", short_link(e2e_server, "ZZZZZZZZ"), check=False)
    assert unknown.returncode == 5 and "not found" in unknown.stderr and "ask whoever sent it" in unknown.stderr
    link = shell_json(e2e_server, CLI_LINK.format(email=e2e_server.invite["ownerEmail"], mesh_id=e2e_server.invite["meshId"]))
    newcomer.run("join", short_link(e2e_server, link["code"]))
    used = make_peer("second").run("join", f"{e2e_server.http_url}/join/{link['token']}", check=False)
    assert used.returncode == 1 and "this invite has no uses left" in used.stderr and "Traceback" not in used.stderr
    bad_args = newcomer.run("send", check=False)
    assert bad_args.returncode == 3
