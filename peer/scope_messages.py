"""Reading a `CMS1` scope message (docs/encryption.md): the topic and broadcast messages encrypted with the mesh
keyring. The author must be a member, be who the broker says sent it, and have written it for the scope the
broker routed it to; a message whose key has not arrived yet is kept, waiting."""

from __future__ import annotations

from dataclasses import dataclass

from peer.inbox import WAITING
from peer.keyring import ScopeKeys
from protocol.encoding import EncodingError, b64_decode
from protocol.keyring import KeyringError, ScopeEnvelope, open_scope, parse_scope, scope_for_target

TOPIC_SCOPE_PREFIX = "topic:"


@dataclass(frozen=True)
class ScopeReading:
    kind: str  # "topic" (a topic's scope) or "group" (the mesh or a group)
    plaintext: str | None
    failure: str | None
    scope: str


def scope_envelope(ciphertext: str) -> ScopeEnvelope | None:
    """The envelope when `ciphertext` is a CMS1 message (None for any other shape, broken ones included)."""
    try:
        return parse_scope(b64_decode(ciphertext))
    except (EncodingError, KeyringError):
        return None


async def read_scope_message(
    envelope: ScopeEnvelope,
    *,
    keys: ScopeKeys,
    nonce: str,
    target_spec: str | None,
    author_pubkey: str | None,
    roster: set[str],
) -> ScopeReading:
    """`author_pubkey` is the member key of the push's `senderMemberId` (None when the broker did not say)."""
    kind = "topic" if envelope.scope.startswith(TOPIC_SCOPE_PREFIX) else "group"

    def failed(reason: str) -> ScopeReading:
        return ScopeReading(kind, None, reason, envelope.scope)

    if target_spec and scope_for_target(target_spec) not in (envelope.scope, None):
        return failed(f"message was written for {envelope.scope} but delivered as {target_spec}")
    if envelope.author not in roster:
        return failed("written by a key that is not a member of this mesh")
    if author_pubkey and author_pubkey.lower() != envelope.author:
        return failed("the broker's sender is not the message's author")
    try:
        body_nonce = b64_decode(nonce)
    except EncodingError:
        return failed("nonce is not base64")
    key = await keys.for_reading(envelope.scope, envelope.epoch, roster)
    if key is None:
        return failed(WAITING)
    try:
        return ScopeReading(kind, open_scope(envelope, mesh_id=keys.mesh_id, nonce=body_nonce, key=key), None, envelope.scope)
    except KeyringError as exc:
        return failed(str(exc))

