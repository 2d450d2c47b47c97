from django.contrib import admin
from django.urls import include, path

from claudemesh import cli_download

urlpatterns = [
    path("cli/", cli_download.cli_page, name="cli_install"),
    path("cli/<str:filename>", cli_download.cli_wheel, name="cli_wheel"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("broker.urls")),
    path("", include("meshes.urls")),
]
