"""Django app config for recs: connects the engine to merch's commit-time announcements."""

from django.apps import AppConfig


class RecsConfig(AppConfig):
    name = "recs"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from merch import signals
        from recs.candidates import catalog_changes
        from recs.serving import availability, merchandising
        from recs.training.tasks import queue_experiment_lists

        signals.stock_changed.connect(availability.on_stock_changed, dispatch_uid="recs-stock")
        signals.products_activation_changed.connect(
            availability.on_activation_changed, dispatch_uid="recs-activation"
        )
        signals.products_changed.connect(
            catalog_changes.on_products_changed, dispatch_uid="recs-products-changed"
        )
        signals.merchandising_changed.connect(
            merchandising.bump_config_version, dispatch_uid="recs-merchandising"
        )
        signals.experiments_changed.connect(
            merchandising.bump_config_version, dispatch_uid="recs-experiments"
        )
        signals.experiments_changed.connect(
            queue_experiment_lists, dispatch_uid="recs-experiment-lists"
        )
