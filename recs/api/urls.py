"""URLs of /api/v1/."""

from django.urls import path

from recs.api.events import EventsView
from recs.api.recommendations import RecommendationsView

urlpatterns = [
    path("events", EventsView.as_view(), name="api-events"),
    path("recommendations", RecommendationsView.as_view(), name="api-recommendations"),
]
