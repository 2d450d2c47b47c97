"""One ASGI application: Django for HTTP (except `POST /upload`, streamed by its own ASGI app), the broker
consumer for `/ws`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudemesh.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from broker.routing import websocket_urlpatterns  # noqa: E402
from meshes.api.files import upload_app  # noqa: E402


async def http_application(scope, receive, send):
    if scope["path"] == "/upload":
        return await upload_app(scope, receive, send)
    return await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
