"""Django app config for recs: connects the engine to merch's commit-time announcements."""

from django.apps import AppConfig


class RecsConfig(AppConfig):
    name = "recs"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from recs.receivers import connect_receivers

        connect_receivers()
