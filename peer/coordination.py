"""Shared state, memory and tasks from this peer (protocol.md §5.4, §5.5, §5.8), sealed with the mesh keyring
(peer/sealing.py) so the broker stores and orders them without reading them. Against a broker without the keyring
(the reference) values, memories and titles go as plaintext, as its own clients send them, and say so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from peer.connection_terms import RequestFailed
from peer.sealing import RecordSealer
from protocol.records import RecordKind, words

RECALL_RESULTS = 20


class Coordination:
    """`request(frame, reply_type)` is the connection's; `sealed()` says whether the broker takes sealed records."""

    def __init__(self, *, request: Callable[..., Awaitable[dict[str, Any]]], fire: Callable[..., Awaitable[None]],
                 sealer: RecordSealer, sealed: Callable[[], bool]):
        self._request = request
        self._fire = fire  # a frame the reference broker answers nothing to
        self.sealer = sealer
        self._sealed = sealed

    # --- shared state -----------------------------------------------------------------------------------

    async def state_set(self, key: str, value: Any, *, expected_version: int | None = None) -> dict[str, Any]:
        """{key, version, encrypted}. With `expected_version` (0: the key must not exist yet) a concurrent change
        is refused with `version_conflict` instead of being overwritten."""
        frame: dict[str, Any] = {"type": "set_state", "key": key}
        if not self._sealed():  # the reference broker: plaintext, no reply, no compare-and-set
            if expected_version is not None:
                raise RequestFailed("unsupported", "this broker has no compare-and-set for shared state")
            await self._fire({**frame, "value": value})
            return {"key": key, "version": None, "encrypted": False}
        frame["confirm"] = True
        if expected_version is not None:
            frame["expectedVersion"] = expected_version
        frame["sealed"], _ = await self.sealer.seal(value, kind=RecordKind.STATE, name=key)
        reply = await self._request(frame, "state_stored")
        return {"key": key, "version": reply.get("version"), "encrypted": True}

    async def state_get(self, key: str) -> dict[str, Any]:
        """{key, value, set, updatedBy, updatedAt, version, encrypted, failure}."""
        reply = await self._request({"type": "get_state", "key": key}, "state_result")
        return await self._state_entry(reply)

    async def state_list(self) -> list[dict[str, Any]]:
        reply = await self._request({"type": "list_state"}, "state_list")
        return [await self._state_entry(entry) for entry in reply.get("entries") or [] if isinstance(entry, dict)]

    async def _state_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        key = str(entry.get("key") or "")
        item = {
            "key": key, "value": entry.get("value"), "set": bool(entry.get("updatedAt")),
            "updatedBy": entry.get("updatedBy") or None, "updatedAt": entry.get("updatedAt") or None,
            "version": entry.get("version"), "encrypted": bool(entry.get("encrypted")), "failure": None,
        }
        if entry.get("sealed") is not None:
            opened = await self.sealer.open(entry["sealed"], kind=RecordKind.STATE, name=key)
            item["value"], item["failure"] = opened.value, opened.failure
        return item

    async def state_change(self, frame: dict[str, Any]) -> dict[str, Any]:
        """A pushed `state_change`, opened."""
        item = await self._state_entry(frame)
        item["set"] = True
        return item

    # --- memory -----------------------------------------------------------------------------------------

    async def remember(self, content: str, *, tags: list[str] | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "remember"}
        if self._sealed():
            text = " ".join([content, *(tags or [])])
            frame["sealed"], frame["tokens"] = await self.sealer.seal(
                {"content": content, "tags": tags or []}, kind=RecordKind.MEMORY, name=None, words_of=text
            )
        else:
            frame["content"] = content
            if tags:
                frame["tags"] = tags
        reply = await self._request(frame, "memory_stored")
        return {"id": reply.get("id"), "content": content, "tags": tags or [], "encrypted": self._sealed()}

    async def recall(self, query: str, *, include_plaintext: bool = False) -> list[dict[str, Any]]:
        """Memories matching `query`, best first: the broker matches blind tokens, this client opens the hits and
        ranks them by the query words they hold. `include_plaintext` also searches reference clients' plaintext
        memories, which sends the query itself to the broker."""
        frame: dict[str, Any] = {"type": "recall"}
        if self._sealed():
            frame["tokens"] = await self.sealer.query_tokens(query)
            if include_plaintext:
                frame["query"] = query
        else:
            frame["query"] = query
        if not frame.get("tokens") and not frame.get("query"):
            return []
        reply = await self._request(frame, "memory_results")
        wanted = words(query)
        found = []
        for raw in reply.get("memories") or []:
            if isinstance(raw, dict):
                found.append(await self._memory(raw, wanted))
        found.sort(key=lambda m: -m["score"])
        return found[:RECALL_RESULTS]

    async def _memory(self, raw: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        memory = {
            "id": raw.get("id"), "content": raw.get("content"), "tags": raw.get("tags") or [],
            "rememberedBy": raw.get("rememberedBy"), "rememberedAt": raw.get("rememberedAt"),
            "encrypted": bool(raw.get("encrypted")), "failure": None,
        }
        if raw.get("sealed") is not None:
            opened = await self.sealer.open(raw["sealed"], kind=RecordKind.MEMORY, name=None)
            value = opened.value if isinstance(opened.value, dict) else {}
            memory.update(content=value.get("content"), tags=value.get("tags") or [], failure=opened.failure)
        have = words(" ".join([memory["content"] or "", *memory["tags"]]))
        memory["score"] = sum(have.count(word) for word in set(wanted)) + len(set(wanted) & set(have)) * 10
        return memory

    async def forget(self, memory_id: str) -> dict[str, Any]:
        """{id, forgotten}: whether a memory was forgotten (None from the reference broker, which does not say)."""
        frame = {"type": "forget", "memoryId": memory_id}
        if not self._sealed():
            await self._fire(frame)
            return {"id": memory_id, "forgotten": None}
        reply = await self._request(frame, "ack")
        return {"id": memory_id, "forgotten": bool(reply.get("forgotten"))}

    # --- tasks ------------------------------------------------------------------------------------------

    async def task_create(self, title: str, *, assignee: str | None = None, priority: str | None = None,
                          tags: list[str] | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "create_task"}
        if self._sealed():
            frame["sealed"], _ = await self.sealer.seal(title, kind=RecordKind.TASK, name=None)
        else:
            frame["title"] = title
        frame.update({k: v for k, v in (("assignee", assignee), ("priority", priority), ("tags", tags)) if v})
        reply = await self._request(frame, "task_created")
        return await self._task(reply.get("task") or {"id": reply.get("id"), "title": title})

    async def task_claim(self, task_id: str) -> dict[str, Any]:
        reply = await self._request({"type": "claim_task", "taskId": task_id}, "task_list")
        return await self._changed(reply, task_id)

    async def task_complete(self, task_id: str, result: str | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "complete_task", "taskId": task_id}
        if result and self._sealed():
            frame["resultSealed"], _ = await self.sealer.seal(result, kind=RecordKind.TASK_RESULT, name=task_id)
        elif result:
            frame["result"] = result
        return await self._changed(await self._request(frame, "task_list"), task_id)

    async def task_list(self, *, status: str | None = None, assignee: str | None = None) -> list[dict[str, Any]]:
        frame: dict[str, Any] = {"type": "list_tasks"}
        frame.update({k: v for k, v in (("status", status), ("assignee", assignee)) if v})
        reply = await self._request(frame, "task_list")
        return [await self._task(t) for t in reply.get("tasks") or [] if isinstance(t, dict)]

    async def _changed(self, reply: dict[str, Any], task_id: str) -> dict[str, Any]:
        task = reply.get("task") or next((t for t in reply.get("tasks") or [] if t.get("id") == task_id), {})
        return await self._task(task)

    async def _task(self, raw: dict[str, Any]) -> dict[str, Any]:
        task = dict(raw)
        task.pop("sealed", None)
        task.pop("resultSealed", None)
        task["failure"] = None
        if raw.get("sealed") is not None:
            opened = await self.sealer.open(raw["sealed"], kind=RecordKind.TASK, name=None)
            task["title"], task["failure"] = opened.value, opened.failure
        if raw.get("resultSealed") is not None:
            opened = await self.sealer.open(raw["resultSealed"], kind=RecordKind.TASK_RESULT, name=raw.get("id"))
            task["result"] = opened.value
            task["failure"] = task["failure"] or opened.failure
        return task

    # --- overview ---------------------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        return await self._request({"type": "mesh_info"}, "mesh_info_result")
