"""Django settings, read from the environment (see "Configuration" in the README).

With neither DATABASE_URL nor REDIS_URL set, Metricstream runs its embedded
default: a SQLite file under var/, jobs in-process and an in-process broker in
place of Redis Pub/Sub. With both set, web and worker run as separate processes.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from metricstream.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(env_str("METRICSTREAM_VAR_DIR", "var")).resolve()

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not DATABASE_URL and not REDIS_URL

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or EMBEDDED:
        # A fixed key is acceptable only for a local, single-process trial.
        SECRET_KEY = "metricstream-embedded-insecure-key"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DATABASE_URL or REDIS_URL is set and DEBUG is off"
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "metricstream.tenants",
    "metricstream.ingest",
    "metricstream.stream",
    "metricstream.dashboard",
    "metricstream.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "metricstream.urls"
ASGI_APPLICATION = "metricstream.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "metricstream.sqlite3",
        }
    }
# Connections each process keeps in its PostgreSQL pool, at most, and how long a
# request waits for one. Under ASGI every request runs in a context of its own,
# so a persistent connection would be opened per request and outlive it (until
# PostgreSQL refuses more clients); a pool hands connections on instead.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1)
DATABASE_POOL_TIMEOUT_SECONDS = env_float("DATABASE_POOL_TIMEOUT_SECONDS", 10.0, minimum=0.1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it
    # A pooled connection is checked as it is handed out, so one that died with a
    # PostgreSQL restart is replaced rather than failing the request that gets it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": DATABASE_POOL_TIMEOUT_SECONDS,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two jobs cannot both read the
    # same last sequence number (SQLite has no SELECT ... FOR UPDATE).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Ingest -----------------------------------------------------------------
# A request body over this is refused with 413 before it is parsed: it bounds
# the memory one agent can make the web process hold.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
# Metrics per request: one request is one transaction and one SSE frame.
INGEST_MAX_METRICS = env_int("INGEST_MAX_METRICS", 5000, minimum=1)
# Timestamps further ahead than this are an agent's clock gone wrong.
INGEST_MAX_FUTURE_SECONDS = env_int("INGEST_MAX_FUTURE_SECONDS", 600, minimum=0)

# --- Jobs (Celery) ----------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
# Without Redis there is no worker: ProcessMetricSubmission runs in-process.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env_str("METRICSTREAM_QUEUE", "metricstream.ingest")
# Socket timeouts towards Redis, so a dead connection is noticed.
REDIS_SOCKET_TIMEOUT_SECONDS = env_float("REDIS_SOCKET_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# The hub PINGs its Pub/Sub connection after this long without traffic, so a
# silently dead (half-open) connection is found within this plus the timeout.
REDIS_HEALTH_CHECK_SECONDS = env_float("REDIS_HEALTH_CHECK_SECONDS", 5.0, minimum=0.1)
# Redelivery of a job whose worker died before acknowledging it. The job is
# idempotent, so an early redelivery costs work, never a duplicate.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=10)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Sweep for abandoned jobs ten times per visibility timeout (kombu's default
    # sweeps every 100 s whatever the timeout).
    "unacked_restore_interval": max(1, CELERY_VISIBILITY_TIMEOUT // 10),
    "unacked_restore_throttle": 1,
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
}
# Enqueueing from the ingest view: bounded retries so a Redis outage answers
# 503 within a second or two instead of hanging the agent.
CELERY_PUBLISH_MAX_RETRIES = env_int("CELERY_PUBLISH_MAX_RETRIES", 3, minimum=0)

# --- Stream -----------------------------------------------------------------
# A comment line this often keeps proxies from closing an idle stream and
# lets the server notice a vanished client.
STREAM_HEARTBEAT_SECONDS = env_float("STREAM_HEARTBEAT_SECONDS", 15.0, minimum=0.05)
# After this the server ends the stream; the browser reconnects and its
# session and membership are checked again.
STREAM_MAX_LIFETIME_SECONDS = env_float("STREAM_MAX_LIFETIME_SECONDS", 1800.0, minimum=1.0)
# The reconnect delay sent to browsers in the `retry:` field.
STREAM_RETRY_MILLISECONDS = env_int("STREAM_RETRY_MILLISECONDS", 2000, minimum=0)
# Frames a stream may have pending before it is treated as a slow consumer:
# its pending frames are dropped and it catches up from the database.
STREAM_QUEUE_FRAMES = env_int("STREAM_QUEUE_FRAMES", 256, minimum=1)
# The replay window: a Last-Event-ID more batches back than this, or whose next
# batch is older than this, gets `event: reset` instead of a replay.
STREAM_REPLAY_MAX_BATCHES = env_int("STREAM_REPLAY_MAX_BATCHES", 10_000, minimum=1)
STREAM_REPLAY_MAX_AGE_SECONDS = env_float("STREAM_REPLAY_MAX_AGE_SECONDS", 3600.0, minimum=1.0)
# One replay query reads at most this many batches / metrics.
STREAM_REPLAY_PAGE_BATCHES = env_int("STREAM_REPLAY_PAGE_BATCHES", 500, minimum=1)
STREAM_REPLAY_PAGE_METRICS = env_int("STREAM_REPLAY_PAGE_METRICS", 20_000, minimum=1)
# Threads (and so database connections) for the stream app's reads: auth at
# connect, replay and catch-up.
STREAM_DB_THREADS = env_int("STREAM_DB_THREADS", 4, minimum=1)
_POOLED = "pool" in DATABASES["default"].get("OPTIONS", {})
if _POOLED and STREAM_DB_THREADS >= DATABASE_POOL_MAX_SIZE:
    raise ImproperlyConfigured(
        f"DATABASE_POOL_MAX_SIZE={DATABASE_POOL_MAX_SIZE} must exceed STREAM_DB_THREADS="
        f"{STREAM_DB_THREADS}: the stream reads would take every pooled connection"
    )

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"metricstream": {"level": LOG_LEVEL, "propagate": True}},
}
