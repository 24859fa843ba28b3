"""Settings of the Model Registry: one module, configured from the environment.

With no environment at all the service runs in its embedded mode: SQLite in ``data/``, a local
memory cache and a filesystem Celery broker, so that ``make run`` works on a fresh machine.
Production sets ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` and ``SECRET_KEY``; see README.md.
"""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from registry_project import logs
from registry_project.env import env_bool, env_float, env_int, env_list, env_networks, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("REGISTRY_DATA_DIR", str(BASE_DIR / "data")) or BASE_DIR / "data")

VERSION = "0.1.0"

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_secret(
    "SECRET_KEY",
    debug=DEBUG,
    development_value="dev-insecure-model-registry-key-do-not-use-in-production",
    purpose="it signs sessions and local tokens and derives the keys that encrypt stored credentials",
)
# Old keys stay readable after a rotation: encrypted fields and signed values try each of these.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

# Salt(s) for the Fernet keys derived from SECRET_KEY by django-fernet-encrypted-fields.
# The first one encrypts; all of them decrypt, so a salt can be rotated like the key.
SALT_KEY = env_list("FIELD_ENCRYPTION_SALT", ["model-registry-field-encryption"])

JWT_SECRET = env_secret(
    "JWT_SECRET",
    debug=DEBUG,
    development_value="dev-insecure-jwt-secret-do-not-use-in-production",
    purpose="it verifies the platform's tokens",
)
JWT_ALGORITHM = env_str("JWT_ALGORITHM", "HS256") or "HS256"
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "authenticated") or "authenticated"
# How platform (Supabase/GoTrue) roles map to registry roles; app_metadata.registry_role wins.
PLATFORM_ROLE_MAP: dict[str, str | None] = {
    "service_role": "admin",
    "authenticated": "viewer",
    "anon": None,
}

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "registry_project.apps.ConsoleAdminConfig",  # django.contrib.admin with the console site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "auditlog",
    "registry",
    "discovery",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before anything reads the request: oversized URIs, headers and bodies get a JSON 414/431/413.
    "registry.api.limits.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "registry_project.urls"
WSGI_APPLICATION = "registry_project.wsgi.application"
APPEND_SLASH = False

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

# --- Database ---------------------------------------------------------------------------------
# PostgreSQL URLs are served by our own backend, which keeps every table in DB_SCHEMA.
DB_SCHEMA = env_str("DB_SCHEMA", "model_registry") or "model_registry"
_DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'registry.sqlite3'}"
DATABASE_URL = env_str("DATABASE_URL", _DEFAULT_DATABASE_URL) or _DEFAULT_DATABASE_URL
try:
    _database: dict[str, Any] = dict(
        dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL this service understands: {exc}") from exc
# The password apart from the URL, so that it can come from a file (DATABASE_PASSWORD_FILE, a compose
# or Kubernetes secret) while the URL, which names no secret, stays a plain variable.
if _database_password := env_str("DATABASE_PASSWORD"):
    _database["PASSWORD"] = _database_password
if _database["ENGINE"] in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
    _database["ENGINE"] = "registry_project.db_backends.postgresql"
    _database["OPTIONS"] = {**_database.get("OPTIONS", {}), "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 5)}
    _database["SCHEMA"] = DB_SCHEMA
    _database["CONN_HEALTH_CHECKS"] = True
elif _database["ENGINE"] == "django.db.backends.sqlite3":
    # django-prometheus's instrumented SQLite backend: the same database metrics as on PostgreSQL.
    _database["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    # Several processes (web, worker, beat) share the file in the embedded mode: wait for locks. Each
    # transaction takes the write lock when it begins (IMMEDIATE): a deferred one that reads, then
    # writes while another process writes, gets "database is locked" at once, without waiting (SQLite
    # refuses the lock upgrade to avoid a deadlock); a discovery run at startup failed that way.
    _database["OPTIONS"] = {**_database.get("OPTIONS", {}), "timeout": 20, "transaction_mode": "IMMEDIATE"}
    _database["CONN_MAX_AGE"] = 0
    if _database["NAME"] and _database["NAME"] != ":memory:":
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DATABASES: dict[str, dict[str, Any]] = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CACHE_TTL_SECONDS = env_int("CACHE_TTL_SECONDS", 300, minimum=1)
# Each web process keeps copies of the cached read bodies it served, up to this many bytes, and uses
# one only while its generation is current (registry/api/responses.py); 0 turns the copies off.
CACHE_LOCAL_MAX_BYTES = env_int("CACHE_LOCAL_MAX_BYTES", 32 * 1024 * 1024, minimum=0)
if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            # django-redis with a circuit breaker: one warning per outage, no socket wait per request.
            "BACKEND": "registry.reads.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": CACHE_TTL_SECONDS,
            "KEY_PREFIX": "model-registry",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_CONNECT_TIMEOUT", 0.5),
                "SOCKET_TIMEOUT": env_float("REDIS_SOCKET_TIMEOUT", 0.5),
                # A Redis outage must degrade reads to the database, not fail them.
                "IGNORE_EXCEPTIONS": True,
                # After a Redis failure, skip Redis (answer from the database) this long before retrying.
                "RETRY_SECONDS": env_float("CACHE_RETRY_SECONDS", 5.0, minimum=0.1),
            },
        }
    }
