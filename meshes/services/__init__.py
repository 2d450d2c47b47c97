"""Every write to meshes, members, invites, API keys and topics, one module per entity. Views, the JSON API, the admin
and the broker call these (as `services.<name>`) and hold no rules of their own."""

from meshes.services.api_keys import (
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
)
from meshes.services.invites import (
    invite_accept_for_user,
    invite_claim_v2,
    invite_create,
    invite_create_cli_link,
    invite_join_v1,
    invite_revoke,
    invite_token_for_code,
)
from meshes.services.meshes import (
    member_remove,
    member_rename,
    member_set_role,
    mesh_archive,
    mesh_create,
    mesh_rename,
)
from meshes.services.topics import (
    topic_create,
    topic_join,
    topic_leave,
    topic_mark_read,
    topic_subscribe_general,
    topic_subscribe_general_bulk,
)

__all__ = [
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "invite_accept_for_user",
    "invite_claim_v2",
    "invite_create",
    "invite_create_cli_link",
    "invite_join_v1",
    "invite_revoke",
    "invite_token_for_code",
    "member_remove",
    "member_rename",
    "member_set_role",
    "mesh_archive",
    "mesh_create",
    "mesh_rename",
    "topic_create",
    "topic_join",
    "topic_leave",
    "topic_mark_read",
    "topic_subscribe_general",
    "topic_subscribe_general_bulk",
]
