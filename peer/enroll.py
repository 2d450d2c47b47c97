"""Joining a mesh: verify the invite, generate a fresh identity, enroll it, persist it (client.md §3).

v1 is the default for every link shape: a short link or code is resolved to the v1 token first. The v2 claim
(`POST /invites/<code>/claim`) is used for short codes only when `CLAUDEMESH_INVITE_V2=1`; it also sends the
new ed25519 `peer_pubkey` (docs/wire-extensions.md) so the claimed member can say hello.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx
import nacl.public

from peer.config import Config, ConfigError, MeshEntry, default_broker_url, env_flag, http_origin
from peer.links import ShortCode, V1Token, parse_invite
from protocol.crypto import CryptoError, SigningKeypair, seal_open
from protocol.encoding import EncodingError, b64url_decode, b64url_encode, iso_ms
from protocol.invites import InviteError, v1_verify

HTTP_TIMEOUT = 10.0
CLAIM_TIMEOUT = 15.0
USER_AGENT = "claudemesh-py/0.1"


class EnrollError(Exception):
    """Joining failed. `kind` picks the exit code: invalid (bad link), not_found, network, rejected."""

    def __init__(self, message: str, kind: str = "rejected"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class JoinResult:
    entry: MeshEntry
    already_member: bool
    invite_version: int


def join(link: str, *, config: Config, display_name: str) -> JoinResult:
    """Enroll with whatever `link` is and add the mesh to `config` (the caller saves it)."""
    try:
        parsed = parse_invite(link)
    except ValueError as exc:
        raise EnrollError(str(exc), kind="invalid") from exc
    if isinstance(parsed, ShortCode) and env_flag("CLAUDEMESH_INVITE_V2"):
        result = claim_v2(parsed, display_name=display_name)
    else:
        token = parsed.token if isinstance(parsed, V1Token) else resolve_short_code(parsed)
        result = join_v1(token, display_name=display_name)
    config.upsert(result.entry)
    return result


# --- v1 ---------------------------------------------------------------------------------------------------


def app_origin_for_bare_code() -> str:
    """Where a bare code is looked up: the web app, which the self-hosted server serves with the broker."""
    explicit = os.environ.get("CLAUDEMESH_API_URL", "").strip().rstrip("/")
    return explicit or http_origin(default_broker_url())


def resolve_short_code(short: ShortCode) -> str:
    origin = short.origin or app_origin_for_bare_code()
    url = f"{origin}/api/public/invite-code/{quote(short.code, safe='')}"
    try:
        response = httpx.get(url, headers=_headers(), timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach {origin} to resolve invite code: {exc}", kind="network") from exc
    body = _json_or_empty(response)
    if response.status_code == 404 or body.get("found") is False:
        raise EnrollError(f"invite code {short.code!r} not found (unknown, revoked or used up)", kind="not_found")
    token = body.get("token")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        raise EnrollError(f"invite code lookup failed ({response.status_code}): {_reason(body, response)}")
    return token


def join_v1(token: str, *, display_name: str) -> JoinResult:
    try:
        payload = v1_verify(token)
    except InviteError as exc:
        raise EnrollError(str(exc), kind="invalid") from exc
    try:
        origin = http_origin(payload["broker_url"])
    except ConfigError as exc:
        raise EnrollError(f"invite names an unusable broker: {exc}", kind="invalid") from exc
    identity = SigningKeypair.generate()
    body = {
        "invite_token": token,
        "invite_payload": payload,
        "peer_pubkey": identity.public_hex,
        "display_name": display_name,
    }
    try:
        response = httpx.post(f"{origin}/join", json=body, headers=_headers(), timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach broker at {origin}: {exc}", kind="network") from exc
    data = _json_or_empty(response)
    member_id = data.get("memberId")
    if not (200 <= response.status_code < 300) or data.get("ok") is not True or not isinstance(member_id, str):
        raise EnrollError(f"broker /join failed ({response.status_code}): {_reason(data, response)}")
    entry = MeshEntry(
        mesh_id=payload["mesh_id"],
        member_id=member_id,
        slug=payload["mesh_slug"],
        name=payload["mesh_slug"],
        pubkey=identity.public_hex,
        secret_key=identity.secret_hex,
        broker_url=payload["broker_url"],
        joined_at=iso_ms(datetime.now(UTC)),
    )
    return JoinResult(entry=entry, already_member=bool(data.get("alreadyMember")), invite_version=1)


# --- v2 ---------------------------------------------------------------------------------------------------


def claim_url(short: ShortCode) -> str:
    template = os.environ.get("CLAUDEMESH_CLAIM_URL", "").strip()
    if template:
        return template.replace("{code}", quote(short.code, safe=""))
    base = os.environ.get("CLAUDEMESH_BROKER_HTTP", "").strip().rstrip("/")
    if not base:
        base = short.origin or http_origin(default_broker_url())
    return f"{base}/invites/{quote(short.code, safe='')}/claim"


def claim_v2(short: ShortCode, *, display_name: str) -> JoinResult:
    recipient = nacl.public.PrivateKey.generate()
    identity = SigningKeypair.generate()
    url = claim_url(short)
    body = {
        "recipient_x25519_pubkey": b64url_encode(bytes(recipient.public_key)),
        "peer_pubkey": identity.public_hex,
        "display_name": display_name,
    }
    try:
        response = httpx.post(url, json=body, headers=_headers(), timeout=CLAIM_TIMEOUT)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach {url}: {exc}", kind="network") from exc
    data = _json_or_empty(response)
    reason = _reason(data, response)
    if response.status_code == 400:
        raise EnrollError(f"invite claim rejected: {reason}")
    if response.status_code == 404:
        raise EnrollError(f"invite not found: {reason}", kind="not_found")
    if response.status_code == 410:
        raise EnrollError(f"invite no longer usable: {reason}")
    if response.status_code != 200:
        raise EnrollError(f"invite claim failed ({response.status_code}): {reason}")
    required = ("sealed_root_key", "mesh_id", "member_id", "owner_pubkey", "canonical_v2")
    missing = [key for key in required if not isinstance(data.get(key), str) or not data.get(key)]
    if missing:
        raise EnrollError(f"invite claim response lacks {', '.join(missing)}")
    try:
        root_key = seal_open(b64url_decode(data["sealed_root_key"]), recipient)
    except (CryptoError, EncodingError) as exc:
        raise EnrollError(f"sealed root key does not open: {exc}") from exc
    if len(root_key) != 32:
        raise EnrollError("sealed root key is not 32 bytes")
    slug = data.get("mesh_slug") if isinstance(data.get("mesh_slug"), str) else f"mesh-{data['mesh_id'][:8]}"
    broker_url = data.get("broker_url") if isinstance(data.get("broker_url"), str) else _broker_url_for_claim(url)
    entry = MeshEntry(
        mesh_id=data["mesh_id"],
        member_id=data["member_id"],
        slug=slug,
        name=slug,
        pubkey=identity.public_hex,
        secret_key=identity.secret_hex,
        broker_url=broker_url,
        joined_at=iso_ms(datetime.now(UTC)),
        root_key=b64url_encode(root_key),
        invite_version=2,
    )
    return JoinResult(entry=entry, already_member=False, invite_version=2)


def _broker_url_for_claim(claim: str) -> str:
    """An explicit CLAUDEMESH_BROKER_URL wins; otherwise the broker that answered the claim."""
    if os.environ.get("CLAUDEMESH_BROKER_URL", "").strip():
        return default_broker_url()
    parts = urlsplit(claim)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/ws"


# --- helpers ----------------------------------------------------------------------------------------------


def _headers() -> dict[str, str]:
    return {"Accept": "application/json", "User-Agent": USER_AGENT}


def _json_or_empty(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _reason(body: dict, response: httpx.Response) -> str:
    for key in ("error", "code", "message", "detail"):
        if isinstance(body.get(key), str) and body[key]:
            return body[key]
    return response.reason_phrase or f"HTTP {response.status_code}"