else:
    # Embedded mode runs web, worker and beat as separate processes: a per-process memory cache
    # would let the web process serve what the worker's discovery just changed. Files are shared.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "TIMEOUT": CACHE_TTL_SECONDS,
            "KEY_PREFIX": "model-registry",
        }
    }

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

# --- Internationalisation, static files ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
# Where collectstatic writes (the image: /app/staticfiles, collected at build time).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")) or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve static files from the app directories when collectstatic has not run (embedded mode).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Request limits and error answers (docs/RELIABILITY.md) -----------------------------------
# Bodies larger than this are refused with 413 (JSON); a batch of 1,000 usage records is ~150 KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 2_621_440, minimum=1024)
# Larger URIs (path + query) are refused with 414, more or larger headers with 431, all JSON
# (registry/api/limits.py), below the WSGI server's own limits, whose answers cannot be JSON.
MAX_URI_BYTES = env_int("MAX_URI_BYTES", 8000, minimum=256)
MAX_HEADER_FIELDS = env_int("MAX_HEADER_FIELDS", 90, minimum=10)
MAX_HEADER_BYTES = env_int("MAX_HEADER_BYTES", 65536, minimum=1024)
# Sent with every 503 (a dependency down): how long a client should wait before retrying.
RETRY_AFTER_SECONDS = env_int("RETRY_AFTER_SECONDS", 5, minimum=1)

# --- Security headers for production ------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
# Served over HTTPS (docs/RELIABILITY.md, "Deployment"): these make `manage.py check --deploy` clean.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Probes and scrapers inside the network speak plain HTTP to the container: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)

# --- Celery -------------------------------------------------------------------------------------
# A discovery task gets SoftTimeLimitExceeded (the run is recorded as failed) after the soft limit,
# and its process is killed after the hard one. A run of 1,000 models takes well under a minute.
DISCOVERY_TASK_SOFT_TIME_LIMIT_SECONDS = env_int("DISCOVERY_TASK_SOFT_TIME_LIMIT_SECONDS", 600, minimum=10)
DISCOVERY_TASK_TIME_LIMIT_SECONDS = env_int(
    "DISCOVERY_TASK_TIME_LIMIT_SECONDS", DISCOVERY_TASK_SOFT_TIME_LIMIT_SECONDS + 60, minimum=20
)
if DISCOVERY_TASK_TIME_LIMIT_SECONDS <= DISCOVERY_TASK_SOFT_TIME_LIMIT_SECONDS:
    raise ImproperlyConfigured("DISCOVERY_TASK_TIME_LIMIT_SECONDS must be greater than the soft limit.")
