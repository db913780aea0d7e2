"""The benchmarks' URLconf (ROOT_URLCONF=bench.urls): the project's URLs plus bench views."""

from django.urls import path

from bench.views import bare_view, sync_model_view
from config.urls import urlpatterns as project_urlpatterns

BARE_PATH = "/bench/bare"
SYNC_MODEL_PATH = "/bench/sync-model"

urlpatterns = [
    path(BARE_PATH.lstrip("/"), bare_view),
    path(SYNC_MODEL_PATH.lstrip("/"), sync_model_view),
    *project_urlpatterns,
]
