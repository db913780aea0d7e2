"""Django models of the engine. The ML learners live in recs/learners/, not here."""

from django.db import models


class EventType(models.TextChoices):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    SEARCH = "search"
    IMPRESSION = "impression"


class Event(models.Model):
    """The event log: the offline store and source of truth. Append-only; one row per event_id."""

    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    # Indexed only where a query needs it: every index costs each of thousands of inserts a
    # second (random) b-tree write. user_id is served by the (user_id, occurred_at) index.
    user_id = models.CharField(max_length=64, blank=True)
    session_id = models.CharField(max_length=64, blank=True, db_index=True)
    # The SKU as sent, not a foreign key: the log outlives catalog edits and deletions.
    product_sku = models.CharField(max_length=32, blank=True)
    quantity = models.IntegerField(null=True, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    order_id = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=32, blank=True)
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # The queued batch that stored this row; the worker applying that batch (or its redelivery)
    # owns the row's online update, a duplicate copy arriving in another batch does not.
    ingest_batch_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user_id", "occurred_at"])]

    def __str__(self) -> str:
        who = self.user_id or f"session {self.session_id}"
        return f"{self.event_type} {self.product_sku} by {who} at {self.occurred_at:%Y-%m-%d %H:%M}"


class SessionLink(models.Model):
    """An anonymous session that later logged in: its history counts for the user from then on."""

    session_id = models.CharField(max_length=64, unique=True)
    user_id = models.CharField(max_length=64, db_index=True)
    linked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"session {self.session_id} -> user {self.user_id}"


class DatasetImport(models.Model):
    """Which data set files were imported, so that re-running the import is fast and safe."""

    name = models.CharField(max_length=100)
    file_sha256 = models.CharField(max_length=64)
    summary = models.JSONField(default=dict)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "file_sha256"], name="dataset_import_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.file_sha256[:12]})"


