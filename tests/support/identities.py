"""Real members with real ed25519 keys, and their signed hellos (built by the protocol's own `hello_frame`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from meshes.models import Member, Role
from meshes.services.topics import topic_subscribe_general
from protocol.crypto import SigningKeypair
from protocol.hello import hello_frame


@dataclass
class Identity:
    member: Member
    keypair: SigningKeypair

    @property
    def pubkey(self) -> str:
        return self.keypair.public_hex


def new_identity(mesh, name: str = "peer", role: str = Role.MEMBER, **fields: Any) -> Identity:
    keypair = SigningKeypair.generate()
    member = Member.objects.create(mesh=mesh, pubkey=keypair.public_hex, display_name=name, role=role, **fields)
    topic_subscribe_general(member=member)
    return Identity(member, keypair)


def hello_for(
    identity: Identity, *, mesh_id: str | None = None, signed_at: int | None = None, cwd: str = "/tmp/project", **overrides
) -> dict[str, Any]:
    """A signed hello for `identity` (over `mesh_id` and the `signed_at` ms timestamp when given); `overrides`
    replace or add wire fields after signing, so they can break what was signed."""
    member = identity.member
    frame = hello_frame(
        mesh_id=mesh_id or member.mesh_id,
        member_id=member.id,
        pubkey=identity.pubkey,
        secret_hex=identity.keypair.secret_hex,
        session_id=f"s-{uuid.uuid4().hex[:12]}",
        pid=4242,
        cwd=cwd,
        timestamp=signed_at,
    )
    frame.update(overrides)
    return frame