# Without REDIS_URL the broker is kombu's filesystem transport: no server, works across processes.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
# Options of a Redis broker (the production one).
BROKER_REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {
    # A task acknowledged late (on completion) goes back to the queue when its worker died, after
    # this long: just past the discovery task's hard time limit, so it is never redelivered while
    # still running, and not an hour later.
    "visibility_timeout": DISCOVERY_TASK_TIME_LIMIT_SECONDS + 60,
    # A broker that accepts connections and never answers must not hold a request (or a worker)
    # for long: each socket operation gives up after this, and enqueueing fails with a 503.
    "socket_timeout": env_float("CELERY_BROKER_SOCKET_TIMEOUT", 3.0, minimum=0.1),
    "socket_connect_timeout": env_float("CELERY_BROKER_SOCKET_TIMEOUT", 3.0, minimum=0.1),
}
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else BROKER_REDIS_TRANSPORT_OPTIONS
)
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# django-celery-beat's database scheduler, touching a heartbeat file for the container's health check.
CELERY_BEAT_SCHEDULER = "registry_project.beat:HeartbeatScheduler"

# --- Providers and discovery --------------------------------------------------------------------
OLLAMA_URL = env_str("OLLAMA_URL")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
DISCOVERY_CONNECT_TIMEOUT = env_float("DISCOVERY_CONNECT_TIMEOUT", 5.0, minimum=0.1)
DISCOVERY_READ_TIMEOUT = env_float("DISCOVERY_READ_TIMEOUT", 30.0, minimum=0.1)
# The whole of one request (answer and body), however slowly a provider sends it; see discovery/clients/http.py.
DISCOVERY_REQUEST_DEADLINE_SECONDS = env_float("DISCOVERY_REQUEST_DEADLINE_SECONDS", 60.0, minimum=0.1)
DISCOVERY_MAX_RETRIES = env_int("DISCOVERY_MAX_RETRIES", 3, minimum=0)
# The console's "Test connection" waits in a web worker: one attempt, all of it within this bound.
SOURCE_TEST_TIMEOUT_SECONDS = env_float("SOURCE_TEST_TIMEOUT_SECONDS", 3.0, minimum=0.1)
DISCOVERY_MAX_RESPONSE_BYTES = env_int("DISCOVERY_MAX_RESPONSE_BYTES", 20 * 1024 * 1024, minimum=1024)
DISCOVERY_DEFAULT_INTERVAL_SECONDS = env_int("DISCOVERY_DEFAULT_INTERVAL_SECONDS", 3600, minimum=10)
DISCOVERY_ON_STARTUP = env_bool("DISCOVERY_ON_STARTUP", True)
# Retries of 429/5xx/timeouts back off exponentially from this base; Retry-After is honoured, both capped.
DISCOVERY_BACKOFF_SECONDS = env_float("DISCOVERY_BACKOFF_SECONDS", 1.0, minimum=0.0)
DISCOVERY_MAX_BACKOFF_SECONDS = env_float("DISCOVERY_MAX_BACKOFF_SECONDS", 30.0, minimum=0.0)
# last_seen_at is refreshed when older than this, so that an idle rerun writes nothing.
DISCOVERY_LAST_SEEN_RESOLUTION_SECONDS = env_int("DISCOVERY_LAST_SEEN_RESOLUTION_SECONDS", 3600, minimum=0)
# Where to refresh the catalogs of prices (genai-prices' published data.json) and of model facts
# (models.dev's api.json) from; empty: the snapshots bundled with the packages, nothing fetched.
CATALOG_PRICES_UPDATE_URL = env_str("CATALOG_PRICES_UPDATE_URL", "")
CATALOG_MODELS_UPDATE_URL = env_str("CATALOG_MODELS_UPDATE_URL", "")
CATALOG_REFRESH_INTERVAL_SECONDS = env_int("CATALOG_REFRESH_INTERVAL_SECONDS", 86400, minimum=60)

