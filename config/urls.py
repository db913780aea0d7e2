"""URL map of the demo project: Aisle's URLs (API, dashboards, /metrics), the admin, the storefront."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

admin.site.site_header = "Aisle"
admin.site.site_title = "Aisle admin"
admin.site.index_title = "Merchandising and recommendations"


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask the root for an icon wherever a page links none (API answers, /metrics);
    a temporary redirect, since the icon's static URL changes with its content."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("", include("recs.urls")),  # ahead of the admin: it holds the admin dashboards
    path("admin/", admin.site.urls),
    path("", include("storefront.urls")),
]
