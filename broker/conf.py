"""Broker settings with their defaults in one place (read at call time so tests can override them)."""

from __future__ import annotations

from django.conf import settings

HELLO_MAX_SKEW_MS = 60_000
HOOK_FRESH_WINDOW_SECONDS = 30
PENDING_HOOK_TTL_SECONDS = 10
VERSION = "0.1.0"
WORKERS_GROUP = "broker.workers"


def get(name: str, default):
    return getattr(settings, name, default)


def prepared_statements() -> bool:
    return get("BROKER_PREPARED_STATEMENTS", True)


def max_message_bytes() -> int:
    return get("BROKER_MAX_MESSAGE_BYTES", 65536)


def max_connections_per_mesh() -> int:
    return get("BROKER_MAX_CONNECTIONS_PER_MESH", 100)


def max_unanswered_sends() -> int:
    """Sends one socket may have waiting for their ack before the broker stops reading it."""
    return get("BROKER_MAX_UNANSWERED_SENDS", 256)


def batch_share_per_connection() -> int:
    """The most sends of one connection in one batch: a flood cannot fill a batch and delay everyone else."""
    return get("BROKER_BATCH_SHARE_PER_CONNECTION", 250)


def max_queued_per_recipient() -> int:
    """Undelivered messages one member may have waiting for another; past it a send is refused."""
    return get("BROKER_MAX_QUEUED_PER_RECIPIENT", 1000)


def outbox_max_frames() -> int:
    """Frames one socket may have waiting to be written before it is closed as a slow consumer."""
    return get("BROKER_OUTBOX_MAX_FRAMES", 10_000)


def outbox_max_bytes() -> int:
    return get("BROKER_OUTBOX_MAX_BYTES", 8 * 1024 * 1024)


def max_connections_per_member() -> int:
    """Live connections one member may hold, all workers: always below the mesh cap, so no member can fill it."""
    return max(1, min(get("BROKER_MAX_CONNECTIONS_PER_MEMBER", 10), max_connections_per_mesh() - 1))


def max_connections_per_ip() -> int:
    return get("BROKER_MAX_CONNECTIONS_PER_IP", 20000)


def send_rate() -> tuple[int, int]:
    return get("BROKER_SEND_RATE_BURST", 2000), get("BROKER_SEND_RATE_PER_MIN", 60000)


def retention_days() -> int:
    return get("BROKER_MESSAGE_RETENTION_DAYS", 7)


def lease_seconds() -> int:
    return get("BROKER_PRESENCE_LEASE_SECONDS", 45)


def heartbeat_seconds() -> float:
    return get("BROKER_HEARTBEAT_SECONDS", 10)


def worker_beat_seconds() -> float:
    return get("BROKER_WORKER_BEAT_SECONDS", 1.0)


def worker_dead_seconds() -> float:
    """A worker whose beat is older than this is dead: its presences are retired."""
    return get("BROKER_WORKER_DEAD_SECONDS", 5.0)


def sweep_seconds() -> float:
    return get("BROKER_SWEEP_SECONDS", 2.0)


def hello_timeout_seconds() -> float:
    return get("BROKER_HELLO_TIMEOUT_SECONDS", 30)


def hook_rate_per_minute() -> int:
    return get("BROKER_HOOK_RATE_LIMIT_PER_MIN", 30)


def batch_seconds() -> float:
    return get("BROKER_BATCH_MS", 3.0) / 1000.0


def retransmit_seconds() -> float:
    return get("BROKER_RETRANSMIT_SECONDS", 10.0)


def switch_interval_seconds() -> float | None:
    """CPython's thread switch interval for a broker process (None, 0 or less: leave Python's 5 ms default)."""
    value = get("BROKER_SWITCH_INTERVAL_MS", None)
    return float(value) / 1000.0 if value and value > 0 else None


def scheduler_poll_seconds() -> float:
    """How often a worker looks for scheduled messages made on other workers (its own wake it at once)."""
    return float(get("BROKER_SCHEDULER_POLL_SECONDS", 5.0))
