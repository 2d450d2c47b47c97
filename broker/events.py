"""React to committed mesh changes (meshes.events): close the sockets of revoked members and archived meshes.

Listeners run synchronously after commit, maybe in a worker thread: hop onto the node's loop for the local
sockets; the node also tells the other workers. The periodic sweep is the safety net if either is lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from broker import wire
from broker.node import current_node
from meshes.events import MeshEvent

logger = logging.getLogger(__name__)


def on_mesh_event(event: MeshEvent) -> None:
    if event.kind == "member_revoked":
        member_id = event.data.get("memberId")
        error = wire.error("revoked", "you have been removed from this mesh")
        kwargs = dict(mesh_id=event.mesh_id, member_id=member_id, error=error, code=4002, reason="banned")
    elif event.kind == "mesh_archived":
        error = wire.error("mesh_archived", "this mesh is archived")
        kwargs = dict(mesh_id=event.mesh_id, member_id=None, error=error, code=4002, reason="mesh_archived")
    else:
        return
    node = current_node()
    if node is None or node.loop.is_closed():
        _tell_other_workers(kwargs)
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is node.loop:
        node.loop.create_task(node.evict(**kwargs))
    else:
        # A fresh context: the caller's thread carries asgiref's executor markers, which would make the
        # eviction's own database calls look like a re-entrant deadlock.
        node.loop.call_soon_threadsafe(lambda: node.loop.create_task(node.evict(**kwargs)), context=contextvars.Context())


def _tell_other_workers(kwargs: dict) -> None:
    """No broker node in this process (e.g. a command or an HTTP-only worker): ask the workers directly.
    If that fails too, every worker's sweep notices revoked members and archived meshes within seconds."""
    from asgiref.sync import async_to_sync
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from broker import conf

    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return
    message = {
        "type": "evict",
        "origin": "",
        "mesh": kwargs["mesh_id"],
        "member": kwargs["member_id"],
        "error": kwargs["error"],
        "code": kwargs["code"],
        "reason": kwargs["reason"],
    }
    try:
        async_to_sync(layer.group_send)(conf.NODES_GROUP, message)
    except Exception:
        logger.warning("could not notify broker workers of %s", kwargs, exc_info=True)