# --- Operations ---------------------------------------------------------------------------------
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS")  # addresses or networks: 10.0.0.0/8, 127.0.0.1
for _entry in METRICS_ALLOWED_IPS:
    try:
        ip_network(_entry, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_entry!r} is not an address or network") from exc
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN")
# A Celery worker in its own container serves its counters on this port (0: off; see docs/operations.md).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 5.0, minimum=0.1)
HEALTH_CHECK_TIMEOUT = env_float("HEALTH_CHECK_TIMEOUT", 0.8, minimum=0.05)
# Alert checks (registry/telemetry/alerts.py), run by beat every ALERT_CHECK_INTERVAL_SECONDS.
ALERT_CHECK_INTERVAL_SECONDS = env_int("ALERT_CHECK_INTERVAL_SECONDS", 60, minimum=10)
ALERT_WINDOW_MINUTES = env_int("ALERT_WINDOW_MINUTES", 60, minimum=1)
ALERT_ERROR_RATE_THRESHOLD = env_float("ALERT_ERROR_RATE_THRESHOLD", 0.05, minimum=0.0)
ALERT_MIN_REQUESTS = env_int("ALERT_MIN_REQUESTS", 20, minimum=1)  # fewer requests in the window: no verdict
ALERT_LATENCY_REGRESSION_PERCENT = env_float("ALERT_LATENCY_REGRESSION_PERCENT", 50.0, minimum=0.0)
ALERT_UNAVAILABLE_MINUTES = env_int("ALERT_UNAVAILABLE_MINUTES", 30, minimum=1)
ALERT_SOURCE_FAILURES = env_int("ALERT_SOURCE_FAILURES", 3, minimum=1)

# Retention (registry/operations/retention.py, docs/operations.md#retention): days each table keeps, 0 for ever.
# Usage: 93 days, the longest range of hour buckets a usage summary answers.
RETENTION_USAGE_DAYS = env_int("RETENTION_USAGE_DAYS", 93, minimum=0)
# Request ids under which usage was posted: a retry with one of them within this horizon is stored once.
RETENTION_USAGE_REQUEST_IDS_DAYS = env_int("RETENTION_USAGE_REQUEST_IDS_DAYS", 7, minimum=0)
# Hourly usage rollups, which every statistic reads for whole hours: statistics outlive raw rows (about 2 years).
RETENTION_USAGE_ROLLUP_DAYS = env_int("RETENTION_USAGE_ROLLUP_DAYS", 731, minimum=0)
RETENTION_PERFORMANCE_DAYS = env_int("RETENTION_PERFORMANCE_DAYS", 90, minimum=0)
RETENTION_AUDIT_DAYS = env_int("RETENTION_AUDIT_DAYS", 365, minimum=0)
RETENTION_DISCOVERY_RUNS_DAYS = env_int("RETENTION_DISCOVERY_RUNS_DAYS", 30, minimum=0)
RETENTION_RESOLVED_ALERTS_DAYS = env_int("RETENTION_RESOLVED_ALERTS_DAYS", 90, minimum=0)
RETENTION_STATUS_EVENTS_DAYS = env_int("RETENTION_STATUS_EVENTS_DAYS", 400, minimum=0)
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 5000, minimum=1)
RETENTION_INTERVAL_SECONDS = env_int("RETENTION_INTERVAL_SECONDS", 3600, minimum=60)

# Usage buffer (registry/telemetry/buffering.py, docs/operations.md#usage-while-the-database-is-away): usage
# posted while PostgreSQL cannot be reached waits in Redis (REDIS_URL) and a beat task writes it once it is back.
# Without REDIS_URL (the embedded mode) there is nowhere durable to keep it: such a post is a 503, as before.
USAGE_BUFFER_ENABLED = env_bool("USAGE_BUFFER_ENABLED", True) and bool(REDIS_URL)
# Past this many records waiting, a post is a 503 again: about 400 bytes of Redis memory a record (measured),
# so ~100 MB by default, within the compose file's 256 MB; a client keeps its retries.
USAGE_BUFFER_MAX_RECORDS = env_int("USAGE_BUFFER_MAX_RECORDS", 250_000, minimum=1)
# Posts (buffer entries) written per transaction by the drain; each holds up to 1,000 records.
USAGE_BUFFER_DRAIN_BATCH = env_int("USAGE_BUFFER_DRAIN_BATCH", 50, minimum=1)
# The buffer's own connection: the cache's connect timeout (a Redis that is down fails the post at once), and
# a longer wait for an answer than the cache's, since a buffer write that times out is a 503 where a cache
# read that times out only goes to the database (a busy Redis answered in over 0.5 s in the suite's outage test).
USAGE_BUFFER_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 0.5)
USAGE_BUFFER_SOCKET_TIMEOUT = env_float("USAGE_BUFFER_REDIS_TIMEOUT", 2.0, minimum=0.1)
USAGE_BUFFER_DRAIN_INTERVAL_SECONDS = env_int("USAGE_BUFFER_DRAIN_INTERVAL_SECONDS", 5, minimum=1)

