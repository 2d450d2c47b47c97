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
from protocol.identity_link import replace_fields
from protocol.invites import InviteError, v1_verify

HTTP_TIMEOUT = 10.0
CLAIM_TIMEOUT = 15.0
USER_AGENT = "claudemesh-py/0.1"


class EnrollError(Exception):
    """Joining failed. `kind` picks the exit code: invalid (bad link), not_found, network, rejected."""

    def __init__(self, message: str, kind: str = "rejected", hint: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.hint = hint


ASK_FOR_A_NEW_ONE = "ask whoever sent it for a new invite"
# The server's reasons, in the words the invite's web page uses.
REFUSALS = {
    "invite_expired": ("this invite has expired", ASK_FOR_A_NEW_ONE),
    "invite_exhausted": ("this invite has no uses left", ASK_FOR_A_NEW_ONE),
    "invite_revoked": ("this invite was revoked", ASK_FOR_A_NEW_ONE),
    "invite_not_found": ("this invite does not exist on that server", "check the link, or ask for a new one"),
    "mesh_not_found": ("the mesh of this invite no longer exists (archived or deleted)", None),
    "invite_bad_signature": ("this invite is damaged (its signature does not verify)", "copy the whole link again"),
    "already_linked": ("your account already has a CLI key in this mesh",
                       "use that machine's claudemesh, or ask an admin to remove the old identity first"),
    "already_member": ("this machine's key is already another member of this mesh", None),
    "bad_replaces": ("the server did not accept this machine's proof of its earlier identity", None),
    "expired": ("this invite has expired", ASK_FOR_A_NEW_ONE),
    "exhausted": ("this invite has no uses left", ASK_FOR_A_NEW_ONE),
    "revoked": ("this invite was revoked", ASK_FOR_A_NEW_ONE),
}
NO_SERVER_HINT = ("use the whole link (https://<your server>/i/<code>), or say which server: "
                  "export CLAUDEMESH_BROKER_URL=wss://<your server>/ws")


def refused(reason: str, fallback: str) -> EnrollError:
    words = REFUSALS.get(reason)
    if words is None:
        return EnrollError(fallback)
    return EnrollError(words[0], kind="not_found" if reason.endswith("not_found") else "rejected", hint=words[1])


@dataclass(frozen=True)
class JoinResult:
    entry: MeshEntry
    already_member: bool
    invite_version: int
    linked: bool = False  # a personal link bound this key to a dashboard account's member
    role: str | None = None
    retired_member_id: str | None = None  # this machine's earlier identity in the mesh, now retired


def join(link: str, *, config: Config, display_name: str) -> JoinResult:
    """Enroll with whatever `link` is and add the mesh to `config` (the caller saves it)."""
    try:
        parsed = parse_invite(link)
    except ValueError as exc:
        raise EnrollError(str(exc), kind="invalid") from exc
    if isinstance(parsed, ShortCode) and parsed.origin is None:
        parsed = ShortCode(code=parsed.code, origin=app_origin_for_bare_code(config))
    if isinstance(parsed, ShortCode) and env_flag("CLAUDEMESH_INVITE_V2"):
        result = claim_v2(parsed, display_name=display_name)
    else:
        token = parsed.token if isinstance(parsed, V1Token) else resolve_short_code(parsed)
        result = join_v1(token, display_name=display_name, config=config)
    config.upsert(result.entry)
    return result


# --- v1 ---------------------------------------------------------------------------------------------------


def app_origin_for_bare_code(config: Config | None = None) -> str:
    """Where a bare code is looked up: `CLAUDEMESH_API_URL`, else your server (docs/peer.md), never a guess."""
    explicit = os.environ.get("CLAUDEMESH_API_URL", "").strip().rstrip("/")
    if explicit:
        return explicit
    broker = default_broker_url(config)
    if broker is None:
        raise EnrollError("a bare invite code needs to know your server, and none is configured", kind="invalid",
                          hint=NO_SERVER_HINT)
    return http_origin(broker)


def resolve_short_code(short: ShortCode) -> str:
    origin = short.origin or app_origin_for_bare_code()
    url = f"{origin}/api/public/invite-code/{quote(short.code, safe='')}"
    try:
        response = httpx.get(url, headers=_headers(), timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach {origin} to resolve invite code: {exc}", kind="network") from exc
    body = _json_or_empty(response)
    if response.status_code == 404 or body.get("found") is False:
        raise EnrollError(f"invite code {short.code!r} not found on {origin} (unknown or revoked)", kind="not_found",
                          hint=ASK_FOR_A_NEW_ONE)
    token = body.get("token")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        raise EnrollError(f"invite code lookup failed ({response.status_code}): {_reason(body, response)}")
    return token


def join_v1(token: str, *, display_name: str, config: Config | None = None) -> JoinResult:
    try:
        payload = v1_verify(token)
    except InviteError as exc:
        if exc.code == "expired":
            raise refused("expired", str(exc)) from exc
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
    earlier = config.find_by_id(payload["mesh_id"]) if config is not None else None
    if earlier is not None and not earlier.key_problems():
        # Proof that this machine is that earlier member: a personal CLI link then retires it (one person, one
        # member). Ordinary invites ignore it.
        body["replaces"] = replace_fields(mesh_id=payload["mesh_id"], old_member_id=earlier.member_id,
                                          old_secret_hex=earlier.secret_key, new_pubkey=identity.public_hex)
    try:
        response = httpx.post(f"{origin}/join", json=body, headers=_headers(), timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach broker at {origin}: {exc}", kind="network") from exc
    data = _json_or_empty(response)
    member_id = data.get("memberId")
    if not (200 <= response.status_code < 300) or data.get("ok") is not True or not isinstance(member_id, str):
        reason = _reason(data, response)
        raise refused(reason, f"broker /join failed ({response.status_code}): {reason}")
    entry = MeshEntry(
        mesh_id=payload["mesh_id"],
        member_id=member_id,
        slug=payload["mesh_slug"],
        name=payload["mesh_slug"],
        pubkey=identity.public_hex,
        secret_key=identity.secret_hex,
        broker_url=payload["broker_url"],
        joined_at=iso_ms(datetime.now(UTC)),
        member_name=str(data.get("displayName") or display_name),
    )
    retired = data.get("retiredMemberId")
    return JoinResult(entry=entry, already_member=bool(data.get("alreadyMember")), invite_version=1,
                      linked=data.get("linked") is True, role=data.get("role") if isinstance(data.get("role"), str) else None,
                      retired_member_id=retired if isinstance(retired, str) else None)


# --- v2 ---------------------------------------------------------------------------------------------------


def claim_url(short: ShortCode) -> str:
    template = os.environ.get("CLAUDEMESH_CLAIM_URL", "").strip()
    if template:
        return template.replace("{code}", quote(short.code, safe=""))
    base = os.environ.get("CLAUDEMESH_BROKER_HTTP", "").strip().rstrip("/")
    if not base:
        base = short.origin or app_origin_for_bare_code()
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
        raise EnrollError(f"invite not found: {reason}", kind="not_found", hint=ASK_FOR_A_NEW_ONE)
    if response.status_code == 410:
        raise refused(reason, f"invite no longer usable: {reason}")
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
        member_name=display_name,
    )
    return JoinResult(entry=entry, already_member=False, invite_version=2)


def _broker_url_for_claim(claim: str) -> str:
    """An explicit CLAUDEMESH_BROKER_URL wins; otherwise the broker that answered the claim."""
    explicit = default_broker_url()  # no config: only the environment counts here
    if explicit:
        return explicit
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
