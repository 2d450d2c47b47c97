"""Start real server processes for end-to-end tests (`manage.py serve`, the server the README runs, on a free port)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


@dataclass
class ServerProcess:
    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    server_flags: ClassVar[tuple[str, ...]] = ()  # extra `manage.py serve` flags of a subclass

    def start(self) -> ServerProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), *self.server_flags],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self, sig: int | None = None) -> None:
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


class BrokerWorker(ServerProcess):
    """One broker worker of a several-worker deployment, as docs/broker.md starts them."""


@contextmanager
def extra_redis_server(tmp_path: Path) -> Iterator[str]:
    """A second Redis server of our own on a free port (nothing kept on disk): the other shard of a sharded channel
    layer. Its URL is yielded; it is shut down afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def throwaway_postgres_database(database_url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the server of `database_url` (created through the maintenance DB, which always
    exists), its URL yielded, dropped afterwards even if clients are still connected."""
    import psycopg

    parsed = urlparse(database_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parsed._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(tmp_path: Path, port: int, **overrides: str) -> dict[str, str]:
    """Environment for a server process: embedded default unless DATABASE_URL / REDIS_URL are passed."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "claudemesh.settings",
            "CLAUDEMESH_VAR_DIR": str(tmp_path / "var"),
            "SQLITE_PATH": str(tmp_path / "server.sqlite3"),
            "DJANGO_SECRET_KEY": "e2e-secret-key-not-for-production-0123456789abcdef",
            "BROKER_WS_URL": f"ws://127.0.0.1:{port}/ws",
            "APP_URL": f"http://127.0.0.1:{port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
    )
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def manage(env: dict[str, str], *args: str) -> str:
    """Run a management command in the server's environment and return its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


# A mesh with two invites, made inside a server's own database (`manage.py shell -c`): prints them as JSON.
MINT_INVITE = """
import json, uuid
from django.contrib.auth import get_user_model
from meshes import selectors, services
User = get_user_model()
email = f"owner-{uuid.uuid4().hex[:10]}@e2e.test"  # a new mesh, owner and invites each time
owner = User.objects.create_user(username=email, email=email, password="e2e-password-123456")
mesh = services.mesh_create(owner=owner, name="E2E Mesh")
actor = selectors.actor_for_user(mesh_id=mesh.id, user=owner)
invite = services.invite_create(actor=actor, max_uses=50)
admin = services.invite_create(actor=actor, role="admin", max_uses=50)
print(json.dumps({"token": invite.token, "code": invite.code, "slug": mesh.slug, "meshId": mesh.id,
                  "adminToken": admin.token, "adminCode": admin.code, "ownerEmail": email}))
"""
