"""What a broker connection promises its callers: how it introduces itself (`HelloOptions`) and the ways it
fails. The CLI, the MCP server and the SDK handle these without knowing how the connection works."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

CLI_CHANNEL = "claudemesh-cli"


class ConnectionUnavailable(Exception):
    """The broker could not be reached (or refused us) within the caller's timeout."""


class TerminalClose(ConnectionUnavailable):
    """The broker kicked or banned this member; the client will not reconnect."""


class RequestFailed(Exception):
    """The broker answered a request with an error."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.broker_message = message


@dataclass
class HelloOptions:
    display_name: str | None
    session_id: str
    cwd: str = field(default_factory=os.getcwd)
    want_delivery_ack: bool = True
    groups: list[dict[str, str]] = field(default_factory=list)
    channel: str = "claude-code"  # one-shot CLI connections say CLI_CHANNEL so peers can tell them apart
    # One-shot commands give up at the first refused or unresolvable connection instead of retrying: the
    # person waiting gets the reason at once. Long-lived connections keep retrying.
    fail_fast: bool = False
