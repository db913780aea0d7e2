"""Settings read once from the environment, with defaults that run the demo with nothing set."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from aisle import celery as aisle_celery

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Runtime files (SQLite test DB, beat schedule, demo logs and pids); never committed.
VAR_DIR = Path(env("AISLE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless asked for: a debug page shows settings and paths to anyone. scripts/demo.sh and
# scripts/test.sh turn it on for the local demo and the test run.
DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY, or a random one generated once and kept in VAR_DIR (mode 0600), so that a
    single machine is safe with nothing set. Several web machines must share one: set it."""
    given = env("SECRET_KEY", default="")
    if given:
        return given
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "axes",
    "merch",
    "recs",
    "storefront",  # the demo shop: part of the demo project, not of the installed apps
    "bench",  # the benchmark harness and bench_* commands; the product apps never import it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "recs.shopper_session.ShopperSessionMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

# Login throttling (django-axes) for the admin and the shop's login: after LOGIN_FAILURE_LIMIT
# failed attempts for one username, or from one address, logins are refused for
# LOGIN_LOCKOUT_MINUTES (answer 429), the right password included.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "recs.client_address.client_address"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# The benchmarks mount extra views (bench.urls); everything else uses the default.
ROOT_URLCONF = env("ROOT_URLCONF", default="config.urls")
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite file by default, PostgreSQL (or any dj-database-url) via DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not :memory:) so that a real Celery worker process in end-to-end tests sees the
    # same test database; a timeout so the worker and the web process can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Redis: one server for everything by default. REDIS_URL holds the engine's data (candidate
# lists, online features, availability, counters); with REDIS_CLUSTER on it names one or more
# startup nodes of a Redis Cluster, comma-separated. Django's cache (CACHE_URL) and Celery's
# broker (CELERY_BROKER_URL) then need a plain Redis (or RabbitMQ for the broker): neither
# django-redis nor kombu's Redis transport speaks the cluster protocol.
_redis_url = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
_redis_cluster = env.bool("REDIS_CLUSTER", default=False)
_cache_url = env("CACHE_URL", default=_redis_url)
if _redis_cluster:
    for _name in ("CACHE_URL", "CELERY_BROKER_URL"):
        if not env(_name, default=""):
            raise ImproperlyConfigured(
                f"REDIS_CLUSTER is on: set {_name} to a plain (non-cluster) Redis, e.g. "
                f"redis://cache-host:6379/0; see README.md, 'Scale-out'."
            )
# Tight timeouts: the render path must fall back rather than wait on a slow Redis.
_socket_timeout_s = env.float("REDIS_SOCKET_TIMEOUT_S", default=0.05)
_connect_timeout_s = env.float("REDIS_CONNECT_TIMEOUT_S", default=0.05)

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": _cache_url,
        "KEY_PREFIX": "aisle",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": _connect_timeout_s,
            "SOCKET_TIMEOUT": _socket_timeout_s,
        },
    }
}

