from django.urls import re_path

from broker.consumer import BrokerConsumer

# Exactly /ws; a query string is accepted and ignored (protocol.md §1.1 [PY]).
websocket_urlpatterns: list = [re_path(r"^ws$", BrokerConsumer.as_asgi())]
