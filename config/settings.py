"""Settings read once from the environment, with defaults that run the demo with nothing set."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from aisle import celery as aisle_celery
from aisle.conf import DEFAULTS as AISLE_DEFAULTS

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
    # same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    # Web processes and event workers write to the one file at once. IMMEDIATE takes the write
    # lock at BEGIN, where SQLite waits for it; a deferred transaction that read first and then
    # writes gets "database is locked" at once, whatever the timeout (an admin save does that).
    # WAL lets readers go on while one writer commits; synchronous=NORMAL is safe with WAL (a
    # power cut may lose the last commits, never corrupt the file) and skips an fsync per commit.
    # Checkpoints every 10,000 pages (40 MB of WAL) rather than 1,000: the event log's random
    # index pages are copied back less often (mean commit of a 100-event batch 8.4 -> 5.4 ms).
    # The timeout is how long a writer waits its turn: far above one event batch's transaction,
    # below gunicorn's 30 s worker timeout, so a stuck wait answers with an error instead.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        init_command=(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000"
        ),
        timeout=20,
    )
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
STATICFILES_DIRS = [BASE_DIR / "static"]  # the demo project's own: the admin's favicon
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
    # Redis socket limits of the broker connections: a command to a Redis that hangs (or a
    # connection a firewall dropped silently) fails after 5 s instead of waiting forever, and
    # kombu's health checks notice a dead consuming connection within about 20 s (1 s BRPOP
    # plus twice the interval) and reconnect. Web processes publish events with their own
    # short retry policy (recs.events.tasks), so an unreachable broker is still a quick 503.
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
    "socket_keepalive": True,
    "health_check_interval": 10,
}
# A worker rides out a broker restart: it retries the connection for as long as it takes, at
# start too (a worker started before Redis waits for it instead of exiting), and its consumer
# survives a Celery/kombu 5.7 fault that otherwise ends it when the connection drops
# (aisle/worker.py). bench_supervision measures it (docs/PERFORMANCE.md).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CONSUMER = "aisle.worker:Consumer"
# Late-acknowledged tasks running when the connection drops finish their (idempotent) work; their
# acknowledgement is lost with the connection, so the broker redelivers them after the
# visibility timeout and they apply nothing twice. Celery 6 will cancel them instead.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Database connections live across tasks as long as CONN_MAX_AGE says (aisle/celery.py).
CELERY_DB_REUSE_MAX = aisle_celery.DB_REUSE_MAX
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

# --- Aisle: every setting of aisle/conf.py (which documents each with its default) that the
# environment sets under the same name, read like its default's type; the others keep it.


def _aisle_from_environment() -> dict:
    block = {}
    for name, default in AISLE_DEFAULTS.items():
        if name not in env.ENVIRON:
            continue
        if isinstance(default, bool):
            block[name] = env.bool(name)
        elif isinstance(default, int):
            block[name] = env.int(name)
        elif isinstance(default, float):
            block[name] = env.float(name)
        elif isinstance(default, list):
            block[name] = env.list(name)
        elif isinstance(default, dict) or name == "CATALOG_SOURCE":
            block[name] = env.json(name)
        else:
            block[name] = env(name)
    return block


AISLE = {
    # The demo keeps its models and event archive under var/, and these share values with the
    # settings above.
    "MODEL_ARTIFACT_DIR": VAR_DIR / "models",
    "EVENT_ARCHIVE_DIR": VAR_DIR / "event-archive",
    "REDIS_URL": _redis_url,
    "REDIS_CLUSTER": _redis_cluster,
    "REDIS_SOCKET_TIMEOUT_S": _socket_timeout_s,
    "REDIS_CONNECT_TIMEOUT_S": _connect_timeout_s,
    # Implicit-feedback weight of each event type, one variable each.
    "EVENT_WEIGHTS": {
        kind: env.float(f"EVENT_WEIGHT_{kind.upper()}", default=weight)
        for kind, weight in AISLE_DEFAULTS["EVENT_WEIGHTS"].items()
    },
    **_aisle_from_environment(),
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
