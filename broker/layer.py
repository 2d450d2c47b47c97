"""The channel layer between workers: each worker's address on it, and the five messages workers exchange,
each with one constructor and one parser. The layer is only a doorbell: any message may be dropped
(channels-redis capacity or expiry, Redis down), so sending never raises and the sweeps make up for a loss.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from broker import conf, metrics

logger = logging.getLogger(__name__)

DeliverItem = tuple[str, str, str, str]  # (presence id, message id, priority, push frame text)


@dataclass(frozen=True)
class Deliver:
    """Pushes of rows pre-claimed for connections on the receiving worker."""

    kind: ClassVar[str] = "deliver"
    items: list[DeliverItem]

    def to_layer(self) -> dict[str, Any]:
        return {"type": self.kind, "items": self.items}  # tuples travel as arrays: no per-item copy

    @classmethod
    def from_layer(cls, message: dict[str, Any]) -> Deliver:
        return cls(message.get("items", []))


@dataclass(frozen=True)
class Doorbell:
    """These connections have pending rows: drain."""

    kind: ClassVar[str] = "doorbell"
    presences: list[str]

    def to_layer(self) -> dict[str, Any]:
        return {"type": self.kind, "presences": list(self.presences)}

    @classmethod
    def from_layer(cls, message: dict[str, Any]) -> Doorbell:
        return cls(list(message.get("presences", ())))


@dataclass(frozen=True)
class Kick:
    """Close one connection (replaced by a newer hello of the same session)."""

    kind: ClassVar[str] = "kick"
    presence: str
    code: int = 1000
    reason: str = ""

    def to_layer(self) -> dict[str, Any]:
        return {"type": self.kind, "presence": self.presence, "code": self.code, "reason": self.reason}

    @classmethod
    def from_layer(cls, message: dict[str, Any]) -> Kick:
        return cls(message.get("presence", ""), message.get("code", 1000), message.get("reason", ""))


@dataclass(frozen=True)
class MeshBroadcast:
    """A system event for every connection of a mesh (or only those of `only_members`), to every worker but its
    origin."""

    kind: ClassVar[str] = "mesh_event"
    origin: str
    mesh: str
    frame: dict[str, Any]
    exclude_member: str | None = None
    exclude_presence: str | None = None
    only_members: tuple[str, ...] | None = None

    def to_layer(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "origin": self.origin,
            "mesh": self.mesh,
            "frame": self.frame,
            "exclude_member": self.exclude_member,
            "exclude_presence": self.exclude_presence,
            "only_members": list(self.only_members) if self.only_members is not None else None,
        }

    @classmethod
    def from_layer(cls, message: dict[str, Any]) -> MeshBroadcast:
        only = message.get("only_members")
        return cls(
            message.get("origin", ""),
            message["mesh"],
            message["frame"],
            message.get("exclude_member"),
            message.get("exclude_presence"),
            tuple(only) if isinstance(only, list) else None,
        )


@dataclass(frozen=True)
class Evict:
    """Close a revoked member's sockets (member None: every socket of an archived mesh), after an error frame."""

    kind: ClassVar[str] = "evict"
    origin: str
    mesh: str
    member: str | None
    error: dict[str, Any]
    code: int
    reason: str

    def to_layer(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "origin": self.origin,
            "mesh": self.mesh,
            "member": self.member,
            "error": self.error,
            "code": self.code,
            "reason": self.reason,
        }

    @classmethod
    def from_layer(cls, message: dict[str, Any]) -> Evict:
        return cls(
            message.get("origin", ""),
            message["mesh"],
            message.get("member"),
            message["error"],
            message["code"],
            message["reason"],
        )


LayerMessage = Deliver | Doorbell | Kick | MeshBroadcast | Evict
_PARSERS: dict[str, Callable[[dict[str, Any]], LayerMessage]] = {
    cls.kind: cls.from_layer for cls in (Deliver, Doorbell, Kick, MeshBroadcast, Evict)
}


def parse(message: dict[str, Any]) -> LayerMessage | None:
    """The message, or None for a kind this worker does not know (a newer worker's)."""
    parser = _PARSERS.get(message.get("type"))
    return parser(message) if parser is not None else None


def shared_layer():
    """The channel layer when it connects workers (Redis); None for the in-memory one: this process is the broker."""
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return None
    return layer


class WorkerLayer:
    """This worker's address on the layer and its sends; every failure is logged and counted, never raised."""

    def __init__(self) -> None:
        self._layer = shared_layer()
        self.remote = self._layer is not None
        self.worker_id = f"local.{uuid.uuid4().hex}"

    async def open(self) -> None:
        """Take this worker's channel on a shared layer (call only when `remote`)."""
        self.worker_id = await routable_channel(self._layer)
        await self.join_group()

    async def join_group(self) -> None:
        """Group membership expires in channels-redis: called again at every heartbeat."""
        if not self.remote:
            return
        try:
            await self._layer.group_add(conf.WORKERS_GROUP, self.worker_id)
        except Exception:
            logger.warning("could not join the workers group; will retry at the next heartbeat", exc_info=True)

    async def send(self, worker_id: str, message: LayerMessage) -> None:
        if not self.remote:
            return
        try:
            await self._layer.send(worker_id, message.to_layer())
        except Exception:  # ChannelFull, Redis down: the sweep makes up for it
            metrics.doorbells_dropped.inc()
            logger.debug("channel-layer send to %s dropped", worker_id, exc_info=True)

    async def send_all(self, message: LayerMessage) -> None:
        if not self.remote:
            return
        try:
            await self._layer.group_send(conf.WORKERS_GROUP, message.to_layer())
        except Exception:
            metrics.doorbells_dropped.inc()
            logger.warning("channel-layer group send dropped", exc_info=True)

    async def listen(self, on_message: Callable[[LayerMessage], Awaitable[None]]) -> None:
        """Receive forever (a task): a failed receive is retried every second and logged once per outage, a failed
        handler logged."""
        failing = False
        while True:
            try:
                raw = await self._layer.receive(self.worker_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    logger.warning("channel-layer receive failed; retrying every second", exc_info=True)
                failing = True
                await asyncio.sleep(1)
                continue
            if failing:
                logger.warning("channel-layer receive works again")
                failing = False
            try:
                message = parse(raw)
                if message is not None:
                    await on_message(message)
            except Exception:
                logger.exception("handling a channel-layer message failed")


async def routable_channel(layer) -> str:
    """A channel name that a sharded channels-redis layer routes to the shard its owner reads. Its `send` picks the
    shard by hashing the whole name while `receive` (and `group_send`) hash the part up to "!": with several hosts
    a direct send reached the wrong shard for about half the names. A name whose two hashes agree is routed right
    by both; with one host every name is."""
    hashed = getattr(layer, "consistent_hash", None)
    while True:
        name = await layer.new_channel("broker")
        if hashed is None or hashed(name) == hashed(layer.non_local_name(name)):
            return name


def evict_everywhere_sync(message: Evict) -> None:
    """From a process with no broker worker (a command, an HTTP-only process): ask the workers directly.
    If that fails too, every worker's sweep notices revoked members and archived meshes within seconds."""
    layer = shared_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(conf.WORKERS_GROUP, message.to_layer())
    except Exception:
        logger.warning("could not notify broker workers of %s", message, exc_info=True)


def send_sync(worker_id: str, message: LayerMessage) -> None:
    """One message to one worker from a process with no broker worker; a loss is the sweeps' to make up."""
    layer = shared_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(worker_id, message.to_layer())
    except Exception:
        logger.warning("could not reach broker worker %s", worker_id, exc_info=True)
