"""The meshes app's tables: meshes, members, invites, API keys and the audit log (`core`), topics (`topics`), and
shared state, memories, tasks and scheduled messages (`coordination`), inbound webhooks (`webhooks`) and shared files (`files`)."""

from meshes.models.coordination import Memory, MemoryToken, ScheduledMessage, StateEntry, Task, TaskStatus
from meshes.models.core import (
    MANAGER_ROLES,
    ApiKey,
    ApiKeyCapability,
    AuditEvent,
    Invite,
    Member,
    Mesh,
    Role,
    token_digest,
)
from meshes.models.files import FileAccess, FileKey, FileStatus, SharedFile
from meshes.models.topics import Topic, TopicMember, TopicMessage, TopicRole, TopicVisibility
from meshes.models.webhooks import Webhook

__all__ = [
    "MANAGER_ROLES",
    "ApiKey",
    "ApiKeyCapability",
    "AuditEvent",
    "FileAccess",
    "FileKey",
    "FileStatus",
    "Invite",
    "Member",
    "Memory",
    "MemoryToken",
    "Mesh",
    "Role",
    "ScheduledMessage",
    "SharedFile",
    "StateEntry",
    "Task",
    "TaskStatus",
    "Topic",
    "TopicMember",
    "TopicMessage",
    "TopicRole",
    "TopicVisibility",
    "Webhook",
    "token_digest",
]
