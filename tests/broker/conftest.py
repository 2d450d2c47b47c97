"""Broker fixtures: real ed25519 members, real signatures, real WebSocket frames (in-process ASGI)."""

from __future__ import annotations

import pytest

from meshes.models import Role
from tests.support.identities import Identity, new_identity
from tests.support.sockets import Socket, open_socket, shutdown_broker


@pytest.fixture
def make_member(mesh):
    def make(name: str = "peer", role: str = Role.MEMBER, **fields) -> Identity:
        return new_identity(mesh, name, role, **fields)

    return make


@pytest.fixture
async def connect():
    """connect(identity, hello=True, client=(ip, port), **hello_overrides) → an open (authenticated) Socket."""
    sockets: list[Socket] = []

    async def connect_socket(identity: Identity | None = None, **options) -> Socket:
        sock = await open_socket(identity, **options)
        sockets.append(sock)
        return sock

    yield connect_socket
    for sock in sockets:
        await sock.close()
    await shutdown_broker()
