"""Exit codes and the two output modes (client.md §1.1): indented human lines, or one JSON document."""

from __future__ import annotations

import json
import sys
from typing import Any

SUCCESS = 0
FAILURE = 1  # generic failure (the reference's USER_CANCELLED code doubles as it)
AUTH_FAILED = 2
INVALID_ARGS = 3
NETWORK_ERROR = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
INTERNAL_ERROR = 8
INTERRUPTED_BY_SIGINT = 130  # 128 + the signal's number, as shells report it
INTERRUPTED_BY_SIGTERM = 143


class CliError(Exception):
    """A failure to report: message on stderr (and a JSON error document in --json mode), then `exit_code`."""

    def __init__(self, message: str, exit_code: int = FAILURE, *, hint: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint
        self.code = code


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def json(self, document: Any) -> None:
        print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)

    def result(self, document: Any, text: str) -> None:
        """The one-line outcome of a command: `document` in --json mode, `✔ text` otherwise."""
        if self.as_json:
            self.json(document)
        else:
            self.ok(text)

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(f"  {text}" if text else "", flush=True)

    def ok(self, text: str) -> None:
        self.line(f"✔ {text}")

    def warn(self, text: str) -> None:
        self.line(f"⚠ {text}")

    def section(self, title: str) -> None:
        self.line()
        self.line(f"— {title}")
        self.line()

    def error(self, error: CliError) -> None:
        print(f"  ✘ {error.message}", file=sys.stderr, flush=True)
        if error.hint:
            print(f"    → {error.hint}", file=sys.stderr, flush=True)
        if self.as_json:
            document = {"ok": False, "error": error.message}
            if error.code:
                document["code"] = error.code
            self.json(document)
