"""Aisle's settings: one `AISLE = {...}` block in the host project's settings, every key optional.

Read as `aisle_settings.NAME`, which looks the name up in `settings.AISLE` on every access (so
`override_settings(AISLE=...)` and pytest-django's `settings` fixture work) and falls back to the
default below. A key the block holds that Aisle does not know is a system check error
(aisle.E001), so a typo does not silently keep the default.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.checks import Error, Warning, register
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # --- Redis: the engine's data (candidate lists, online features, availability, counters).
    # With REDIS_CLUSTER on, REDIS_URL names one or more startup nodes, comma-separated.
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_CLUSTER": False,
    # Prepended to every key the engine writes, so that two installs can share one Redis.
    "REDIS_KEY_PREFIX": "",
    # Tight timeouts on the render path (it falls back rather than waits); background writers
    # (training, list refreshes) write large pipelines and may wait longer.
    "REDIS_SOCKET_TIMEOUT_S": 0.05,
    "REDIS_CONNECT_TIMEOUT_S": 0.05,
    "REDIS_WORKER_TIMEOUT_S": 10.0,
    # The Django cache alias the API's throttles, key lookups and the worker heartbeat use.
    "CACHE_ALIAS": "default",
    # --- Catalog
    # A product launched within this many hours counts as new (admin filter, new-product boost).
    "NEW_PRODUCT_HOURS": 72,
    "DEFAULT_CURRENCY": "GBP",
    "CATALOG_MAX_BATCH": 1000,
    "CATALOG_MAX_BODY_BYTES": 8 * 1024 * 1024,
    # The shop's own product model as the catalog's source (merch/catalog_source.py): None =
    # Aisle's own catalog is the source (the catalog API, import_catalog, the admin). Else:
    #   "model": "shop.Product"  (app_label.ModelName)
    #   "fields": {Aisle field: attribute path on the instance ("category.slug_path"; a method
    #              is called) or dotted path to a callable(instance)}; sku, title, price
    #              required; also category_path, description, brand, currency, attributes,
    #              image_url, launched_at, is_active, url (the product page)
    #   "stock": attribute path or dotted callable(instance) -> units available (optional)
    #   "queryset": dotted path to a callable() -> the QuerySet to sync (optional; default all)
    # Saves and deletes of the model are followed on commit; run `manage.py sync_catalog` after
    # bulk changes (QuerySet.update() and bulk_create send no signals).
    "CATALOG_SOURCE": None,
    # --- Event ingestion
    "EVENTS_MAX_BATCH": 500,
    "EVENTS_MAX_BODY_BYTES": 1024 * 1024,
    "EVENT_MAX_FUTURE_SKEW_S": 300,
    "EVENT_MAX_AGE_DAYS": 30,
    # Requests per client address (publishable keys, shopper tokens); secret keys count per key.
    "EVENTS_THROTTLE_RATE": "600/min",
    "SERVER_KEY_THROTTLE_RATE": "60000/min",
    # JSON request bodies nested deeper than this are refused with a 400.
    "JSON_MAX_DEPTH": 32,
    # How long the online store remembers that an event was applied; must exceed the longest
    # redelivery delay of a batch (the broker's visibility timeout).
    "EVENT_APPLIED_MARKER_TTL_S": 2 * 3600 * 24,
    # Fault injection for tests and benchmarks: a worker's wait between storing a batch and
    # applying it online, and each time it takes up a model to score with.
    "EVENTS_APPLY_DELAY_S": 0.0,
    "SCORING_DELAY_S": 0.0,
    # --- Event retention (recs/events/retention.py)
    # Events that happened more than this many days ago are archived to files and deleted from
    # the event log once a day; 0 keeps every event in the database forever. Features,
    # popularity and trained models keep what they derived; training and a features rebuild
    # then read only the retained window.
    "EVENT_RETENTION_DAYS": 180,
    # Where the archive goes: one gzip JSON Lines file per UTC day, events-YYYY-MM-DD.jsonl.gz
    # (None: var/event-archive under the project's BASE_DIR).
    "EVENT_ARCHIVE_DIR": None,
    # --- Feature store
    "TRENDING_HALF_LIFE_HOURS": 6.0,
    "POPULARITY_HALF_LIFE_HOURS": 168.0,
    "AFFINITY_HALF_LIFE_HOURS": 336.0,
    # Implicit-feedback weight of each event type.
    "EVENT_WEIGHTS": {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0},
    "RECENTLY_VIEWED_SIZE": 20,
    "SEGMENT_POPULARITY_SIZE": 200,
    # --- Training
    # Where trained model artifacts are kept (None: var/aisle-models under the project's BASE_DIR).
    "MODEL_ARTIFACT_DIR": None,
    "TRAINING_HOLDOUT_DAYS": 30.0,
    "TRAINING_INTERVAL_HOURS": 24.0,
    # Periodic work (aisle.celery.beat_schedule): rebuild of the sold-out set from the catalog,
    # drain of the served-list log, experiment rollups, the worker heartbeat.
    "AVAILABILITY_SYNC_INTERVAL_S": 60.0,
    "SERVED_LOG_DRAIN_INTERVAL_S": 5.0,
    "EXPERIMENT_ROLLUP_INTERVAL_S": 300.0,
    "HEARTBEAT_INTERVAL_S": 30.0,
    "TRAINING_TUNING_BUDGET": 4,
    "TRAINING_EVALUATION_SHOPPERS": 2000,
    "USER_CANDIDATES_SIZE": 200,
    "SIMILAR_ITEMS_SIZE": 50,
    "POPULAR_LIST_SIZE": 200,
    # A shopper counts as active (gets a precomputed list) with an event this recent, relative
    # to the newest event in the log.
    "ACTIVE_USER_DAYS": 365.0,
    # --- Shoppers: who a request may personalise for (README, "Security")
    "STOREFRONT_PUBLISHABLE_KEY": "",
    "SHOPPER_TOKEN_SECRET": "",  # default: derived from SECRET_KEY
    "SHOPPER_TOKEN_AUDIENCE": "aisle",
    "SHOPPER_TOKEN_TTL_S": 4 * 3600,
    "SHOPPER_TOKEN_MAX_TTL_S": 24 * 3600,
    "SHOPPER_TOKEN_LEEWAY_S": 30,
    "SHOPPER_SESSION_COOKIE": "aisle_sid",
    "SHOPPER_SESSION_COOKIE_AGE_S": 365 * 24 * 3600,
    "ERASURE_DIGEST_KEY": "",  # default: derived from SECRET_KEY
    # The demo shop's checkout: orders per client address per hour, and units per order.
    "CHECKOUT_ORDERS_PER_HOUR": 10,
    "CHECKOUT_MAX_UNITS": 200,
    # The URL name the recommendation carousel links products to (takes the SKU).
    "RECS_PRODUCT_URL_NAME": "storefront:product",
    # --- Serving (the render path)
    "SERVING_REDIS_RETRY_S": 0.25,
    "CATALOG_CACHE_SECONDS": 300.0,
    "TIER_CONTENT_MIN_INTERACTIONS": 1,
    "TIER_COLLABORATIVE_MIN_INTERACTIONS": 10,
    "SESSION_RERANK_WEIGHT": 0.6,
    "RECENT_CONTEXT_SIZE": 5,
    "SERVING_CANDIDATE_DEPTH": 50,
    "SERVING_MAX_LIMIT": 50,
    "NEW_PRODUCT_BOOST": 1.5,
    "SERVING_DEMOTION": 0.3,
    "SERVING_METRICS_FLUSH_S": 1.0,
    "RESCORE_DEBOUNCE_S": 2.0,
    "RECOMMENDATIONS_THROTTLE_RATE": "1200/min",
    # --- Experiments
    "SHADOW_SAMPLE_RATE": 1.0,
    "SERVED_LOG_MAX_ENTRIES": 1_000_000,
    "ATTRIBUTION_WINDOW_HOURS": 24.0,
    "EXPERIMENT_SIGNIFICANCE_LEVEL": 0.05,
    # Days of each shopper's history before their first exposure that CUPED reads.
    "EXPERIMENT_CUPED_LOOKBACK_DAYS": 28,
    # A sample ratio mismatch is flagged below this chi-square p-value (the industry's 0.001:
    # a check run at every rollup must not cry wolf).
    "EXPERIMENT_SRM_P_VALUE": 0.001,
    "EXPERIMENT_MODEL_KEYS": [
        "popularity",
        "trending",
        "demographic",
        "content",
        "item_knn",
        "ease",
        "bought_together",
        "hybrid",
    ],
    # /metrics requires `Authorization: Bearer <token>` (or a staff login).
    "METRICS_TOKEN": "",
}


class AisleSettings:
    """`aisle_settings.NAME`: the host's AISLE block, else the default.

    The render path reads settings inside its loops, so the block merged with the defaults is
    kept in the instance's __dict__ (later reads are plain attribute reads) and dropped when
    Django announces that AISLE changed (setting_changed: override_settings, pytest-django's
    `settings` fixture), as DRF's api_settings does."""

    def __getattr__(self, name: str) -> Any:
        # Reached only for a name not loaded yet: load the whole block, then answer.
        if name not in DEFAULTS:
            raise AttributeError(f"Aisle has no setting {name!r}; see aisle.conf.DEFAULTS")
        if not self.__dict__:
            block = getattr(settings, "AISLE", {})
            self.__dict__.update({**DEFAULTS, **{k: v for k, v in block.items() if k in DEFAULTS}})
            base_dir = Path(getattr(settings, "BASE_DIR", Path.cwd()))
            if self.__dict__["MODEL_ARTIFACT_DIR"] is None:
                self.__dict__["MODEL_ARTIFACT_DIR"] = base_dir / "var" / "aisle-models"
            if self.__dict__["EVENT_ARCHIVE_DIR"] is None:
                self.__dict__["EVENT_ARCHIVE_DIR"] = base_dir / "var" / "event-archive"
        return self.__dict__[name]

    def reload(self) -> None:
        self.__dict__.clear()