class ModelVersion(models.Model):
    """One trained artifact of a learner, with the data it saw and how it scored offline."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        SERVING = "serving"
        RETIRED = "retired"

    key = models.CharField(max_length=40, db_index=True, help_text="The learner's registry key.")
    training_run = models.CharField(max_length=32, db_index=True)
    params = models.JSONField(default=dict)
    data_start = models.DateTimeField(null=True)
    data_end = models.DateTimeField(null=True)
    interactions = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, help_text="Offline metrics on the temporal split.")
    artifact_path = models.CharField(max_length=500)
    artifact_sha256 = models.CharField(max_length=64)
    fit_seconds = models.FloatField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(status="serving"),
                name="one_serving_version_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} #{self.pk} ({self.status})"

    @property
    def primary_metric(self) -> float:
        return float(self.metrics.get("recall@20", 0.0))


class ServedList(models.Model):
    """One list served, or scored in shadow, with the experiment variant behind it: the join key
    of attribution (impression, click, cart and purchase events carry its rec_id)."""

    rec_id = models.CharField(max_length=32, unique=True)
    served_at = models.DateTimeField(db_index=True)
    placement = models.CharField(max_length=64)
    experiment_id = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    variant = models.CharField(max_length=64, blank=True)
    is_shadow = models.BooleanField(default=False)
    shadow_of = models.CharField(
        max_length=32, blank=True, help_text="rec_id of the list that was shown instead"
    )
    model_version = models.CharField(max_length=64, blank=True)
    tier = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=32, blank=True)
    user_id = models.CharField(max_length=64, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    # Who was assigned: the user, or "session:<id>" for an anonymous visitor.
    subject_id = models.CharField(max_length=80, db_index=True)
    skus = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["experiment_id", "served_at"])]

    def __str__(self) -> str:
        return f"{self.rec_id} {self.placement} {self.variant or '-'} ({len(self.skus)} items)"


class VariantHourlyStats(models.Model):
    """One experiment variant's outcomes for the shoppers first exposed in one UTC hour, rolled
    up by a worker from the served-list log and the event log, so that dashboards read a few
    rows instead of the logs. Shadow variants fill the shadow_* columns instead."""

    experiment_id = models.PositiveIntegerField(db_index=True)
    variant = models.CharField(max_length=64)
    hour = models.DateTimeField(help_text="Start of the UTC hour of the shoppers' first exposure")
    exposed_subjects = models.PositiveIntegerField(default=0, help_text="shoppers (sessions)")
    lists_served = models.PositiveIntegerField(default=0)
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0, help_text="clicks on recommended items")
    add_to_carts = models.PositiveIntegerField(default=0, help_text="of recommended items")
    converting_subjects = models.PositiveIntegerField(default=0, help_text="bought after exposure")
    revenue = models.FloatField(default=0.0, help_text="all purchases after exposure")
    revenue_squares = models.FloatField(
        default=0.0, help_text="sum over shoppers of their revenue squared (for intervals)"
    )
    recommended_revenue = models.FloatField(default=0.0, help_text="revenue of recommended items")
    # CUPED: each shopper's activity before their first exposure (x) beside their outcome (y),
    # as sums over shoppers, so that a report can remove the variance that history explains.
    pre_activity = models.FloatField(default=0.0, help_text="sum of x: log(1 + earlier events)")
    pre_activity_squares = models.FloatField(default=0.0, help_text="sum of x squared")
    pre_activity_conversion = models.FloatField(
        default=0.0, help_text="sum of x times converted (0 or 1)"
    )
    pre_revenue = models.FloatField(default=0.0, help_text="sum of x: revenue before exposure")
    pre_revenue_squares = models.FloatField(default=0.0, help_text="sum of x squared")
    pre_revenue_revenue = models.FloatField(default=0.0, help_text="sum of x times revenue")
    # Shadow variants: scored for the same requests, never shown.
    shadow_lists = models.PositiveIntegerField(default=0)
    shadow_overlap = models.FloatField(default=0.0, help_text="sum of overlap with the shown list")
    outcomes = models.PositiveIntegerField(
        default=0,
        help_text="products the shoppers then viewed, carted or bought anywhere in the shop, "
        "not through the shown list",
    )
    shadow_hits = models.PositiveIntegerField(
        default=0, help_text="of those, in the shadow list's top k"
    )
    served_hits = models.PositiveIntegerField(
        default=0, help_text="of those, in the shown list's top k"
    )
    model_versions = models.JSONField(
        default=dict, help_text="lists served per model version, e.g. {'hybrid#8': 120}"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "variant hourly stats"
        constraints = [
            models.UniqueConstraint(
                fields=["experiment_id", "variant", "hour"], name="variant_hour_unique"
            )
        ]
        ordering = ["experiment_id", "hour", "variant"]

    def __str__(self) -> str:
        return f"experiment {self.experiment_id} {self.variant} {self.hour:%Y-%m-%d %H}:00"


class ImportCheckpoint(models.Model):
    """How far an import of one file got, so that an interrupted import resumes where its last
    committed chunk ended instead of starting over."""

    kind = models.CharField(max_length=20, help_text="events or catalog")
    file_sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=500)
    rows_done = models.PositiveBigIntegerField(default=0, help_text="rows read and committed")
    stored = models.PositiveBigIntegerField(default=0, help_text="rows written (new)")
    skipped = models.PositiveBigIntegerField(default=0, help_text="duplicates and rejected rows")
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "file_sha256"], name="import_checkpoint_unique")
        ]

    def __str__(self) -> str:
        state = "complete" if self.completed_at else f"{self.rows_done:,} rows"
        return f"{self.kind} import of {self.file_name} ({state})"


class ErasureRecord(models.Model):
    """Audit of one erasure: who asked, when, how much was removed. The shopper's id itself is
    not kept, only a keyed digest of it (recs.erasure.subject_digest), so the record can answer
    "was this id erased?" without being a trace of the shopper."""

    subject_digest = models.CharField(max_length=64, db_index=True)
    requested_by = models.CharField(max_length=150, help_text="staff user, API key or command")
    erased_at = models.DateTimeField(auto_now_add=True)
    counts = models.JSONField(default=dict, help_text="what was removed, by kind")

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"erasure {self.subject_digest[:12]}… by {self.requested_by} at {self.erased_at:%Y-%m-%d %H:%M}"


class ErasedSession(models.Model):
    """A keyed digest of one session of an erased shopper, so that its anonymous events still
    queued at the erasure (session id only, no user id) are dropped too."""

    erasure = models.ForeignKey(ErasureRecord, on_delete=models.CASCADE, related_name="sessions")
    session_digest = models.CharField(max_length=64, db_index=True)

    def __str__(self) -> str:
        return f"session {self.session_digest[:12]}… of {self.erasure}"


# Registered with the app from its own module, so the key logic stays in one place.
from recs.api_keys import ApiKey  # noqa: E402, F401
