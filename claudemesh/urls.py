from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from claudemesh import cli_download

urlpatterns = [
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("", include("meshes.api.cli_urls")),
    path("cli/", cli_download.cli_page, name="cli_install"),
    path("cli/<str:filename>", cli_download.cli_wheel, name="cli_wheel"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("broker.urls")),
    path("", include("meshes.urls")),
]
