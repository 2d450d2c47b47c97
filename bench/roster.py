"""The roster file the harness reads, in one of two shapes (both written by the broker's `manage.py bench_roster`):

- one mesh: `{meshId, brokerUrl?, members: [{memberId, pubkey, secretKey}]}`;
- several meshes: `{brokerUrl?, meshes: [{meshId, members: [{memberId, pubkey, secretKey}]}]}`.

Members are kept as one flat list, mesh after mesh, each carrying its own mesh id: a peer says hello with its
own mesh's id and only sends to members of that mesh. Any broker that can enroll those keys can be driven.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RosterMember:
    member_id: str
    pubkey: str
    secret_key: str
    mesh_id: str


@dataclass(frozen=True)
class Roster:
    members: tuple[RosterMember, ...]
    broker_url: str | None = None

    @property
    def mesh_ids(self) -> tuple[str, ...]:
        """The meshes in roster order."""
        return tuple(dict.fromkeys(m.mesh_id for m in self.members))

    @property
    def mesh_id(self) -> str:
        """The first mesh (the only one in a single-mesh roster)."""
        return self.members[0].mesh_id

    def interleaved(self) -> tuple[RosterMember, ...]:
        """Every member once, meshes taken in turn (first member of each mesh, then the second, …).

        The idle scenario reuses this order cyclically, so K connections spread evenly over all meshes and,
        within a mesh, over its members (K ≤ roster size: at most one socket per member).
        """
        by_mesh: dict[str, list[RosterMember]] = {}
        for member in self.members:
            by_mesh.setdefault(member.mesh_id, []).append(member)
        columns = list(by_mesh.values())
        longest = max(len(c) for c in columns)
        return tuple(column[n] for n in range(longest) for column in columns if n < len(column))

    @classmethod
    def from_dict(cls, data: dict) -> Roster:
        if "meshes" in data:
            if "members" in data or "meshId" in data:
                raise ValueError("a roster has either meshes or a top-level meshId and members, not both")
            groups = [(mesh["meshId"], mesh["members"]) for mesh in data["meshes"]]
        else:
            groups = [(data["meshId"], data["members"])]
        members = []
        for mesh_id, entries in groups:
            if not mesh_id or not entries:
                raise ValueError("every roster mesh needs a meshId and at least one member")
            members.extend(RosterMember(member_id=m["memberId"], pubkey=m["pubkey"], secret_key=m["secretKey"],
                                        mesh_id=mesh_id) for m in entries)
        if not members:
            raise ValueError("roster has no members")
        return cls(members=tuple(members), broker_url=data.get("brokerUrl"))

    def to_dict(self) -> dict:
        """The single-mesh shape for one mesh, the `meshes` shape otherwise (what from_dict reads back)."""
        meshes = [
            {"meshId": mesh_id,
             "members": [{"memberId": m.member_id, "pubkey": m.pubkey, "secretKey": m.secret_key}
                         for m in self.members if m.mesh_id == mesh_id]}
            for mesh_id in self.mesh_ids
        ]
        if len(meshes) == 1:
            return {"meshId": meshes[0]["meshId"], "brokerUrl": self.broker_url, "members": meshes[0]["members"]}
        return {"brokerUrl": self.broker_url, "meshes": meshes}


def load_roster(path: str | Path) -> Roster:
    return Roster.from_dict(json.loads(Path(path).read_text()))
