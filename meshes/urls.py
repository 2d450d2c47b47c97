from django.urls import include, path

urlpatterns: list = [
    # JSON API and public/broker HTTP routes (meshes/api); dashboard routes follow.
    path("api/v1/", include("meshes.api.urls")),
    path("", include("meshes.api.public_urls")),
]
