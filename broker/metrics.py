"""Prometheus metrics (protocol.md §6.1 names plus delivery latency). Per worker process: scrape each worker's
port (docs/broker.md); the default registry is never shared between processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

connections_total = Counter("broker_connections", "WebSocket upgrades accepted")
connections_rejected = Counter("broker_connections_rejected", "Rejected connections", ["reason"])
slow_consumers = Counter("broker_slow_consumers", "Sockets closed because their outbox overflowed")
connections_active = Gauge("broker_connections_active", "Authenticated connections on this worker")
messages_routed = Counter("broker_messages_routed", "Messages pushed to sockets", ["priority"])
messages_in = Counter("broker_messages_in", "send frames accepted (durably queued)")
messages_rejected = Counter("broker_messages_rejected", "Rejected sends", ["reason"])
messages_dropped_by_grant = Counter("broker_messages_dropped_by_grant", "Silently dropped by grants", ["cap"])
legacy_auth_hits = Counter("broker_legacy_auth_hits", "Legacy auth uses (always 0 here)")
queue_depth = Gauge("broker_queue_depth", "Undelivered delivery rows (refreshed by the sweep)")
ttl_sweeps = Counter("broker_ttl_sweeps", "Presence lease sweeps that closed ghost rows")
hook_requests = Counter("broker_hook_requests", "POST /hook/set-status requests")
hook_rate_limited = Counter("broker_hook_requests_rate_limited", "Rate-limited hook posts")
db_healthy = Gauge("broker_db_healthy", "1 when the last database check passed")
doorbells_dropped = Counter("broker_doorbells_dropped", "Channel-layer doorbells that could not be sent")
delivery_latency = Histogram(
    "broker_delivery_latency_seconds",
    "From the send's commit to the push written on the recipient's socket",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
webhook_requests = Counter("broker_webhook_requests", "Inbound webhook POSTs by outcome", ["outcome"])
