"""URLs of /api/v1/."""

from django.urls import path

from recs.api.events import EventsView

urlpatterns = [
    path("events", EventsView.as_view(), name="api-events"),
]