# --- Platform compatibility (docs/platform.md) ------------------------------------------------
# "alfred": the /api/v1/ routes the platform's model router calls answer in the router's shapes.
PLATFORM_API_COMPAT = (env_str("PLATFORM_API_COMPAT", "") or "").strip().lower()
if PLATFORM_API_COMPAT not in {"", "off", "alfred"}:
    raise ImproperlyConfigured(f"PLATFORM_API_COMPAT must be empty, off or alfred; got {PLATFORM_API_COMPAT!r}.")
if PLATFORM_API_COMPAT == "off":
    PLATFORM_API_COMPAT = ""
# A capability counts as present (a flag the router reads) at this score or above.
PLATFORM_CAPABILITY_THRESHOLD = env_float("PLATFORM_CAPABILITY_THRESHOLD", 0.5, minimum=0.0)
if PLATFORM_CAPABILITY_THRESHOLD > 1:
    raise ImproperlyConfigured(f"PLATFORM_CAPABILITY_THRESHOLD must be at most 1; got {PLATFORM_CAPABILITY_THRESHOLD}.")


# Callers from these networks without a token act as the service role (reads and usage posts only).
PLATFORM_TRUSTED_NETWORKS = env_networks("PLATFORM_TRUSTED_NETWORKS")
# Reverse proxies whose X-Forwarded-For is believed; without them the socket's peer is the client.
PLATFORM_TRUSTED_PROXIES = env_networks("PLATFORM_TRUSTED_PROXIES")
# Their token-less reads are counted in memory and written this often by each web process (and at its exit).
PLATFORM_READ_COUNTS_FLUSH_SECONDS = env_float("PLATFORM_READ_COUNTS_FLUSH_SECONDS", 10.0, minimum=1.0)

# --- Audit --------------------------------------------------------------------------------------
AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_DISABLE_REMOTE_ADDR = False
AUDITLOG_STORE_JSON_CHANGES = True
# auditlog's default mask keeps half of the value; ours hides all of it.
AUDITLOG_MASK_CALLABLE = "registry.access.audit.mask_secret"

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = logs.level_from_environment()
# One JSON object a line in production; readable text while developing; no client can start a line of its own
# (registry_project/logs.py). The web server's own loggers are configured alike by server_logging.json.
LOG_FORMAT = logs.format_from_environment(debug=DEBUG)
LOGGING_CONFIG = "registry_project.logs.configure"
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": "registry_project.logs.line_formatter", "log_format": LOG_FORMAT}},
    "filters": {
        # Every line goes through the redaction of credentials in URLs (user info, ?key=...).
        "redact_credentials": {"()": "registry.catalog.credentials.RedactCredentialsFilter"},
        "disallowed_host_as_warning": {"()": "registry_project.logs.DisallowedHostAsWarning"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["redact_credentials"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Named to drop the handlers of Django's defaults: with DEBUG one writes each message again, unformatted.
        "django": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
        "django_redis": {"level": "ERROR"},
        "django.security.DisallowedHost": {"filters": ["disallowed_host_as_warning"]},
    },
}

# --- REST framework, JWT, OpenAPI ---------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    # Local tokens (simplejwt, issued by /auth/token) first, then the platform's tokens (JWT_SECRET).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.api.authentication.LocalJWTAuthentication",
        "registry.api.authentication.PlatformJWTAuthentication",
        # A staff session, only for the API docs' "Try it out" requests (they carry X-Registry-Docs).
        "registry.api.authentication.DocsSessionAuthentication",
        # Last: only a request with no Authorization header at all, from PLATFORM_TRUSTED_NETWORKS.
        "registry.api.authentication.TrustedNetworkAuthentication",
    ],
    # Closed by default: a view must at least ask for the viewer role (see registry/api/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["registry.api.permissions.IsViewer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bounded in size (DATA_UPLOAD_MAX_MEMORY_SIZE) and depth: no body can make a view fail with a 500.
    "DEFAULT_PARSER_CLASSES": ["registry.api.parsers.BoundedJSONParser"],
    # Database down -> 503 with Retry-After, body too large -> 413; both JSON (registry/api/errors.py).
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "DEFAULT_METADATA_CLASS": "registry.api.metadata.EndpointMetadata",
    # Only the token endpoints are throttled (registry/api/tokens.py); rates per client and per username.
    "DEFAULT_THROTTLE_RATES": {
        "auth-client": env_str("AUTH_THROTTLE_CLIENT_RATE", "30/minute"),
        "auth-username": env_str("AUTH_THROTTLE_USERNAME_RATE", "10/minute"),
    },
    # A client's address for throttling: REMOTE_ADDR, or X-Forwarded-For as written by this many proxies.
    # 0 ignores X-Forwarded-For, which a client can set to anything (DRF's default, None, trusts it).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
