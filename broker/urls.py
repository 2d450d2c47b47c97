from django.urls import path

from broker import views, webhook_views

urlpatterns = [
    path("health", views.health, name="broker-health"),
    path("health/ready", views.health_ready, name="broker-ready"),
    path("metrics", views.metrics_view, name="broker-metrics"),
    path("hook/set-status", views.hook_set_status, name="broker-hook-set-status"),
    path("hook/<str:mesh_id>/<str:secret>", webhook_views.inbound_webhook, name="broker-webhook"),
    path("meshes/<str:mesh_id>/traffic/", views.mesh_traffic_page, name="mesh_traffic"),
]
