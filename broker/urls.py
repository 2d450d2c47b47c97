from django.urls import path

from broker import views

urlpatterns = [
    path("health", views.health, name="broker-health"),
    path("health/ready", views.health_ready, name="broker-ready"),
    path("metrics", views.metrics_view, name="broker-metrics"),
    path("hook/set-status", views.hook_set_status, name="broker-hook-set-status"),
    path("meshes/<str:mesh_id>/traffic/", views.mesh_traffic_page, name="mesh_traffic"),
]
