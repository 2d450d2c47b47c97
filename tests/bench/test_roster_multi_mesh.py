"""Multi-mesh rosters: `manage.py bench_roster --meshes M --peers N` and the harness's reader of both shapes."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command

from bench.plans import PlanSpec, build_plan
from bench.roster import Roster, load_roster
from broker.services.handshake import check_hello, hello_lookup
from meshes.models import Member, Mesh
from protocol.hello import hello_frame as protocol_hello_frame
from tests.support.fake_broker import make_roster


def hello_frame(member, session: str) -> dict:
    """The hello the harness sends (bench/peers.py), signed with the roster's keys."""
    return protocol_hello_frame(mesh_id=member.mesh_id, member_id=member.member_id, pubkey=member.pubkey,
                                secret_hex=member.secret_key, session_id=session, pid=1, cwd="/bench")


@pytest.mark.django_db
def test_bench_roster_writes_m_meshes_of_n_members_whose_keys_sign_valid_hellos(tmp_path):
    out = tmp_path / "roster.json"
    call_command("bench_roster", "--meshes", "3", "--peers", "4", "--out", str(out), "--broker-url", "ws://x/ws")
    data = json.loads(out.read_text())
    assert set(data) == {"brokerUrl", "meshes"} and len(data["meshes"]) == 3
    assert out.stat().st_mode & 0o777 == 0o600
    roster = load_roster(out)
    assert roster.broker_url == "ws://x/ws" and len(roster.members) == 12 and len(roster.mesh_ids) == 3
    assert len({m.pubkey for m in roster.members}) == 12  # no key shared between meshes
    owners = {mesh.owner_id for mesh in Mesh.objects.filter(pk__in=roster.mesh_ids)}
    assert len(owners) == 1  # one owner user for every mesh
    for member in roster.members:
        assert Member.objects.get(pk=member.member_id).mesh_id == member.mesh_id
        lookup = hello_lookup(mesh_id=member.mesh_id, pubkey=member.pubkey)
        hello = check_hello(frame=hello_frame(member, "s1"), lookup=lookup, now_ms=int(time.time() * 1000))
        assert hello.member_id == member.member_id and hello.mesh_id == member.mesh_id
    # A member's key does not open another mesh.
    stranger = roster.members[0]
    assert hello_lookup(mesh_id=roster.mesh_ids[1], pubkey=stranger.pubkey).member is None


@pytest.mark.django_db
def test_bench_roster_keeps_the_single_mesh_shape(tmp_path):
    out = tmp_path / "roster.json"
    call_command("bench_roster", "--peers", "3", "--out", str(out))
    data = json.loads(out.read_text())
    assert set(data) == {"meshId", "brokerUrl", "members"} and len(data["members"]) == 3
    roster = load_roster(out)
    assert roster.mesh_ids == (data["meshId"],) and roster.mesh_id == data["meshId"]
    assert [m.member_id for m in roster.members] == [m["memberId"] for m in data["members"]]


def test_reader_parses_both_shapes_and_round_trips():
    single = make_roster(3)
    roster = Roster.from_dict(single)
    assert roster.mesh_ids == (single["meshId"],) and all(m.mesh_id == single["meshId"] for m in roster.members)
    assert Roster.from_dict(roster.to_dict()) == roster
    assert set(roster.to_dict()) == {"meshId", "brokerUrl", "members"}

    a, b = make_roster(2), make_roster(3)
    b["meshId"] = "n" * 32
    multi = Roster.from_dict({"brokerUrl": "ws://x/ws",
                              "meshes": [{"meshId": a["meshId"], "members": a["members"]},
                                         {"meshId": b["meshId"], "members": b["members"]}]})
    assert multi.mesh_ids == (a["meshId"], b["meshId"]) and len(multi.members) == 5
    assert [m.mesh_id for m in multi.members] == [a["meshId"]] * 2 + [b["meshId"]] * 3
    assert Roster.from_dict(multi.to_dict()) == multi
    # Idle spreads connections over meshes in turn, then over members within each mesh.
    assert [m.mesh_id[0] for m in multi.interleaved()] == ["m", "n", "m", "n", "n"]
    assert set(multi.interleaved()) == set(multi.members)

    with pytest.raises(ValueError):
        Roster.from_dict({"meshes": [{"meshId": "x" * 32, "members": []}]})
    with pytest.raises(ValueError):
        Roster.from_dict({"meshId": "x" * 32, "members": a["members"], "meshes": []})


def test_plans_only_address_members_of_the_senders_mesh():
    a, b = make_roster(3), make_roster(3)
    b["meshId"] = "n" * 32
    roster = Roster.from_dict({"meshes": [{"meshId": a["meshId"], "members": a["members"]},
                                          {"meshId": b["meshId"], "members": b["members"]}]})
    spec = PlanSpec(senders=tuple(range(6)), recipients=tuple(range(6)), msgs_per_sender=20, run_tag="t")
    plan = build_plan(roster, spec)
    for sender, frames in plan.items():
        mesh = roster.members[sender].mesh_id
        same_mesh = {m.pubkey for m in roster.members if m.mesh_id == mesh} - {roster.members[sender].pubkey}
        assert {json.loads(frame)["targetSpec"] for _, frame in frames} <= same_mesh
