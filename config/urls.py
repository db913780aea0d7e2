"""URL map of the demo project: Aisle's URLs (API, dashboards, /metrics), the admin, the storefront."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Aisle"
admin.site.site_title = "Aisle admin"
admin.site.index_title = "Merchandising and recommendations"

urlpatterns = [
    path("", include("recs.urls")),  # ahead of the admin: it holds the admin dashboards
    path("admin/", admin.site.urls),
    path("", include("storefront.urls")),
]
