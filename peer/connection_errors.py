"""How a broker connection's failures read: in words for people, and which ones no retry within one command fixes."""

from __future__ import annotations

import errno
import re
import socket

import websockets


def unreachable(exc: BaseException) -> bool:
    """Nothing listens there, or the name does not resolve: retrying within one command will not help."""
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return True
    if not isinstance(exc, OSError):
        return False
    # Several addresses (localhost: ::1 and 127.0.0.1) fail as one OSError listing each errno.
    codes = {int(code) for code in re.findall(r"\[Errno (\d+)\]", str(exc))} or {exc.errno or 0}
    return codes <= {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, websockets.InvalidStatus):
        return f"broker refused the WebSocket (HTTP {exc.response.status_code})"
    if isinstance(exc, OSError):
        return f"cannot connect: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    return f"{type(exc).__name__}: {exc}"
