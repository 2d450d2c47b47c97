from django.urls import path

from broker import rest, views, webhook_views

urlpatterns = [
    path("health", views.health, name="broker-health"),
    path("health/ready", views.health_ready, name="broker-ready"),
    path("metrics", views.metrics_view, name="broker-metrics"),
    path("hook/set-status", views.hook_set_status, name="broker-hook-set-status"),
    path("hook/<str:mesh_id>/<str:secret>", webhook_views.inbound_webhook, name="broker-webhook"),
    # The REST routes that send, read the inbox or stream (the rest of /api/v1 is meshes.api.urls).
    path("api/v1/messages", rest.messages, name="api-messages"),
    path("api/v1/messages/ack", rest.messages_ack, name="api-messages-ack"),
    path("api/v1/topics/<str:name>/messages", rest.topic_messages, name="api-topic-messages"),
    path("api/v1/stream", rest.stream, name="api-stream"),
    path("meshes/<str:mesh_id>/traffic/", views.mesh_traffic_page, name="mesh_traffic"),
]
