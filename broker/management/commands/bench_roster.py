"""`manage.py bench_roster --peers N --out roster.json`: a mesh with N keyed members for load tests.

Writes {meshId, brokerUrl, members: [{memberId, pubkey, secretKey}]} (hex, client.md §4.3). The secret keys
exist only in that file: treat it like a password file.
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


class Command(BaseCommand):
    help = "Create a benchmark mesh with N members and write their keys to a roster file."

    def add_arguments(self, parser):
        parser.add_argument("--peers", type=int, required=True)
        parser.add_argument("--out", required=True)
        parser.add_argument("--broker-url", default=None, help="defaults to settings.BROKER_WS_URL")
        parser.add_argument("--name", default="bench")

    def handle(self, *args, peers: int, out: str, broker_url: str | None, name: str, **options):
        if not 1 <= peers <= 100_000:
            raise CommandError("--peers must be between 1 and 100000")
        roster = self._create(peers=peers, name=name)
        roster["brokerUrl"] = broker_url or settings.BROKER_WS_URL
        path = Path(out)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(roster, handle, indent=1)
        self.stdout.write(f"mesh {roster['meshId']} with {peers} members → {path}")

    @transaction.atomic
    def _create(self, *, peers: int, name: str) -> dict:
        tag = secrets.token_hex(4)
        email = f"bench-{tag}@example.invalid"
        owner = get_user_model().objects.create_user(username=email, email=email, password=secrets.token_urlsafe(24))
        mesh = services.mesh_create(owner=owner, name=f"{name}-{tag}")
        keys = [SigningKeypair.generate() for _ in range(peers)]
        members = Member.objects.bulk_create(
            Member(mesh=mesh, pubkey=key.public_hex, display_name=f"peer-{index}", role=Role.MEMBER)
            for index, key in enumerate(keys)
        )
        return {
            "meshId": mesh.id,
            "members": [
                {"memberId": member.id, "pubkey": key.public_hex, "secretKey": key.secret_hex}
                for member, key in zip(members, keys, strict=True)
            ],
        }
