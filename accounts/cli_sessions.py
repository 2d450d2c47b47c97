"""Signing in from a terminal (protocol.md §6.7 with its [PY] fixes): a device code the CLI polls with, approved
or denied by the person signed in to the dashboard, then a session token the CLI sends as a bearer.

The token has the reference's JWT shape (`sub`, `email`, `name`, `type`, `jti`, `iat`, `exp`, HS256), so the
reference CLI can read its pasted form; the server trusts only the row its SHA-256 finds: revoking the row or
passing its expiry ends it at once. Neither the token nor the device code is stored in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import CliSession, DeviceCode, DeviceCodeStatus, User
from protocol.encoding import b64url_encode
from protocol.ids import CODE_ALPHABET

DEVICE_CODE_SECONDS = 300
POLL_INTERVAL_SECONDS = 1.5
SESSION_ID_PREFIX = "clm_sess_"
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
MAX_CLIENT_FIELD = 64
MAX_TOKEN_CHARS = 4096


class CliAuthError(Exception):
    """A refused sign-in step: `code` is stable, `status` the HTTP status it answers with."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _client_field(value: Any, limit: int = MAX_CLIENT_FIELD) -> str:
    """What a CLI says about its machine: shown to the person approving, so printable and short."""
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:limit].strip()


def user_display_name(user: User) -> str:
    return (user.get_full_name() or user.email or user.get_username()).strip()


def user_summary(user: User) -> dict[str, str]:
    """`{id, display_name, email}`: how the CLI and `/api/my/profile` name an account."""
    return {"id": str(user.pk), "display_name": user_display_name(user), "email": user.email}


# --- device codes -----------------------------------------------------------------------------------------


def device_code_start(*, hostname: Any = None, platform: Any = None, arch: Any = None, ip: str = "") -> tuple[DeviceCode, str]:
    """A new pending code and the secret device code the CLI polls with (returned only here)."""
    device_code = secrets.token_urlsafe(24)
    row = DeviceCode.objects.create(
        device_code_digest=_digest(device_code),
        user_code=f"{_code(4)}-{_code(4)}",
        session_id=SESSION_ID_PREFIX + secrets.token_urlsafe(24),
        hostname=_client_field(hostname, 255),
        platform=_client_field(platform),
        arch=_client_field(arch),
        ip_address=ip[:64],
        expires_at=timezone.now() + timedelta(seconds=DEVICE_CODE_SECONDS),
    )
    return row, device_code


def device_code_pending(*, session_ref: Any) -> DeviceCode | None:
    """The code a browser names by its session id (or, as the reference falls back to, its user code)."""
    if not isinstance(session_ref, str) or not session_ref.strip() or len(session_ref) > 64:
        return None
    ref = session_ref.strip()
    return DeviceCode.objects.filter(Q(session_id=ref) | Q(user_code=ref.upper())).order_by("-created_at").first()


@transaction.atomic
def device_code_decide(*, user: User, session_ref: Any, approve: bool) -> DeviceCode:
    """The signed-in person approves or denies. Only a pending, unexpired code can be decided, once."""
    if user is None or not user.is_authenticated or not user.is_active:
        raise CliAuthError("sign_in_required", "sign in to approve a terminal", 401)
    found = device_code_pending(session_ref=session_ref)
    if found is None:
        raise CliAuthError("code_not_found", "Code not found or expired", 404)
    row = DeviceCode.objects.select_for_update().get(pk=found.pk)
    if row.status != DeviceCodeStatus.PENDING:
        raise CliAuthError("code_already_used", f"this sign-in was already {row.status}", 409)
    if row.is_expired():
        raise CliAuthError("code_expired", "Code expired: run `claudemesh login` again", 410)
    row.status = DeviceCodeStatus.APPROVED if approve else DeviceCodeStatus.DENIED
    row.user = user if approve else None
    row.decided_at = timezone.now()
    row.save(update_fields=["status", "user", "decided_at"])
    return row


@dataclass(frozen=True)
class PollOutcome:
    status: str  # pending | approved | denied | consumed | expired
    token: str | None = None
    user: User | None = None


@transaction.atomic
def device_code_poll(*, device_code: Any) -> PollOutcome:
    """What the CLI learns: the token exactly once, when the code was approved; the session is minted then, so
    no token ever waits in the database."""
    if not isinstance(device_code, str) or not device_code or len(device_code) > 128:
        return PollOutcome("expired")
    row = DeviceCode.objects.select_for_update().filter(device_code_digest=_digest(device_code)).first()
    if row is None:
        return PollOutcome("expired")
    if row.status == DeviceCodeStatus.PENDING:
        return PollOutcome("expired" if row.is_expired() else "pending")
    if row.status != DeviceCodeStatus.APPROVED:
        return PollOutcome(row.status)
    row.status = DeviceCodeStatus.CONSUMED
    row.save(update_fields=["status"])
    _, token = cli_session_mint(user=row.user, kind="device-code", hostname=row.hostname, platform=row.platform,
                                arch=row.arch, ip=row.ip_address)
    return PollOutcome("approved", token=token, user=row.user)


# --- sessions ---------------------------------------------------------------------------------------------


def _token_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"claudemesh/cli-session/v1", hashlib.sha256).digest()


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return b64url_encode(json.dumps(value, separators=(",", ":")).encode())

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(_token_key(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(signature)}"


def cli_session_mint(*, user: User, kind: str, hostname: str = "", platform: str = "", arch: str = "",
                     ip: str = "") -> tuple[CliSession, str]:
    """A new session and its token (returned only here)."""
    now = timezone.now()
    expires_at = now + timedelta(days=settings.CLI_SESSION_DAYS)
    token = _jwt({
        "sub": str(user.pk), "email": user.email, "name": user_display_name(user),
        "type": "cli-session" if kind == "device-code" else "cli-token",
        "jti": secrets.token_urlsafe(16), "iat": int(now.timestamp()), "exp": int(expires_at.timestamp()),
    })
    session = CliSession.objects.create(
        user=user, token_hash=_digest(token), kind=kind, hostname=hostname[:255], platform=platform[:64],
        arch=arch[:64], ip_address=ip[:64], expires_at=expires_at, last_seen_at=now,
    )
    return session, token


def cli_session_authenticate(*, token: Any) -> CliSession | None:
    """A bearer token → its live session (active account), or None. Bumps last_seen_at at most once a minute."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    session = CliSession.objects.select_related("user").filter(token_hash=_digest(token)).first()
    now = timezone.now()
    if session is None or session.status(now) != "active" or not session.user.is_active:
        return None
    if session.last_seen_at is None or session.last_seen_at < now - LAST_SEEN_RESOLUTION:
        CliSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        session.last_seen_at = now
    return session


def cli_session_revoke(*, user: User, session_id: Any) -> CliSession:
    """The dashboard's revoke: only the account's own sessions. Idempotent."""
    session = CliSession.objects.filter(pk=session_id if isinstance(session_id, str) else "", user=user).first()
    if session is None:
        raise CliAuthError("not_found", "no such terminal session", 404)
    if session.revoked_at is None:
        session.revoked_at = timezone.now()
        session.save(update_fields=["revoked_at"])
    return session


def cli_session_revoke_token(*, token: Any) -> bool:
    """`claudemesh logout`: the token revokes itself. True when a live session was found."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return False
    return bool(CliSession.objects.filter(token_hash=_digest(token), revoked_at=None).update(revoked_at=timezone.now()))


def cli_sessions_for_user(*, user: User):
    return CliSession.objects.filter(user=user).order_by("-created_at")
