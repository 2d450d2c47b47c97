"""`manage.py bench_roster [--meshes M] --peers N --out roster.json`: M meshes of N keyed members for load tests.

All meshes belong to one new owner user. The roster file has one of two shapes (hex keys, client.md §4.3):

- M = 1 (the default): `{meshId, brokerUrl, members: [{memberId, pubkey, secretKey}]}`, as it always was;
- M > 1: `{brokerUrl, meshes: [{meshId, members: [{memberId, pubkey, secretKey}]}]}`.

`bench/roster.py` reads both. Every member has its own keypair (no key is shared between meshes), and members
are bulk-inserted, so 100 × 100 takes seconds. The secret keys exist only in that file: treat it like a
password file (it is written with mode 0600).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from meshes import services
from meshes.models import Member, Role
from protocol.crypto import SigningKeypair

MAX_MEMBERS = 100_000


class Command(BaseCommand):
    help = "Create M benchmark meshes with N members each and write their keys to a roster file."

    def add_arguments(self, parser):
        parser.add_argument("--peers", type=int, required=True, help="members per mesh")
        parser.add_argument("--meshes", type=int, default=1, help="number of meshes (default 1)")
        parser.add_argument("--out", required=True)
        parser.add_argument("--broker-url", default=None, help="defaults to settings.BROKER_WS_URL")
        parser.add_argument("--name", default="bench")

    def handle(self, *args, peers: int, meshes: int, out: str, broker_url: str | None, name: str, **options):
        if not 1 <= peers <= MAX_MEMBERS:
            raise CommandError(f"--peers must be between 1 and {MAX_MEMBERS}")
        if meshes < 1 or meshes * peers > MAX_MEMBERS:
            raise CommandError(f"--meshes must be at least 1 and --meshes × --peers at most {MAX_MEMBERS}")
        created = self._create(meshes=meshes, peers=peers, name=name)
        url = broker_url or settings.BROKER_WS_URL
        if meshes == 1:
            roster = {"meshId": created[0]["meshId"], "brokerUrl": url, "members": created[0]["members"]}
        else:
            roster = {"brokerUrl": url, "meshes": created}
        path = Path(out)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(roster, handle, indent=None if meshes * peers > 1000 else 1)
        first = created[0]["meshId"]
        what = f"mesh {first}" if meshes == 1 else f"{meshes} meshes ({first}…)"
        self.stdout.write(f"{what} with {peers} members each → {path}")

    @transaction.atomic
    def _create(self, *, meshes: int, peers: int, name: str) -> list[dict]:
        tag = secrets.token_hex(4)
        email = f"bench-{tag}@example.invalid"
        owner = get_user_model().objects.create_user(username=email, email=email, password=secrets.token_urlsafe(24))
        mesh_objs = [services.mesh_create(owner=owner, name=f"{name}-{tag}-{m}" if meshes > 1 else f"{name}-{tag}")
                     for m in range(meshes)]
        keys = [SigningKeypair.generate() for _ in range(meshes * peers)]
        rows = [Member(mesh=mesh, pubkey=keys[m * peers + n].public_hex, display_name=f"peer-{n}", role=Role.MEMBER)
                for m, mesh in enumerate(mesh_objs) for n in range(peers)]
        members = Member.objects.bulk_create(rows, batch_size=2000)
        services.topic_subscribe_general_bulk(members=members)
        return [
            {
                "meshId": mesh.id,
                "members": [
                    {"memberId": member.id, "pubkey": key.public_hex, "secretKey": key.secret_hex}
                    for member, key in zip(members[m * peers:(m + 1) * peers], keys[m * peers:(m + 1) * peers],
                                           strict=True)
                ],
            }
            for m, mesh in enumerate(mesh_objs)
        ]
