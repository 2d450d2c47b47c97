"""Local identity and settings: `config.json` in the config dir (client.md §4).

One ed25519 keypair per joined mesh. The directory is 0700, files 0600, and every write goes through a
temporary file + rename so a crash never leaves a half-written config (and never a world-readable secret).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from protocol.crypto import CryptoError, SigningKeypair
from protocol.encoding import HEX64, HEX128

CONFIG_FILE = "config.json"
TOP_LEVEL_KEYS = ("displayName", "role", "groups", "messageMode", "accountId")


class ConfigError(Exception):
    """The config file cannot be read or written."""


# --- environment ------------------------------------------------------------------------------------------


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def config_dir() -> Path:
    override = os.environ.get("CLAUDEMESH_CONFIG_DIR", "").strip()
    return Path(override).expanduser() if override else Path.home() / ".claudemesh"


def default_broker_url(config: Config | None = None) -> str | None:
    """Your server, for bare invite codes: `CLAUDEMESH_BROKER_URL`, else the one broker the meshes you joined use.
    Never a third-party host: with neither, there is none."""
    explicit = os.environ.get("CLAUDEMESH_BROKER_URL", "").strip()
    if explicit:
        return explicit
    brokers = {mesh.broker_url for mesh in config.meshes} if config is not None else set()
    return brokers.pop() if len(brokers) == 1 else None


def debug_enabled() -> bool:
    return env_flag("CLAUDEMESH_DEBUG")


def http_origin(ws_url: str) -> str:
    """ws(s)://host[:port]/prefix/ws → http(s)://host[:port]/prefix (client.md §4.5 [PY])."""
    parts = urlsplit(ws_url.strip())
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not a broker URL: {ws_url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[: -len("/ws")]
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def derived_member_name() -> str:
    """A lasting name when none was given: git's user.name, else `$USER@host` (never a process id)."""
    try:
        git_name = subprocess.run(["git", "config", "--get", "user.name"], capture_output=True, text=True,
                                  timeout=3).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git_name = ""
    if git_name:
        return git_name[:100]
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or os.environ.get("USERNAME") or "me"
    return f"{user}@{socket.gethostname().split('.')[0]}"[:100]


def session_name(config: Config, mesh: MeshEntry | None = None) -> str:
    """What this session calls itself in `peers` (hello displayName): `CLAUDEMESH_SESSION_NAME` (or the reference's
    `CLAUDEMESH_DISPLAY_NAME`), else the member's lasting name in that mesh. The member name is separate."""
    for variable in ("CLAUDEMESH_SESSION_NAME", "CLAUDEMESH_DISPLAY_NAME"):
        value = os.environ.get(variable, "").strip()
        if value:
            return value
    return (mesh.member_name if mesh else None) or config.display_name or derived_member_name()


# --- file helpers -----------------------------------------------------------------------------------------


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError as exc:  # a dir we do not own: keep going, doctor reports it
        raise ConfigError(f"cannot make {path} private: {exc}") from exc


def atomic_write_text(path: Path, text: str, mode: int = 0o600) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write to a temp file in the same dir (created with `mode`), fsync, then rename over `path`.

    Readers see either the old or the new file, never a partial one, and the secret never exists on disk
    with looser permissions than `mode`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


# --- model ------------------------------------------------------------------------------------------------


@dataclass
class MeshEntry:
    """One joined mesh. Unknown keys from other clients survive in `extra`."""

    mesh_id: str
    member_id: str
    slug: str
    name: str
    pubkey: str
    secret_key: str
    broker_url: str
    joined_at: str
    root_key: str | None = None
    invite_version: int | None = None
    member_name: str | None = None  # the member's lasting name in this mesh (set at join, changed by `rename`)
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = {
        "meshId": "mesh_id",
        "memberId": "member_id",
        "slug": "slug",
        "name": "name",
        "pubkey": "pubkey",
        "secretKey": "secret_key",
        "brokerUrl": "broker_url",
        "joinedAt": "joined_at",
        "rootKey": "root_key",
        "inviteVersion": "invite_version",
        "memberName": "member_name",
    }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeshEntry:
        if not isinstance(data, dict):
            raise ConfigError("a mesh entry is not an object")
        values = {attr: data.get(key) for key, attr in cls.KEYS.items()}
        for required in ("mesh_id", "member_id", "slug", "pubkey", "secret_key", "broker_url"):
            if not isinstance(values[required], str) or not values[required]:
                raise ConfigError(f"mesh entry {data.get('slug')!r} lacks {required}")
        values["name"] = values["name"] or values["slug"]
        values["joined_at"] = values["joined_at"] or ""
        extra = {key: value for key, value in data.items() if key not in cls.KEYS}
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        data = {key: getattr(self, attr) for key, attr in self.KEYS.items()}
        data = {key: value for key, value in data.items() if value is not None}
        return {**self.extra, **data}

    @property
    def keypair(self) -> SigningKeypair:
        return SigningKeypair(public_hex=self.pubkey, secret_hex=self.secret_key)

    def key_problems(self) -> list[str]:
        """Why this entry cannot sign a hello (empty when it can)."""
        problems = []
        if not HEX64.fullmatch(self.pubkey) or self.pubkey != self.pubkey.lower():
            problems.append("pubkey is not 64 lowercase hex chars")
        if not HEX128.fullmatch(self.secret_key) or self.secret_key != self.secret_key.lower():
            problems.append("secretKey is not 128 lowercase hex chars")
        if not problems:
            try:
                derived = SigningKeypair.from_secret_hex(self.secret_key).public_hex
            except CryptoError:
                derived = ""
            if derived != self.pubkey:
                problems.append("secretKey does not match pubkey")
        return problems


@dataclass
class Config:
    meshes: list[MeshEntry] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # the optional top-level keys

    def find(self, slug: str) -> MeshEntry | None:
        return next((mesh for mesh in self.meshes if mesh.slug == slug), None)

    def find_by_id(self, mesh_id: str) -> MeshEntry | None:
        return next((mesh for mesh in self.meshes if mesh.mesh_id == mesh_id), None)

    def upsert(self, entry: MeshEntry) -> None:
        """Replace an entry with the same slug or mesh id (client.md §3.4, §3.5)."""
        self.meshes = [m for m in self.meshes if m.slug != entry.slug and m.mesh_id != entry.mesh_id]
        self.meshes.append(entry)

    def remove(self, slug: str) -> MeshEntry | None:
        entry = self.find(slug)
        if entry is not None:
            self.meshes = [m for m in self.meshes if m.slug != slug]
        return entry

    @property
    def display_name(self) -> str | None:
        value = self.settings.get("displayName")
        return value if isinstance(value, str) and value else None


class ConfigStore:
    """Reads and writes `config.json` in one directory."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else config_dir()

    @property
    def path(self) -> Path:
        return self.directory / CONFIG_FILE

    def load(self) -> Config:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Config()
        except OSError as exc:
            raise ConfigError(f"Failed to load {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Failed to load {self.path}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("meshes"), list):
            return Config()
        meshes = [MeshEntry.from_json(item) for item in data["meshes"]]
        settings = {key: data[key] for key in TOP_LEVEL_KEYS if key in data}
        return Config(meshes=meshes, settings=settings)

    def save(self, config: Config) -> None:
        ensure_private_dir(self.directory)
        data: dict[str, Any] = {"version": 1, "meshes": [mesh.to_json() for mesh in config.meshes]}
        data.update({key: config.settings[key] for key in TOP_LEVEL_KEYS if key in config.settings})
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def permission_problems(self) -> list[str]:
        problems = []
        if self.directory.exists():
            mode = self.directory.stat().st_mode & 0o777
            if mode & 0o077:
                problems.append(f"{self.directory} is {oct(mode)} — expected 0o700")
        if self.path.exists():
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                problems.append(f"{self.path} is {oct(mode)} — expected 0o600")
        return problems
