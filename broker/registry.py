"""This worker's sockets: the authenticated connections by presence, mesh and member, and per-IP admission
of every socket (before hello). Memory only; the database knows every worker's presences."""

from __future__ import annotations

from collections import Counter, defaultdict

from broker import conf, metrics
from broker.connection import Connection


class ConnectionRegistry:
    def __init__(self) -> None:
        self.by_presence: dict[str, Connection] = {}
        self.by_mesh: dict[str, set[Connection]] = defaultdict(set)
        self.ip_counts: Counter[str] = Counter()

    # --- admission -----------------------------------------------------------------------------------------

    def admit_ip(self, ip: str) -> bool:
        if self.ip_counts[ip] >= conf.max_connections_per_ip():
            return False
        self.ip_counts[ip] += 1
        return True

    def release_ip(self, ip: str) -> None:
        self.ip_counts[ip] -= 1
        if self.ip_counts[ip] <= 0:
            del self.ip_counts[ip]

    # --- authenticated connections -----------------------------------------------------------------------

    def register(self, conn: Connection) -> None:
        self.by_presence[conn.presence_id] = conn
        self.by_mesh[conn.mesh_id].add(conn)
        metrics.connections_active.set(len(self.by_presence))

    def unregister(self, conn: Connection) -> None:
        if self.by_presence.get(conn.presence_id) is conn:
            del self.by_presence[conn.presence_id]
        mesh_connections = self.by_mesh.get(conn.mesh_id)
        if mesh_connections is not None:
            mesh_connections.discard(conn)
            if not mesh_connections:
                del self.by_mesh[conn.mesh_id]
        metrics.connections_active.set(len(self.by_presence))

    def get(self, presence_id: str | None) -> Connection | None:
        return self.by_presence.get(presence_id) if presence_id else None

    def of_mesh(self, mesh_id: str) -> list[Connection]:
        return list(self.by_mesh.get(mesh_id, ()))

    def of_member(self, member_id: str) -> list[Connection]:
        return [conn for conn in self.by_presence.values() if conn.member_id == member_id]

    def take_active(self) -> list[str]:
        """Connections that sent a frame since the last call (the heartbeat stores when)."""
        active = []
        for conn in self.by_presence.values():
            if conn.active:
                conn.active = False
                active.append(conn.presence_id)
        return active

    def presence_ids(self) -> list[str]:
        return list(self.by_presence)

    def __len__(self) -> int:
        return len(self.by_presence)
