"""The roster file the harness reads: `{meshId, brokerUrl?, members: [{memberId, pubkey, secretKey}]}`.

Written by the broker's `manage.py bench_roster`; any broker that can enroll those keys can be driven.
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


@dataclass(frozen=True)
class Roster:
    mesh_id: str
    members: tuple[RosterMember, ...]
    broker_url: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> Roster:
        members = tuple(
            RosterMember(member_id=m["memberId"], pubkey=m["pubkey"], secret_key=m["secretKey"])
            for m in data["members"]
        )
        if not members:
            raise ValueError("roster has no members")
        return cls(mesh_id=data["meshId"], members=members, broker_url=data.get("brokerUrl"))

    def to_dict(self) -> dict:
        return {
            "meshId": self.mesh_id,
            "brokerUrl": self.broker_url,
            "members": [{"memberId": m.member_id, "pubkey": m.pubkey, "secretKey": m.secret_key} for m in self.members],
        }


def load_roster(path: str | Path) -> Roster:
    return Roster.from_dict(json.loads(Path(path).read_text()))
