"""`manage.py serve`: the one server command (`make run`, the several-workers recipe, the tests' server
processes). uvicorn with its sans-I/O websockets protocol, because every close code and reason of
protocol.md §2.10 must reach the client (daphne's autobahn refuses to send 1008, so refused hellos stayed
open), a frame over MAX_MESSAGE_BYTES closes 1009 and invalid UTF-8 closes 1007. On SIGTERM the broker
closes every socket with 1001 `shutting down` and ends its presence before uvicorn's own shutdown."""

from __future__ import annotations

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from broker import conf
from broker.worker import shutdown_current_worker


class BrokerServer(uvicorn.Server):
    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:  # no new sockets while the old ones are told to go
            server.close()
        await shutdown_current_worker()
        await super().shutdown(sockets=sockets)


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
