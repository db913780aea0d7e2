"""Django app config for recs: connects the engine to merch's commit-time announcements."""

from django.apps import AppConfig


class RecsConfig(AppConfig):
    name = "recs"
    verbose_name = "Recommendations"
    # The migrations are written with 64-bit keys; a host whose DEFAULT_AUTO_FIELD differs must
    # not get new migrations generated into the installed package.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aisle import conf  # noqa: F401 - registers the check of the AISLE settings block
        from recs.receivers import connect_receivers
        from recs.task_connections import connect_task_connection_handling

        connect_receivers()
        connect_task_connection_handling()
