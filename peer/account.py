"""The account a terminal is signed in as (`claudemesh login`): `auth.json` next to the config (0600), and the
HTTP calls made with its session token (protocol.md §6.6–6.7, client.md Appendix B). The token is a bearer: it
is never printed, and `logout` revokes it on the server before deleting it here."""

from __future__ import annotations

import json
import platform
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from peer.config import ConfigError, atomic_write_text, config_dir, default_broker_url, http_origin

AUTH_FILE = "auth.json"
HTTP_TIMEOUT = 15.0


class AccountError(Exception):
    """An account call failed: `status` is the HTTP status (0: no answer), `code` the server's stable code."""

    def __init__(self, message: str, *, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Auth:
    session_token: str
    user: dict[str, Any]
    server: str  # the HTTP origin that issued the token: every account call goes there
    token_source: str = "device-code"
    stored_at: str = ""

    @property
    def name(self) -> str:
        return str(self.user.get("display_name") or self.user.get("email") or self.user.get("id") or "?")


class AuthStore:
    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory else config_dir()

    @property
    def path(self) -> Path:
        return self.directory / AUTH_FILE

    def load(self) -> Auth | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} is not readable JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("session_token"), str):
            return None
        user = data.get("user") if isinstance(data.get("user"), dict) else {}
        return Auth(session_token=data["session_token"], user=user, server=str(data.get("server") or ""),
                    token_source=str(data.get("token_source") or "device-code"), stored_at=str(data.get("stored_at") or ""))

    def save(self, auth: Auth) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"session_token": auth.session_token, "user": auth.user, "server": auth.server,
                "token_source": auth.token_source, "stored_at": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write_text(self.path, json.dumps(data, indent=2), mode=0o600)

    def delete(self) -> bool:
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False


def server_origin(explicit: str | None, config=None) -> str:
    """`--server`, else `CLAUDEMESH_BROKER_URL`, else the one server the joined meshes use."""
    url = (explicit or "").strip() or default_broker_url(config)
    if not url:
        raise AccountError("which server? pass --server https://your-server (or set CLAUDEMESH_BROKER_URL)")
    if url.startswith(("http://", "https://")):
        return url.rstrip("/")
    return http_origin(url)


def machine() -> dict[str, str]:
    """What the approving person is shown about this terminal."""
    return {"hostname": socket.gethostname(), "platform": platform.system().lower(), "arch": platform.machine()}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def call(method: str, url: str, *, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    """One JSON request; a non-2xx answer raises AccountError with the server's message and code."""
    headers = {"Accept": "application/json", "User-Agent": "claudemesh-py"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise AccountError(f"cannot reach {url}: {exc}") from None
    data = _body(response)
    if response.status_code >= 400:
        message = data.get("error") or data.get("message") if isinstance(data, dict) else None
        code = data.get("code", "") if isinstance(data, dict) else ""
        raise AccountError(f"{message or response.reason_phrase} (HTTP {response.status_code})",
                           status=response.status_code, code=code)
    return data


class Account:
    """The signed-in account's calls."""

    def __init__(self, auth: Auth):
        self.auth = auth

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return call(method, f"{self.auth.server}{path}", token=self.auth.session_token, body=body)

    def profile(self) -> dict[str, Any]:
        return self._call("GET", "/api/my/profile")

    def meshes(self) -> list[dict[str, Any]]:
        return self._call("GET", "/cli/meshes").get("meshes", [])

    def create_mesh(self, name: str, pubkey: str) -> dict[str, Any]:
        return self._call("POST", "/cli/mesh/create", {"name": name, "pubkey": pubkey})

    def invite(self, slug: str, *, role: str | None, max_uses: int | None, expires_days: int | None,
               email: str | None) -> dict[str, Any]:
        body = {"role": role, "max_uses": max_uses, "expires_in_days": expires_days, "email": email}
        return self._call("POST", f"/cli/mesh/{slug}/invite", {k: v for k, v in body.items() if v is not None})

    def rename_mesh(self, slug: str, name: str) -> dict[str, Any]:
        return self._call("PATCH", f"/api/my/meshes/{slug}", {"name": name})

    def delete_mesh(self, slug: str) -> dict[str, Any]:
        return self._call("DELETE", f"/cli/mesh/{slug}")

    def revoke(self) -> bool:
        return bool(self._call("POST", "/cli/session/revoke", {"token": self.auth.session_token}).get("found"))