aisle_settings = AisleSettings()


@receiver(setting_changed)
def reload_aisle_settings(setting: str, **kwargs) -> None:
    if setting in ("AISLE", "BASE_DIR"):
        aisle_settings.reload()


def aisle_cache() -> BaseCache:
    """The Django cache Aisle keeps API-key lookups and API throttle counters in
    (AISLE["CACHE_ALIAS"]); across several web processes it must be a shared one (Redis)."""
    return caches[aisle_settings.CACHE_ALIAS]


@register()
def check_aisle_settings(app_configs, **kwargs) -> list[Error]:
    block = getattr(settings, "AISLE", {})
    if not isinstance(block, dict):
        return [Error("settings.AISLE must be a dict", id="aisle.E002")]
    return [
        Error(f"Unknown Aisle setting {name!r}", hint="See aisle.conf.DEFAULTS.", id="aisle.E001")
        for name in sorted(set(block) - set(DEFAULTS))
    ]


@register()
def check_event_retention(app_configs, **kwargs) -> list[Warning]:
    """A retention window that archives what training tunes on (validation and test periods) or
    what the events API still accepts is almost surely a mistake, so say so at startup."""
    block = getattr(settings, "AISLE", {})
    conf = {**DEFAULTS, **(block if isinstance(block, dict) else {})}
    days = float(conf["EVENT_RETENTION_DAYS"])
    needed = max(2 * float(conf["TRAINING_HOLDOUT_DAYS"]), float(conf["EVENT_MAX_AGE_DAYS"]))
    if 0 < days <= needed:
        return [
            Warning(
                f"EVENT_RETENTION_DAYS ({days:g}) leaves no more than {needed:g} days of events",
                hint="Training tunes on the last 2 x TRAINING_HOLDOUT_DAYS and the events API "
                "accepts events EVENT_MAX_AGE_DAYS old: keep more days, or 0 to keep all.",
                id="aisle.W001",
            )
        ]
    return []
