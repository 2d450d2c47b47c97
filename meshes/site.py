"""The server's public addresses, as invites and pages announce them (invite links, the broker URL signed into
v1 tokens, the CLI download).

`APP_URL` / `BROKER_WS_URL` set in the environment win. Unset, the address is the one the person minting is
using (the request's host, or the WebSocket's), else what the run command bound (`manage.py serve --host/--port`
sets the default). A request that arrives over loopback while the server listens on the network does not
override the network address: an invite minted from `localhost` must still reach the other machines.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

_request_origin: ContextVar[str | None] = ContextVar("claudemesh_request_origin", default=None)
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def app_url() -> str:
    if settings.APP_URL_EXPLICIT:
        return settings.APP_URL
    origin = _request_origin.get()
    if origin and not (is_loopback(origin) and not is_loopback(settings.APP_URL)):
        return origin
    return settings.APP_URL


def broker_ws_url() -> str:
    if settings.BROKER_WS_URL_EXPLICIT:
        return settings.BROKER_WS_URL
    parts = urlsplit(app_url())
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def only_this_machine() -> bool:
    """True while invites would point peers on other machines at this machine's loopback (they cannot join)."""
    return is_loopback(app_url()) or is_loopback(broker_ws_url())


def remember_origin(origin: str | None):
    """For a WebSocket request (the broker's `invite_create`): the origin its Host header names."""
    return _request_origin.set(origin)


def forget_origin(token) -> None:
    _request_origin.reset(token)


class SiteOriginMiddleware(MiddlewareMixin):
    """Remembers the origin of the request being served (its Host passed ALLOWED_HOSTS already)."""

    def process_request(self, request):
        request._site_origin_token = _request_origin.set(f"{request.scheme}://{request.get_host()}")

    def process_response(self, request, response):
        token = getattr(request, "_site_origin_token", None)
        if token is not None:
            try:
                _request_origin.reset(token)
            except ValueError:  # set in another context (a thread hop): it dies with that context
                pass
        return response