# Local users' tokens: signed with SECRET_KEY (not the platform's JWT_SECRET) and marked with our issuer,
# which is how the API tells them from platform tokens.
SIMPLE_JWT: dict[str, Any] = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_TOKEN_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env_int("JWT_REFRESH_TOKEN_HOURS", 24, minimum=1)),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "ISSUER": "model-registry",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}
# How long a local user's access (active, role) may be served from the cache; user and group
# changes drop it at once, this only bounds a change that bypassed the ORM.
USER_ACCESS_CACHE_SECONDS = env_int("USER_ACCESS_CACHE_SECONDS", 60, minimum=0)
# ... and how long each process may keep it in memory (a change made in another process shows after this).
USER_ACCESS_LOCAL_SECONDS = env_float("USER_ACCESS_LOCAL_SECONDS", 2.0, minimum=0)
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Model Registry API",
    "DESCRIPTION": (
        "Which models the platform has, where they run, what they are good at, how they perform and what they cost."
    ),
    "VERSION": VERSION,
    # 3.1: JSON Schema 2020-12, so that a mapping's keys can be constrained (propertyNames), as
    # capability names are.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components: write-only credentials and read-only fields each
    # appear only where they belong, so a client generated from the schema sends the right body.
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs' JavaScript and CSS are served by this service (drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    # "Try it out" in a staff session: every request of the docs page says it comes from the docs
    # (registry.api.authentication.DocsSessionAuthentication), then goes through drf-spectacular's
    # own interceptor, which adds the CSRF token to unsafe methods. A JS object literal: the page
    # inserts this string as is, in the scope where ``requestInterceptor`` is drf-spectacular's.
    "SWAGGER_UI_SETTINGS": """{
  "requestInterceptor": (request) => {
    request.headers["X-Registry-Docs"] = "try-it-out";
    return typeof requestInterceptor === "function" ? requestInterceptor(request) : request;
  }
}""",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Discovery runs' status shares its field name with the models' status: name its enum apart.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "discovery.models.RunStatus",
        "EvidenceSourceEnum": "registry.models.EvidenceSource",
        # ... and so does the router's model (docs/platform.md): the name it had before.
        "RegisteredModelStatusEnum": "registry.models.ModelStatus",
    },
    # /api/v1/ serves the same operations again: the schema documents each once (docs/platform.md).
    "PREPROCESSING_HOOKS": ["registry.api.platform.views.schema_without_v1"],
    # Every error an operation can answer, each with the one Error schema (registry/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.api.schema.complete_error_responses",
        # The router's shapes leave out what is unknown: optional and never null (docs/platform.md).
        "registry.api.platform.views.schema_without_nulls",
    ],
}
# /api/schema and /api/docs need a JWT like the rest of the API unless this is on (a browser cannot
# send a bearer token when it opens the docs page).
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", False)
