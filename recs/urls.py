"""Aisle's URLs, for a project's urls.py, ahead of its admin:

    path("", include("recs.urls")),      # before path("admin/", admin.site.urls)
    path("admin/", admin.site.urls),

The API (/api/v1/ and its OpenAPI schema and docs), the dashboards under the project's admin
(staff only: the project's admin site checks the login) and /metrics, in the `aisle` namespace
(`reverse("aisle:api-events")`). The dashboards must come before the admin's own URLs, whose
catch-all would answer them with a 404.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from recs.admin import recommendation_preview_view
from recs.api.schema import SchemaView
from recs.observability.views import experiment_dashboard_view, health_view, metrics_view

app_name = "aisle"

# The schema of Aisle's API alone (not of the project's other DRF views), described the same
# whatever the project's own SPECTACULAR_SETTINGS say.
API_PATTERNS = [path("api/v1/", include("recs.api.urls"))]
SCHEMA_SETTINGS = {
    "TITLE": "Aisle API",
    "DESCRIPTION": "Real-time personalization for Django storefronts.",
    "VERSION": "1.0.0",
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "shopperToken": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Aisle-Shopper-Token",
                "description": "A signed shopper token (JWT) naming the shopper: README, Security.",
            }
        }
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recs.api.schema.enumerate_placements",
    ],
}

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
    path("metrics", metrics_view, name="metrics"),
    *API_PATTERNS,
    path(
        "api/v1/schema/",
        SchemaView.as_view(patterns=API_PATTERNS, custom_settings=SCHEMA_SETTINGS),
        name="api-schema",
    ),
    path(
        "api/v1/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="aisle:api-schema"),
        name="api-docs",
    ),
]
