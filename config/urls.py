"""URL map: the storefront at "/", the admin and its dashboards, the API and its schema, /metrics."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from recs.admin import recommendation_preview_view
from recs.observability.views import experiment_dashboard_view, health_view, metrics_view

admin.site.site_header = "Aisle"
admin.site.site_title = "Aisle admin"
admin.site.index_title = "Merchandising and recommendations"

urlpatterns = [
    path(
        "admin/recs/preview/",
        admin.site.admin_view(recommendation_preview_view),
        name="recs-preview",
    ),
    path(
        "admin/recs/experiments/<int:pk>/",
        admin.site.admin_view(experiment_dashboard_view),
        name="recs-experiment-dashboard",
    ),
    path("admin/recs/health/", admin.site.admin_view(health_view), name="recs-health"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("recs.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path("", include("merch.storefront.urls")),
]
