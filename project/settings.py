"""Forest settings: every value comes from the environment (see README, "Configuration").

Importing this module never starts a server. manage.py, `make run` and the test session call
project.runtime.bootstrap() first, which exports DATABASE_URL, REDIS_URL and SECRET_KEY for the
embedded servers when they are unset. Anything else that imports settings (daphne, celery) must
be given them, and fails loudly here when they are missing.
"""

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured
from psycopg_pool.base import AttemptWithBackoff

from project.logs import default_format, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

# --- Apps ---------------------------------------------------------------------------------------

INSTALLED_APPS = [
    "daphne",  # `manage.py runserver` serves ASGI (HTTP + WebSocket) like production
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "django_celery_beat",
    "django_filters",
    "project",
    "crawls",
    "notifications",
    "analytics",
]

MIDDLEWARE = [
    "project.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

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

# --- PostgreSQL (the only engine) ---------------------------------------------------------------


def database_config(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for any PostgreSQL URL: postgres:// or postgresql://, with or
    without a query string, TCP or a unix socket (``?host=/dir`` or a percent-encoded path as
    the host)."""
    config: dict[str, Any] = environ.Env.db_url_config(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_URL must point at PostgreSQL (postgres:// or postgresql://)."
        )
    options = config.setdefault("OPTIONS", {})
    if "%" in config["HOST"]:  # postgresql://%2Fvar%2Frun%2Fpostgresql/forest
        config["HOST"] = unquote(config["HOST"])
    # A server that does not answer fails the connection (and the request: 503) in seconds.
    options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5))
    # psycopg's pool keeps connections across requests and ASGI threads (a new connection per
    # request costs more than the query; docs/performance.md). The pool checks a connection
    # before lending it, so that a database restart costs the connections, not the requests.
    config["CONN_MAX_AGE"] = 0
    options["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
    config["CONN_HEALTH_CHECKS"] = True  # with a pool: ConnectionPool.check_connection
    # While PostgreSQL is away the pool tries a new connection every second or so, not with
    # psycopg_pool's doubling backoff (1, 2, 4 … 128 s: after a few minutes' outage the API kept
    # answering 503 for a minute or more after the database was back).
    AttemptWithBackoff.DELAY_BACKOFF = env.float("DB_POOL_RETRY_BACKOFF", default=1.0)
    config["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_forest")}
    return config


DATABASES = {"default": database_config(env.str("DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker --------------------------------------------------

REDIS_URL = env.str("REDIS_URL")

CACHES = {
    "default": {
        "BACKEND": "project.cache.PooledRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "forest",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults (5 s read timeout, a pool capped at 100) break channels-redis
            # 4.3: idle consumers get dropped and busy servers fail handshakes.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 10000}],
            "prefix": "forest-asgi",
        },
    }
}

# --- Celery --------------------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# kombu's Redis transport with the fix in project/broker.py (without it a worker exits 1 when
# Redis goes away during a task). Other brokers: their own transport.
CELERY_BROKER_TRANSPORT = (
    env.str(
        "CELERY_BROKER_TRANSPORT",
        default="project.broker:Transport"
        if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
        else "",
    )
    or None
)
# Outages of any length: workers and beat retry the broker forever (Celery's default gives up
# after 100 attempts) and a worker keeps running its tasks meanwhile.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A cold shutdown (SIGQUIT) waits this long before it kills running tasks; running crawls hand
# their crawl back meanwhile, as they do at once on SIGTERM (crawls/engine/shutdown.py).
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", default=30.0)
CELERY_WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redelivery of an unacknowledged task after a lost worker. Crawls do not rely on it alone:
    # frontier leases expire and a beat task re-enqueues stalled crawls.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
}
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=4 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=4 * 3600 - 60)
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# django-celery-beat's DatabaseScheduler, made to outlive database outages (project/beat.py): it
# retries with a backoff capped at BEAT_DB_RETRY_MAX_SECONDS and re-reads the whole schedule
# every BEAT_FULL_SYNC_SECONDS (at most 300, django-celery-beat's own period).
CELERY_BEAT_SCHEDULER = "project.beat:DatabaseScheduler"
BEAT_DB_RETRY_MAX_SECONDS = env.float("BEAT_DB_RETRY_MAX_SECONDS", default=30.0)
BEAT_FULL_SYNC_SECONDS = env.float("BEAT_FULL_SYNC_SECONDS", default=300.0)
CELERY_TIMEZONE = env.str("TIME_ZONE", default="UTC")

CELERY_BEAT_SCHEDULE = {
    "crawls-sweep-stalled": {
        "task": "crawls.sweep",
        "schedule": env.float("CRAWL_SWEEP_INTERVAL", default=30.0),
    },
}

# --- Crawling ------------------------------------------------------------------------------------

# host:port pairs the SSRF guard lets through although they resolve to internal addresses
# (the demo board, tests). Everything else must resolve to public addresses.
CRAWL_ALLOWLIST = env.list("CRAWL_ALLOWLIST", default=[])
# host:port of the demo board that `make run` serves; allowlisted, and `manage.py run` starts it.
DEMO_BOARD_ADDRESS = env.str("DEMO_BOARD_ADDRESS", default="")
if DEMO_BOARD_ADDRESS:
    CRAWL_ALLOWLIST = [*CRAWL_ALLOWLIST, DEMO_BOARD_ADDRESS]
CRAWL_USER_AGENT = env.str("CRAWL_USER_AGENT", default="ForestBot/0.1 (+self-hosted)")
CRAWL_REQUEST_TIMEOUT = env.float("CRAWL_REQUEST_TIMEOUT", default=20.0)
CRAWL_CONNECT_TIMEOUT = env.float("CRAWL_CONNECT_TIMEOUT", default=10.0)
CRAWL_MAX_BYTES = env.int("CRAWL_MAX_BYTES", default=5 * 1024 * 1024)
CRAWL_MAX_REDIRECTS = env.int("CRAWL_MAX_REDIRECTS", default=5)
CRAWL_RETRIES = env.int("CRAWL_RETRIES", default=2)
CRAWL_RETRY_BACKOFF = env.float("CRAWL_RETRY_BACKOFF", default=0.5)
CRAWL_CONCURRENCY = env.int("CRAWL_CONCURRENCY", default=32)  # per worker process, all hosts
CRAWL_BATCH_SIZE = env.int("CRAWL_BATCH_SIZE", default=200)
CRAWL_LEASE_SECONDS = env.int("CRAWL_LEASE_SECONDS", default=120)
# A crawl without a heartbeat for this long is re-enqueued by the sweep.
CRAWL_STALL_SECONDS = env.int("CRAWL_STALL_SECONDS", default=180)
# ... at most this many times; then it is failed ("gave up"): no crawl comes back forever.
CRAWL_MAX_REVIVALS = env.int("CRAWL_MAX_REVIVALS", default=5)
# A URL whose lease expired this many times (its page stalled or killed the worker each time)
# is failed with class gave_up and the crawl goes on; suspects are retried alone in a batch.
CRAWL_URL_MAX_ATTEMPTS = env.int("CRAWL_URL_MAX_ATTEMPTS", default=3)
# How long a crawl task waits for a database that went away (with backoff, at most 5 s between
# looks) before it lets the sweep take over.
CRAWL_OUTAGE_SECONDS = env.float("CRAWL_OUTAGE_SECONDS", default=900.0)
# How often a running batch looks for a cancel (off the event loop, between pages).
CRAWL_CANCEL_CHECK_SECONDS = env.float("CRAWL_CANCEL_CHECK_SECONDS", default=0.5)
# The Celery queue of crawl tasks: dedicated crawler workers run `celery worker -Q <it>`.
CRAWL_QUEUE = env.str("CRAWL_QUEUE", default="celery")
CRAWL_PROGRESS_INTERVAL = env.float("CRAWL_PROGRESS_INTERVAL", default=0.25)
# Per-URL events (page errors, refusals) kept per crawl; beyond it they are only counted.
CRAWL_MAX_URL_EVENTS = env.int("CRAWL_MAX_URL_EVENTS", default=500)
# Bounds on user rules (docs/crawling.md, "Hostile rules"): rules_parse and source validation
# refuse rules beyond them, naming the path. Regexes run on RE2 (linear time).
RULES_MAX_REGEX_LENGTH = env.int("RULES_MAX_REGEX_LENGTH", default=1000)  # characters
RULES_MAX_SELECTOR_LENGTH = env.int("RULES_MAX_SELECTOR_LENGTH", default=1000)  # characters
RULES_MAX_FIELDS = env.int("RULES_MAX_FIELDS", default=50)
RULES_MAX_SELECTORS = env.int("RULES_MAX_SELECTORS", default=20)  # follow and items, each
RULES_MAX_PATTERNS = env.int("RULES_MAX_PATTERNS", default=20)  # include/exclude_patterns, each
# Extraction of one page runs in a child process: past this budget it stops between steps (and
# is killed CRAWL_EXTRACT_KILL_GRACE seconds later if one step overruns); the page fails with
# class extract_timeout.
CRAWL_EXTRACT_BUDGET_SECONDS = env.float("CRAWL_EXTRACT_BUDGET_SECONDS", default=2.0)
CRAWL_EXTRACT_KILL_GRACE = env.float("CRAWL_EXTRACT_KILL_GRACE", default=1.0)
# A preview's extraction is killed after this long (400 naming the step); at most
# PREVIEW_MAX_CONCURRENT previews run at once per web process (more: 503 "busy").
PREVIEW_TIMEOUT_SECONDS = env.float("PREVIEW_TIMEOUT_SECONDS", default=10.0)
PREVIEW_MAX_CONCURRENT = env.int("PREVIEW_MAX_CONCURRENT", default=2)
CRAWL_EVENT_SUBSCRIBERS: list[str] = [
    "notifications.subscribers.crawl_event",
    "analytics.subscribers.crawl_event",
]
# Analytics (docs/analytics.md): how long answers stay cached (0: no cache); the longest window.
ANALYTICS_CACHE_SECONDS = env.int("ANALYTICS_CACHE_SECONDS", default=300)
ANALYTICS_MAX_DAYS = env.int("ANALYTICS_MAX_DAYS", default=366)
# The currency analytics adds amounts up in (ISO 4217): high-value and top-departments sum, and
# compare with min_amount, only amounts in it or with no currency named (a board's local money);
# /api/v1/analytics/procurement/ sums every currency apart. Changing it: analytics_rebuild.
ANALYTICS_CURRENCY = env.str("ANALYTICS_CURRENCY", default="KRW").upper()
# Notifications (docs/notifications.md): links in emails and webhooks start with NOTIFY_SITE_URL;
# email goes through Django's backend (console unless EMAIL_BACKEND says otherwise), sent by a
# task: SMTP errors are retried EMAIL_MAX_ATTEMPTS times in all, after EMAIL_BACKOFF_SECONDS *
# 2^(n-1), then dead; an SMTP conversation step times out after EMAIL_TIMEOUT seconds. Webhooks are
# retried WEBHOOK_MAX_ATTEMPTS times in all, after WEBHOOK_BACKOFF_SECONDS * 2^(n-1), then dead.
NOTIFY_SITE_URL = env.str("NOTIFY_SITE_URL", default="")
NOTIFY_FROM_EMAIL = env.str("NOTIFY_FROM_EMAIL", default="forest@localhost")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=4)
EMAIL_BACKOFF_SECONDS = env.float("EMAIL_BACKOFF_SECONDS", default=60.0)
# An email still due this long after its time lost its task (worker died): beat re-sends it.
EMAIL_SWEEP_GRACE_SECONDS = env.float("EMAIL_SWEEP_GRACE_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE["notifications-email-sweep"] = {
    "task": "notifications.email_sweep",
    "schedule": env.float("EMAIL_SWEEP_INTERVAL", default=60.0),
}
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_BACKOFF_SECONDS = env.float("WEBHOOK_BACKOFF_SECONDS", default=30.0)
WEBHOOK_BACKOFF_MAX_SECONDS = env.float("WEBHOOK_BACKOFF_MAX_SECONDS", default=3600.0)
# A delivery still due this long after its time lost its task (worker died): beat re-sends it.
WEBHOOK_SWEEP_GRACE_SECONDS = env.float("WEBHOOK_SWEEP_GRACE_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE["notifications-webhook-sweep"] = {
    "task": "notifications.webhook_sweep",
    "schedule": env.float("WEBHOOK_SWEEP_INTERVAL", default=60.0),
}
# Live streams (docs/live.md): SSE keep-alive comments; how often an open crawl's stream re-reads
# the log as a safety net; the pause before re-subscribing after a channel layer failure.
STREAM_HEARTBEAT_SECONDS = env.float("STREAM_HEARTBEAT_SECONDS", default=15.0)
STREAM_CHECK_SECONDS = env.float("STREAM_CHECK_SECONDS", default=5.0)
STREAM_RETRY_SECONDS = env.float("STREAM_RETRY_SECONDS", default=1.0)

# --- Auth, API -----------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    # Bearer first: an unauthenticated request gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crawls.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "crawls.api.pagination.KeysetPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "crawls.api.throttles.CallerRateThrottle",
        "crawls.api.throttles.WorkspaceRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "caller": env.str("API_RATE_CALLER", default="1200/min"),
        "workspace": env.str("API_RATE_WORKSPACE", default="6000/min"),
        "crawl_create": env.str("API_RATE_CRAWL_CREATE", default="30/min"),
    },
    "EXCEPTION_HANDLER": "crawls.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Backpressure: crawls queued or running at once per workspace; more answer 429.
CRAWL_MAX_ACTIVE_PER_WORKSPACE = env.int("CRAWL_MAX_ACTIVE_PER_WORKSPACE", default=5)
SPECTACULAR_SETTINGS = {
    "TITLE": "Forest API",
    "DESCRIPTION": "Crawl and monitor public notice boards.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `kind` and a `status`: the source's kind and the bid's status get
    # names of their own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "SourceKindEnum": "crawls.models.Source.Kind",
        "BidStatusEnum": "crawls.models.Bid.Status",
        # The crawl status is in two components (Crawl, QualityTrend): one name for its enum.
        "CrawlStatusEnum": "crawls.models.Crawl.Status",
    },
}

# --- Request limits ------------------------------------------------------------------------------

# Bodies: larger answers 413 (the API's envelope on /api/, a page elsewhere); more form fields
# than DATA_UPLOAD_MAX_NUMBER_FIELDS answers 400. A path and query string longer than
# REQUEST_MAX_URL_LENGTH answers 414. JSON nested deeper than JSON_MAX_DEPTH answers 400, in
# request bodies and in JSON typed into forms (rules, alert filters). docs/api.md, "Limits".
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=1000)
REQUEST_MAX_URL_LENGTH = env.int("REQUEST_MAX_URL_LENGTH", default=8192)
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=32)
# What one source may hold (crawls.services.source_clean: the API, the dashboard, the admin).
SOURCE_MAX_START_URLS = env.int("SOURCE_MAX_START_URLS", default=100)
SOURCE_MAX_URL_LENGTH = env.int("SOURCE_MAX_URL_LENGTH", default=2048)
SOURCE_MAX_ALLOWED_HOSTS = env.int("SOURCE_MAX_ALLOWED_HOSTS", default=100)
SOURCE_MAX_RULES_BYTES = env.int("SOURCE_MAX_RULES_BYTES", default=64 * 1024)  # as JSON
# What one alert rule's filter may hold (notifications.services.alert_filter_errors).
ALERT_FILTER_MAX_VALUES = env.int("ALERT_FILTER_MAX_VALUES", default=100)  # per parameter
ALERT_FILTER_MAX_LENGTH = env.int("ALERT_FILTER_MAX_LENGTH", default=1000)  # per value
# PostgreSQL or Redis unreachable: 503 with this Retry-After (project/outage.py).
OUTAGE_RETRY_AFTER_SECONDS = env.int("OUTAGE_RETRY_AFTER_SECONDS", default=5)
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "crawls.api.parsers.BoundedJSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]
# Every operation documents 429 and 503 (and 413 when it takes a body): one hook, not each view.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "crawls.api.schema.document_shared_errors",
]
MIDDLEWARE = [
    *MIDDLEWARE[:1],  # the request id first: refusals are logged with it
    "project.http.RequestLimitsMiddleware",
    "project.http.OutageMiddleware",
    *MIDDLEWARE[1:],
]

# --- HTTP security -------------------------------------------------------------------------------

# HTTPS=true when Forest is served over TLS (production): secure cookies, redirects and HSTS.
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP inside the network
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Static files, i18n --------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Logging -------------------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# Readable lines at a terminal (the handler writes to stderr), JSON lines elsewhere; `manage.py run`
# decides for its children, whose output goes through pipes.
LOG_FORMAT = env.str("LOG_FORMAT", default=default_format(debug=DEBUG, stream=sys.stderr))
LOGGING = logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)

# --- Apprise channels -----------------------------------------------------------------------------
# Apprise channels (docs/notifications.md, "Channels"): the schemes users may save (no local or
# OS plugins: desktop, syslog, file...), a timeout per connect and read, retries like webhooks
# (CHANNEL_MAX_ATTEMPTS in all, after CHANNEL_BACKOFF_SECONDS * 2^(n-1), capped), then dead.
CHANNEL_SERVICES = env.list(
    "CHANNEL_SERVICES",
    default=[
        "slack", "discord", "tgram", "workflow", "workflows", "ntfy", "ntfys",
        "matrix", "matrixs", "json", "jsons", "form", "forms",
    ],
)  # fmt: skip
CHANNEL_TIMEOUT_SECONDS = env.float("CHANNEL_TIMEOUT_SECONDS", default=10.0)
CHANNEL_MAX_ATTEMPTS = env.int("CHANNEL_MAX_ATTEMPTS", default=6)
CHANNEL_BACKOFF_SECONDS = env.float("CHANNEL_BACKOFF_SECONDS", default=30.0)
CHANNEL_BACKOFF_MAX_SECONDS = env.float("CHANNEL_BACKOFF_MAX_SECONDS", default=3600.0)
CHANNEL_SWEEP_GRACE_SECONDS = env.float("CHANNEL_SWEEP_GRACE_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE["notifications-channel-sweep"] = {
    "task": "notifications.channel_sweep",
    "schedule": env.float("CHANNEL_SWEEP_INTERVAL", default=60.0),
}
# Apprise's own log lines may quote a URL's secrets: they go nowhere but to the capture that
# channels.channel_send redacts into last_error.
LOGGING["handlers"]["null"] = {"class": "logging.NullHandler"}
LOGGING["loggers"]["apprise"] = {"handlers": ["null"], "level": "WARNING", "propagate": False}

# --- Removed notices ------------------------------------------------------------------------------

# A bid not seen by this many complete crawls of its source in a row is marked removed
# (crawls.engine.presence, docs/crawling.md "Removed notices").
BID_REMOVED_AFTER_CRAWLS = env.int("BID_REMOVED_AFTER_CRAWLS", default=2)
if BID_REMOVED_AFTER_CRAWLS < 1:
    raise ImproperlyConfigured("BID_REMOVED_AFTER_CRAWLS must be at least 1")

# --- Crawl-event subscribers: at-least-once delivery (crawls/subscribers.py) ----------------------
# Each subscriber keeps its position in each crawl's log and catches up (docs/architecture.md,
# "Events and subscribers"). The list can come from the environment (comma-separated dotted
# paths: tests put a fault subscriber first). Beat's catch-up runs every
# SUBSCRIBER_CATCH_UP_SECONDS over the crawls active or finished within
# SUBSCRIBER_CATCH_UP_WINDOW_SECONDS (older ones are never replayed, e.g. after an upgrade).
CRAWL_EVENT_SUBSCRIBERS = env.list("CRAWL_EVENT_SUBSCRIBERS", default=CRAWL_EVENT_SUBSCRIBERS)
SUBSCRIBER_CATCH_UP_SECONDS = env.float("SUBSCRIBER_CATCH_UP_SECONDS", default=5.0)
SUBSCRIBER_CATCH_UP_WINDOW_SECONDS = env.int("SUBSCRIBER_CATCH_UP_WINDOW_SECONDS", default=6 * 3600)
CELERY_BEAT_SCHEDULE["crawls-subscribers-catch-up"] = {
    "task": "crawls.subscribers_catch_up",
    "schedule": SUBSCRIBER_CATCH_UP_SECONDS,
}

# --- Extraction quality ---------------------------------------------------------------------------

# Extraction quality (crawls.engine.quality, docs/quality.md). QUALITY_COLLECT=false turns the
# per-batch counters off (the crawl benchmark's peer run); every crawl then ends without checks.
QUALITY_COLLECT = env.bool("QUALITY_COLLECT", default=True)
# The report compares a crawl with the last this-many crawls of its source that succeeded.
QUALITY_HISTORY_CRAWLS = env.int("QUALITY_HISTORY_CRAWLS", default=5)
# Defaults of the checks; Source.quality_thresholds overrides them one by one (null: check off).
QUALITY_THRESHOLDS = {
    "coverage_drop_points": env.float("QUALITY_COVERAGE_DROP_POINTS", default=20.0),
    "items_ratio_min": env.float("QUALITY_ITEMS_RATIO_MIN", default=0.5),
    "required_failure_pct": env.float("QUALITY_REQUIRED_FAILURE_PCT", default=5.0),
    "empty_item_page_pct": env.float("QUALITY_EMPTY_ITEM_PAGE_PCT", default=10.0),
    "min_history": env.int("QUALITY_MIN_HISTORY", default=1),
    # The two share checks (%) judge only crawls that tried at least this many items.
    "min_items": env.int("QUALITY_MIN_ITEMS", default=20),
}

# --- Alert digests and deadline reminders ---------------------------------------------------------
# Alert digests and deadline reminders (docs/notifications.md): how often beat sends the due
# hourly/daily digests, and looks for deadlines within the rules' remind_days.
CELERY_BEAT_SCHEDULE["notifications-digest-send"] = {
    "task": "notifications.digest_send",
    "schedule": env.float("DIGEST_SEND_INTERVAL", default=300.0),
}
CELERY_BEAT_SCHEDULE["notifications-reminders-send"] = {
    "task": "notifications.reminders_send",
    "schedule": env.float("REMINDERS_SEND_INTERVAL", default=900.0),
}

# --- Serving: nginx in front, gunicorn for HTTP, daphne for streams (project/serving.py) ----------
# Pages and the API from gunicorn, WebSockets and the SSE stream from daphne, one reverse proxy in
# front (project/serving.py; docs/operations.md, "Serving"). The proxy's X-Forwarded-For is
# believed only from TRUSTED_PROXIES (addresses or networks); the throttles then count the client
# the proxy saw, and a client reaching gunicorn or daphne directly cannot name another address
# (the middleware removes the header from every request: DRF's get_ident reads REMOTE_ADDR).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
MIDDLEWARE = ["project.forwarded.ForwardedForMiddleware", *MIDDLEWARE]
# gunicorn's workers and threads under `manage.py run` (docs/performance.md: the measured shape).
WEB_WORKERS = env.int("WEB_WORKERS", default=2)
WEB_THREADS = env.int("WEB_THREADS", default=1)  # 1: the sync worker; above 1: gthread

# --- Runs per crawl -------------------------------------------------------------------------------
# Runs (Celery tasks, each its own process) that share a crawl started without a count
# (crawl_start workers=None). 0, the default, sizes it from the machine: one run per two cores
# (a run keeps about two busy: its process and its extraction sandbox, and PostgreSQL needs its
# share), at most the crawl workers' pool size (CRAWL_WORKER_POOL; unset: Celery's default, the
# CPU count). On 2 cores one run beat two (docs/performance.md).
CRAWL_WORKER_POOL = env.int("CRAWL_WORKER_POOL", default=0)


def crawl_runs_default(cores: int, pool: int) -> int:
    """Runs per crawl on `cores` cores with crawl workers of `pool` processes (0: cores)."""
    return max(1, min(pool or cores, cores // 2))


CRAWL_WORKERS_PER_CRAWL = env.int("CRAWL_WORKERS_PER_CRAWL", default=0) or crawl_runs_default(
    os.cpu_count() or 1, CRAWL_WORKER_POOL
)

# --- Tracing (OpenTelemetry) ----------------------------------------------------------------------
# Distributed tracing (project/tracing.py, docs/tracing.md): off unless an OTLP/HTTP endpoint is
# set (e.g. http://localhost:4318; spans go to <endpoint>/v1/traces). Each process names itself
# forest-<role> (web, worker, beat) unless OTEL_SERVICE_NAME is set. The SDK reads the rest of its
# OTEL_* variables itself (OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*).
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="")
# The crawler's own HTTP requests as spans too (the aiohttp client instrumentation: a span per
# request, retries and redirects apart, and a traceparent header sent to the crawled site). Off:
# each page's crawl.page span carries host, status and bytes, and tracing costs a crawl about a
# quarter as much (docs/performance.md, "Tracing").
TRACING_CRAWL_HTTP_SPANS = env.bool("TRACING_CRAWL_HTTP_SPANS", default=False)

# --- Importing bids -------------------------------------------------------------------------------
# Importing bids (docs/imports.md): a file over IMPORT_MAX_BYTES answers 413, one of more than
# IMPORT_MAX_ROWS records 400. Files of at most IMPORT_SYNC_MAX_ROWS records are imported in the
# request (201); larger ones are kept in IMPORT_DIR (shared by web and workers) and imported by
# a Celery task (202, then GET the job for its progress). Rows are stored IMPORT_BATCH at a time
# (one transaction each); a job keeps its first IMPORT_MAX_ERRORS errors. A line longer than
# IMPORT_MAX_LINE_CHARS is an error; a header or an object of more than IMPORT_MAX_FIELDS
# columns/keys, or JSON nested deeper than JSON_MAX_DEPTH, is refused.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=1_000_000)
IMPORT_SYNC_MAX_ROWS = env.int("IMPORT_SYNC_MAX_ROWS", default=2000)
IMPORT_BATCH = env.int("IMPORT_BATCH", default=1000)
IMPORT_MAX_ERRORS = env.int("IMPORT_MAX_ERRORS", default=100)
IMPORT_MAX_LINE_CHARS = env.int("IMPORT_MAX_LINE_CHARS", default=1_000_000)
IMPORT_MAX_FIELDS = env.int("IMPORT_MAX_FIELDS", default=200)
IMPORT_DIR = Path(env.str("IMPORT_DIR", default=str(BASE_DIR / "var" / "imports")))
# An import job run by a worker holds a lease renewed by each stored batch (docs/imports.md,
# "When a worker dies"). One whose heartbeat is older than IMPORT_STALL_SECONDS is taken over (by
# its task delivered again, or by the task the sweep sends: crawls.sweep, every
# CRAWL_SWEEP_INTERVAL) and goes on from its last stored batch; a queued one that old is sent
# again. After IMPORT_MAX_TAKEOVERS takeovers the job fails.
IMPORT_STALL_SECONDS = env.int("IMPORT_STALL_SECONDS", default=180)
IMPORT_MAX_TAKEOVERS = env.int("IMPORT_MAX_TAKEOVERS", default=5)

# --- Row-level security ------------------------------------------------------------------------
# PostgreSQL row-level security behind the application's scoping (docs/tenancy.md). DATABASE_URL
# is the application's role; DATABASE_OWNER_URL, when given, the owner of the tables, which
# `manage.py migrate` (and dbshell) connect as. DATABASE_RLS=on: statements see only the rows of
# the scope their request, consumer or task took (project/dbscope.py); off: every connection
# takes the system scope. It only binds when the application's role is neither a superuser nor
# BYPASSRLS (`manage.py check --database default` warns otherwise). Default: on where both roles
# are given (DATABASE_OWNER_URL: the embedded defaults, docker-compose), off with one URL.
DATABASE_OWNER_URL = env.str("DATABASE_OWNER_URL", default="")
DATABASE_RLS = env.bool("DATABASE_RLS", default=bool(DATABASE_OWNER_URL))
DATABASE_APP_ROLE = DATABASES["default"]["USER"]
# manage.py migrate (and dbshell) connect as the owner, on purpose (manage.py sets it).
DATABASE_AS_OWNER = bool(DATABASE_OWNER_URL) and env.bool("FOREST_DB_AS_OWNER", default=False)
if DATABASE_AS_OWNER:
    DATABASES["default"] = database_config(DATABASE_OWNER_URL)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "project.dbscope.ScopeMiddleware",
)
