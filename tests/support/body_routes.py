"""Every HTTP route that reads a JSON body, ready to be posted to: (path, bearer secret or None)."""

from __future__ import annotations

from meshes import services


def json_body_routes(owner_actor, *, invite_uses: int) -> list[tuple[str, str | None]]:
    invite = services.invite_create(actor=owner_actor, max_uses=invite_uses)
    _, secret = services.api_key_create(actor=owner_actor, label="admin", capabilities=["admin"])
    return [
        ("/api/v1/invites", secret),
        ("/api/v1/api-keys", secret),
        ("/api/v1/api-keys/revoke", secret),
        ("/join", None),
        (f"/invites/{invite.code}/claim", None),
        (f"/api/public/invites/{invite.code}/claim", None),
        ("/hook/set-status", None),
    ]