# --- Celery: Redis broker, one queue per kind of work so slow work never starves fast work.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_redis_url)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = aisle_celery.task_queues()
CELERY_TASK_ROUTES = aisle_celery.TASK_ROUTES
# A message taken by a worker that died unacknowledged is redelivered after visibility_timeout.
# Late-acked tasks (event batches) are short and idempotent, so a few minutes is safe; long
# tasks (training) ack early instead and are re-run by beat. Sweeps for such messages run every
# unacked_restore_interval seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=300),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL_S", default=5),
    "unacked_restore_throttle": 1,
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- API
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["recs.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "recs.api.errors.error_envelope_exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # How many reverse proxies to trust in X-Forwarded-For when throttling by address; 0 uses
    # the connection's address, so a client cannot pick its own throttle bucket.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}
SPECTACULAR_SETTINGS = {
    # Swagger UI assets are served from the installed sidecar package: no CDN at run time. (The
    # API schema's own title, security schemes and hooks are set on its view: recs/urls.py.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Aisle (aisle.conf: every key optional, documented there with its default)
AISLE = {
    # --- Redis: the engine's data (candidate lists, online features, availability, counters);
    # with REDIS_CLUSTER on, REDIS_URL names startup nodes of a Redis Cluster, comma-separated.
    "REDIS_URL": _redis_url,
    "REDIS_CLUSTER": _redis_cluster,
    "REDIS_KEY_PREFIX": env("REDIS_KEY_PREFIX", default=""),
    "REDIS_SOCKET_TIMEOUT_S": _socket_timeout_s,
    "REDIS_CONNECT_TIMEOUT_S": _connect_timeout_s,
    # Background writers (training, list refreshes) write large pipelines: they may wait longer.
    "REDIS_WORKER_TIMEOUT_S": env.float("REDIS_WORKER_TIMEOUT_S", default=10.0),
    # --- Catalog
    # A product launched within this many hours counts as new (admin filter, new-product tier).
    "NEW_PRODUCT_HOURS": env.int("NEW_PRODUCT_HOURS", default=72),
    "DEFAULT_CURRENCY": env("DEFAULT_CURRENCY", default="GBP"),
    # --- Event ingestion
    "EVENTS_MAX_BATCH": env.int("EVENTS_MAX_BATCH", default=500),
    "EVENTS_MAX_BODY_BYTES": env.int("EVENTS_MAX_BODY_BYTES", default=1024 * 1024),
    "EVENT_MAX_FUTURE_SKEW_S": env.int("EVENT_MAX_FUTURE_SKEW_S", default=300),
    "EVENT_MAX_AGE_DAYS": env.int("EVENT_MAX_AGE_DAYS", default=30),
    # Requests per client address (publishable keys, shopper tokens); secret keys count per key.
    "EVENTS_THROTTLE_RATE": env("EVENTS_THROTTLE_RATE", default="600/min"),
    "SERVER_KEY_THROTTLE_RATE": env("SERVER_KEY_THROTTLE_RATE", default="60000/min"),
    # JSON request bodies nested deeper than this are refused with a 400.
    "JSON_MAX_DEPTH": env.int("JSON_MAX_DEPTH", default=32),
    # --- Catalog and stock API
    "CATALOG_MAX_BATCH": env.int("CATALOG_MAX_BATCH", default=1000),
    "CATALOG_MAX_BODY_BYTES": env.int("CATALOG_MAX_BODY_BYTES", default=8 * 1024 * 1024),
    # How long the online store remembers that an event was applied; must exceed the longest
    # redelivery delay of a batch (the broker's visibility timeout), so a redelivered batch is a no-op.
    "EVENT_APPLIED_MARKER_TTL_S": env.int("EVENT_APPLIED_MARKER_TTL_S", default=2 * 3600 * 24),
    # Fault injection: seconds a worker waits between storing a batch and applying it online.
    "EVENTS_APPLY_DELAY_S": env.float("EVENTS_APPLY_DELAY_S", default=0.0),
    # Fault injection: seconds a worker waits each time it takes up a model to score with
    # (re-score, sell-out refresh, shadow scoring); bench_faults sets 1.2 to slow "the model".
    "SCORING_DELAY_S": env.float("SCORING_DELAY_S", default=0.0),
    # --- Feature store
    # Half-life of the exponentially decayed trending score, in hours.
    "TRENDING_HALF_LIFE_HOURS": env.float("TRENDING_HALF_LIFE_HOURS", default=6.0),
    # Half-life of segment popularity and of a shopper's category affinity, in hours.
    "POPULARITY_HALF_LIFE_HOURS": env.float("POPULARITY_HALF_LIFE_HOURS", default=168.0),
    "AFFINITY_HALF_LIFE_HOURS": env.float("AFFINITY_HALF_LIFE_HOURS", default=336.0),
    # Implicit-feedback weight of each event type (purchase > add_to_cart > click > view).
    "EVENT_WEIGHTS": {
        "view": env.float("EVENT_WEIGHT_VIEW", default=1.0),
        "click": env.float("EVENT_WEIGHT_CLICK", default=2.0),
        "add_to_cart": env.float("EVENT_WEIGHT_ADD_TO_CART", default=4.0),
        "purchase": env.float("EVENT_WEIGHT_PURCHASE", default=8.0),
    },
    "RECENTLY_VIEWED_SIZE": env.int("RECENTLY_VIEWED_SIZE", default=20),
    # How many of a segment's most popular products the online store returns.
    "SEGMENT_POPULARITY_SIZE": env.int("SEGMENT_POPULARITY_SIZE", default=200),
    # --- Training
    "MODEL_ARTIFACT_DIR": Path(env("MODEL_ARTIFACT_DIR", default=str(VAR_DIR / "models"))),
    "TRAINING_HOLDOUT_DAYS": env.float("TRAINING_HOLDOUT_DAYS", default=30.0),
    "TRAINING_INTERVAL_HOURS": env.float("TRAINING_INTERVAL_HOURS", default=24.0),
    "AVAILABILITY_SYNC_INTERVAL_S": env.float("AVAILABILITY_SYNC_INTERVAL_S", default=60.0),
    "SERVED_LOG_DRAIN_INTERVAL_S": env.float("SERVED_LOG_DRAIN_INTERVAL_S", default=5.0),
    "EXPERIMENT_ROLLUP_INTERVAL_S": env.float("EXPERIMENT_ROLLUP_INTERVAL_S", default=300.0),
    "HEARTBEAT_INTERVAL_S": env.float("HEARTBEAT_INTERVAL_S", default=30.0),
    # Configurations each learner tries on the validation split per training run (evaluate: --budget),
    # and how many shoppers of each period score them (a seeded sample beyond that).
    "TRAINING_TUNING_BUDGET": env.int("TRAINING_TUNING_BUDGET", default=4),
    "TRAINING_EVALUATION_SHOPPERS": env.int("TRAINING_EVALUATION_SHOPPERS", default=2000),
    # Precomputed candidates: per active user, per item, per segment list.
    "USER_CANDIDATES_SIZE": env.int("USER_CANDIDATES_SIZE", default=200),
    "SIMILAR_ITEMS_SIZE": env.int("SIMILAR_ITEMS_SIZE", default=50),
    "POPULAR_LIST_SIZE": env.int("POPULAR_LIST_SIZE", default=200),
    # A user counts as active (gets a precomputed list) with an event this recent, relative to the
    # newest event in the log (so that a historic demo data set still has active users); products
    # touched or launched in the same window get precomputed neighbour lists.
    "ACTIVE_USER_DAYS": env.float("ACTIVE_USER_DAYS", default=365.0),
    # --- Shoppers: who a request may personalise for (README, "Security")
    # The publishable key the storefront pages' JS sends events with (public: it can only send
    # events for the shopper of the page's signed shopper token).
    "STOREFRONT_PUBLISHABLE_KEY": env("STOREFRONT_PUBLISHABLE_KEY", default=""),
    # Shopper tokens (JWT, HS256): the shared secret a shop's backend mints them with (default:
    # derived from SECRET_KEY), their audience, lifetime, longest accepted lifetime, clock leeway.
    "SHOPPER_TOKEN_SECRET": env("SHOPPER_TOKEN_SECRET", default=""),
    "SHOPPER_TOKEN_AUDIENCE": env("SHOPPER_TOKEN_AUDIENCE", default="aisle"),
    "SHOPPER_TOKEN_TTL_S": env.int("SHOPPER_TOKEN_TTL_S", default=4 * 3600),
    "SHOPPER_TOKEN_MAX_TTL_S": env.int("SHOPPER_TOKEN_MAX_TTL_S", default=24 * 3600),
    "SHOPPER_TOKEN_LEEWAY_S": env.int("SHOPPER_TOKEN_LEEWAY_S", default=30),
    # The signed cookie that carries an anonymous shopper's session id (recs.shopper_session).
    "SHOPPER_SESSION_COOKIE": env("SHOPPER_SESSION_COOKIE", default="aisle_sid"),
    "SHOPPER_SESSION_COOKIE_AGE_S": env.int(
        "SHOPPER_SESSION_COOKIE_AGE_S", default=365 * 24 * 3600
    ),
    # Keyed digests of erased shoppers' ids (ErasureRecord) use this key (default: from SECRET_KEY).
    "ERASURE_DIGEST_KEY": env("ERASURE_DIGEST_KEY", default=""),
    # The demo shop's checkout: orders per client address per hour, and units per order.
    "CHECKOUT_ORDERS_PER_HOUR": env.int("CHECKOUT_ORDERS_PER_HOUR", default=10),
    "CHECKOUT_MAX_UNITS": env.int("CHECKOUT_MAX_UNITS", default=200),
    # The URL name the recommendation carousel links products to (takes the SKU).
    "RECS_PRODUCT_URL_NAME": env("RECS_PRODUCT_URL_NAME", default="storefront:product"),
    # --- Serving (the render path)
    # After a Redis failure, requests skip Redis for this long and serve the fallback at once.
    "SERVING_REDIS_RETRY_S": env.float("SERVING_REDIS_RETRY_S", default=0.25),
    # Product cards are held in each web process and reloaded after this long at the latest.
    "CATALOG_CACHE_SECONDS": env.float("CATALOG_CACHE_SECONDS", default=300.0),
    # Tier router: interactions needed for content-based and for collaborative recommendations.
    "TIER_CONTENT_MIN_INTERACTIONS": env.int("TIER_CONTENT_MIN_INTERACTIONS", default=1),
    "TIER_COLLABORATIVE_MIN_INTERACTIONS": env.int(
        "TIER_COLLABORATIVE_MIN_INTERACTIONS", default=10
    ),
    # Weight of the neighbours of what a collaborative-tier shopper just viewed, against their own
    # list (1.0): the session re-rank.
    "SESSION_RERANK_WEIGHT": env.float("SESSION_RERANK_WEIGHT", default=0.6),
    # How many of the shopper's latest viewed / carted products steer the session re-rank.
    "RECENT_CONTEXT_SIZE": env.int("RECENT_CONTEXT_SIZE", default=5),
    # How deep each candidate list is read, and the largest list a request may ask for.
    "SERVING_CANDIDATE_DEPTH": env.int("SERVING_CANDIDATE_DEPTH", default=50),
    "SERVING_MAX_LIMIT": env.int("SERVING_MAX_LIMIT", default=50),
    # Score multipliers: products launched within NEW_PRODUCT_HOURS; products already in the cart
    # or bought (where the placement does not hide them).
    "NEW_PRODUCT_BOOST": env.float("NEW_PRODUCT_BOOST", default=1.5),
    "SERVING_DEMOTION": env.float("SERVING_DEMOTION", default=0.3),
    # How often a web process adds its serving counters to the shared Redis totals.
    "SERVING_METRICS_FLUSH_S": env.float("SERVING_METRICS_FLUSH_S", default=1.0),
    # A shopper's events re-score their collaborative list once per this many seconds at most.
    "RESCORE_DEBOUNCE_S": env.float("RESCORE_DEBOUNCE_S", default=2.0),
    # Read requests per client address (secret keys count per key, at SERVER_KEY_THROTTLE_RATE).
    "RECOMMENDATIONS_THROTTLE_RATE": env("RECOMMENDATIONS_THROTTLE_RATE", default="1200/min"),
    # --- Experiments
    # Share of experiment requests whose shadow variants are scored (off the render path).
    "SHADOW_SAMPLE_RATE": env.float("SHADOW_SAMPLE_RATE", default=1.0),
    # The served-list stream in Redis is capped (a worker drains it into the database).
    "SERVED_LOG_MAX_ENTRIES": env.int("SERVED_LOG_MAX_ENTRIES", default=1_000_000),
    # Clicks, carts and purchases up to this long after a list was served count for its variant.
    "ATTRIBUTION_WINDOW_HOURS": env.float("ATTRIBUTION_WINDOW_HOURS", default=24.0),
    # Experiment verdicts call a difference significant below this p-value.
    "EXPERIMENT_SIGNIFICANCE_LEVEL": env.float("EXPERIMENT_SIGNIFICANCE_LEVEL", default=0.05),
    # /metrics requires `Authorization: Bearer <token>` (or a staff login); with DEBUG on and no
    # token set, loopback and private addresses may scrape it too.
    "METRICS_TOKEN": env("METRICS_TOKEN", default=""),
    # Learner keys an experiment variant may name.
    "EXPERIMENT_MODEL_KEYS": env.list(
        "EXPERIMENT_MODEL_KEYS",
        default=[
            "popularity",
            "trending",
            "demographic",
            "content",
            "item_knn",
            "ease",
            "bought_together",
            "hybrid",
        ],
    ),
}

CELERY_BEAT_SCHEDULE = aisle_celery.beat_schedule(AISLE)

# --- Production hardening: on whenever DEBUG is off; each can still be set from the environment.
# A proxy's X-Forwarded-Proto is trusted only when TRUSTED_PROXY_SSL_HEADER names the header the
# proxy sets (e.g. X-Forwarded-Proto): otherwise any client could claim HTTPS.
_proxy_ssl_header = env("TRUSTED_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
# Both reach beyond this site (every subdomain; browsers' built-in lists): the owner opts in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]  # the two opt-ins above
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from this site, no inline script anywhere
# (storefront, widget, admin, API docs); product images may come from any HTTPS host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # Swagger UI sets inline styles
        "img-src": ["'self'", "data:", "https:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
