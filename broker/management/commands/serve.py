"""`manage.py serve`: the one server command (`make run`, the several-workers recipe, the tests' server
processes). uvicorn with its sans-I/O websockets protocol, because every close code and reason of
protocol.md §2.10 must reach the client (daphne's autobahn refuses to send 1008, so refused hellos stayed
open), a frame over MAX_MESSAGE_BYTES closes 1009 and invalid UTF-8 closes 1007. On SIGTERM the broker
closes every socket with 1001 `shutting down` and ends its presence before uvicorn's own shutdown."""

from __future__ import annotations

import socket

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from broker import conf
from broker.worker import get_worker, shutdown_current_worker


class BrokerServer(uvicorn.Server):
    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        await get_worker().ensure_started()  # scheduled messages fire before anyone connects

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:  # no new sockets while the old ones are told to go
            server.close()
        await shutdown_current_worker()
        await super().shutdown(sockets=sockets)


def announce_bound_address(host: str, port: int) -> None:
    """Unless APP_URL / BROKER_WS_URL are set, invites announce the address this server was started on: a host
    bound to every interface is announced by this machine's network address (meshes/site.py)."""
    if settings.APP_URL_EXPLICIT:
        return
    name = host
    if host in ("0.0.0.0", "::", ""):
        name = network_address()
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, name, socket.gethostname(), socket.getfqdn()]
    elif host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, host]
    url = f"http://{f'[{name}]' if ':' in name else name}:{port}"
    settings.APP_URL = url
    if not settings.BROKER_WS_URL_EXPLICIT:
        settings.BROKER_WS_URL = url.replace("http", "ws", 1) + "/ws"


def network_address() -> str:
    """The address other machines reach this one by (the interface of the default route; nothing is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, only selects the outgoing interface
            return probe.getsockname()[0]
    except OSError:
        return socket.gethostname()


class Command(BaseCommand):
    help = "Serve the web app, the API and the /ws broker (uvicorn)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--ping-interval", type=float, default=30.0, help="keepalive ping every N s (spec: 30)")
        parser.add_argument("--ping-timeout", type=float, default=60.0, help="close a socket whose pong is N s late")
        parser.add_argument(
            "--proxy-headers", action="store_true", help="behind a proxy: take client addresses from X-Forwarded-For"
        )
        parser.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies trusted for those headers")
        parser.add_argument("--log-level", default="warning")

    def handle(self, *args, **options) -> None:
        announce_bound_address(options["host"], options["port"])
        config = uvicorn.Config(
            "claudemesh.asgi:application",
            host=options["host"],
            port=options["port"],
            ws="websockets-sansio",
            ws_max_size=conf.max_message_bytes(),
            ws_ping_interval=options["ping_interval"],
            ws_ping_timeout=options["ping_timeout"],
            ws_per_message_deflate=False,  # ciphertext does not compress; deflate would only cost CPU
            lifespan="off",
            proxy_headers=options["proxy_headers"],
            forwarded_allow_ips=options["forwarded_allow_ips"],
            access_log=False,
            log_level=options["log_level"],
            timeout_graceful_shutdown=int(getattr(settings, "BROKER_SHUTDOWN_SECONDS", 15)),
        )
        BrokerServer(config).run()
