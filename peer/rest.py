"""A client of the REST API for bots and CI (docs/api.md): an API key as the bearer, JSON in and out, the
server-sent-events stream as an iterator that resumes where it stopped. Envelopes are built by the caller
(`peer.Mesh.seal`): the server only ever sees ciphertext."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx


class ApiError(Exception):
    """A refused call: `status` and the server's stable `code`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code


class RestClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/api/v1", timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
        self.last_event_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs) -> Any:
        response = self._http.request(method, path, **kwargs)
        body = response.json() if response.content else {}
        if response.status_code >= 400:
            raise ApiError(response.status_code, body.get("code", ""), body.get("message", response.reason_phrase))
        return body

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/me")

    def peers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/peers")["peers"]

    def members(self) -> list[dict[str, Any]]:
        return self._call("GET", "/members")["members"]

    def topics(self) -> list[dict[str, Any]]:
        return self._call("GET", "/topics")["topics"]

    def topic_history(self, name: str, *, limit: int = 50, before: str | None = None) -> dict[str, Any]:
        params = {"limit": limit, **({"before": before} if before else {})}
        return self._call("GET", f"/topics/{name}/messages", params=params)

    def post_message(self, envelope: dict[str, str], *, topic: str | None = None, priority: str = "next") -> dict:
        """`envelope`: `{targetSpec?, nonce, ciphertext}` (from `Mesh.seal`); `topic` posts to that topic."""
        body = {**envelope, "priority": priority}
        path = f"/topics/{topic}/messages" if topic else "/messages"
        return self._call("POST", path, json=body)

    def inbox(self, *, after: str | None = None, limit: int = 50) -> dict[str, Any]:
        params = {"limit": limit, **({"after": after} if after else {})}
        return self._call("GET", "/messages", params=params)

    def ack(self, message_ids: list[str]) -> int:
        return self._call("POST", "/messages/ack", json={"ids": message_ids})["acked"]

    def stream(self, *, reconnect_seconds: float = 2.0) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) forever, reconnecting with Last-Event-ID after a dropped connection or a restart."""
        while True:
            headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
            try:
                with self._http.stream("GET", "/stream", headers=headers, timeout=None) as response:
                    if response.status_code >= 400:
                        body = json.loads(response.read() or b"{}")
                        raise ApiError(response.status_code, body.get("code", ""), body.get("message", ""))
                    yield from self._events(response)
            except httpx.HTTPError:
                time.sleep(reconnect_seconds)

    def _events(self, response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    self.last_event_id = fields.get("id", self.last_event_id)
                    yield fields.get("event", "message"), json.loads(fields["data"])
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
