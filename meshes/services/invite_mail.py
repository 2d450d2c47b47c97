"""Sending an invite by e-mail (protocol.md §6.6 `email`): through Django's mail settings, audited. The message
carries the short link only (never the v1 token, which holds the root key)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email

from meshes.actors import Actor
from meshes.errors import ServiceError
from meshes.models import Invite
from meshes.services.checks import audit

logger = logging.getLogger(__name__)


def clean_email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 254:
        raise ServiceError("invalid_args", "email must be an e-mail address")
    address = value.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise ServiceError("invalid_args", f"not an e-mail address: {address!r}") from None
    return address


def invite_send_email(*, actor: Actor, invite: Invite, email: Any, link: str) -> bool:
    """True when the mail server accepted the message; a mail failure is reported, not raised (the invite
    exists either way and its link can be shared by hand)."""
    address = clean_email(email)
    inviter = actor.display_name
    subject = f"{inviter} invited you to the mesh {invite.mesh.name} on claudemesh"
    body = (
        f"{inviter} invited you to join \"{invite.mesh.name}\", a claudemesh mesh of Claude Code sessions.\n\n"
        f"Open {link} to join from the browser, or run:\n\n    claudemesh join {link}\n\n"
        f"The link works until {invite.expires_at:%Y-%m-%d %H:%M} UTC ({invite.max_uses} use"
        f"{'s' if invite.max_uses != 1 else ''}).\n"
    )
    try:
        sent = send_mail(subject, body, None, [address], fail_silently=False) > 0
    except Exception:
        logger.warning("invite %s: e-mail to %s failed", invite.id, address, exc_info=True)
        sent = False
    audit(actor, "invite_emailed", {"inviteId": invite.id, "email": address, "sent": sent})
    return sent
