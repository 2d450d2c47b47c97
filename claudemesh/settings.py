"""Settings for claudemesh.

The embedded default (no environment) is one process: SQLite, the in-memory channel layer and console
e-mail. `DATABASE_URL` switches to Postgres and `REDIS_URL` to channels-redis plus a Redis cache; everything
that differs between a laptop and a deployment comes from the environment (see README, "Configuration").
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CLAUDEMESH_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _embedded_secret_key() -> str:
    """A per-install secret for the embedded mode, kept on disk so sessions survive restarts."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or os.environ.get("SECRET_KEY") or _embedded_secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Public URLs announced to peers: the web app (invite short links) and the broker WebSocket (signed into
# invites). Set, they win; unset, they follow the request or what `manage.py serve` bound (meshes/site.py).
APP_URL_EXPLICIT = bool(os.environ.get("APP_URL", "").strip())
APP_URL = (os.environ.get("APP_URL") or os.environ.get("CLAUDEMESH_SERVE_URL") or "http://localhost:8000").rstrip("/")
BROKER_WS_URL_EXPLICIT = bool(os.environ.get("BROKER_WS_URL", "").strip())
BROKER_WS_URL = os.environ.get("BROKER_WS_URL") or APP_URL.replace("http", "ws", 1) + "/ws"

# Encrypts each mesh's owner signing key and root key at rest. Defaults to a key derived from SECRET_KEY;
# set it explicitly in production so rotating SECRET_KEY does not orphan mesh keys.
MESH_KEY_ENCRYPTION_KEY = os.environ.get("MESH_KEY_ENCRYPTION_KEY", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "allauth",
    "allauth.account",
    "accounts",
    "meshes",
    "broker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "meshes.site.SiteOriginMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "claudemesh.middleware.OverloadMiddleware",
]

ROOT_URLCONF = "claudemesh.urls"
ASGI_APPLICATION = "claudemesh.asgi.application"
WSGI_APPLICATION = None

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
                "claudemesh.cli_download.install_command",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool("DB_POOL", True):
        # Every concurrent sync request runs on its own thread (Django's ASGI handler), so without a bound one burst
        # of anonymous requests opened a connection each and exhausted Postgres. The pool caps it per process: a
        # request that waits longer than DB_POOL_TIMEOUT gets a 503 (claudemesh.middleware), never a 500.
        # CONN_HEALTH_CHECKS makes the pool check each connection it hands out (one broken by a Postgres restart is
        # replaced, not handed to a request).
        DATABASES["default"].update({"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": True})
        _pool_max = max(1, env_int("DB_POOL_MAX", 20))
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env_int("DB_POOL_MIN", 2), _pool_max),
            "max_size": _pool_max,
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "3")),
        }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "db.sqlite3")),
            # Keep the connection across the broker's DB-thread hops instead of reopening it each time.
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                # IMMEDIATE avoids "database is locked" when two writers upgrade read locks at once.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and cache ---------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# The channel layer may be sharded over several Redis servers (channels-redis hashes channels and groups over
# its hosts); the cache and the shared rate limits stay on REDIS_URL.
CHANNEL_LAYER_REDIS_URLS = [url.strip() for url in os.environ.get("CHANNEL_LAYER_REDIS_URLS", REDIS_URL).split(",") if url.strip()]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # The worker's receive is a blocking BZPOPMIN of up to 5 s (channels-redis' brpop_timeout); redis-py's
                # default socket timeout is also 5 s, so an idle worker's read timed out every time and logged it.
                "hosts": [
                    {"address": url, "socket_timeout": 15, "socket_connect_timeout": 5} for url in CHANNEL_LAYER_REDIS_URLS
                ],
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 1000),
                "expiry": env_int("CHANNEL_LAYER_EXPIRY", 60),
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "claudemesh"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "claudemesh"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth (django-allauth, e-mail + password) -----------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# "none" on a laptop; "mandatory" (or "optional") in production, with real e-mail settings.
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "none")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard:home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

# --- E-mail ---------------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "claudemesh <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security (production behind TLS: set DJANGO_HTTPS=1) ----------------------------------------------
if env_bool("DJANGO_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- I18N / static --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Shared files (docs/encryption.md "Files"): ciphertext only. Under var/ by default; an S3-compatible bucket when
# FILES_S3_BUCKET is set (AWS, MinIO, R2, …: FILES_S3_ENDPOINT_URL, the usual AWS_* credentials or FILES_S3_*).
FILES_S3_BUCKET = os.environ.get("FILES_S3_BUCKET", "")
if FILES_S3_BUCKET:
    FILES_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": FILES_S3_BUCKET,
            "endpoint_url": os.environ.get("FILES_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("FILES_S3_REGION") or None,
            "access_key": os.environ.get("FILES_S3_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID"),
            "secret_key": os.environ.get("FILES_S3_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_ACCESS_KEY"),
            "location": os.environ.get("FILES_S3_PREFIX", "claudemesh-files"),
            "file_overwrite": False,
            "default_acl": None,  # private objects: bytes leave only through our signed download route
        },
    }
else:
    FILES_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                     "OPTIONS": {"location": str(VAR_DIR / "files")}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "files": FILES_STORAGE,
}
FILES_MAX_BYTES = env_int("FILES_MAX_BYTES", 50 * 1024 * 1024)  # per file, before encryption
FILES_MESH_QUOTA_BYTES = env_int("FILES_MESH_QUOTA_BYTES", 1024 * 1024 * 1024)
FILES_URL_SECONDS = env_int("FILES_URL_SECONDS", 60)  # a download URL's lifetime (§5.17)
FILES_UPLOAD_SECONDS = env_int("FILES_UPLOAD_SECONDS", 300)  # to start an upload once it is registered
FILES_EPHEMERAL_HOURS = env_int("FILES_EPHEMERAL_HOURS", 24)  # `persistent: false` files go after this
WHITENOISE_USE_FINDERS = True

# --- claudemesh limits ----------------------------------------------------------------------------------
INVITE_DEFAULT_DAYS = 7
INVITE_MAX_DAYS = 365
INVITE_MAX_USES = 1000
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# A terminal signed in with `claudemesh login` stays signed in this long (protocol.md §6.7: 30 days).
CLI_SESSION_DAYS = env_int("CLI_SESSION_DAYS", 30)
# Anonymous `POST /cli/device-code` requests per address per minute.
DEVICE_CODE_RATE_PER_MIN = env_int("DEVICE_CODE_RATE_PER_MIN", 10)
# The REST API's per-key request budget per minute (429 past it), and the SSE stream's poll interval.
API_RATE_PER_MIN = env_int("API_RATE_PER_MIN", 600)
API_STREAM_POLL_SECONDS = float(os.environ.get("API_STREAM_POLL_SECONDS", "1.0"))
API_STREAM_KEEPALIVE_SECONDS = float(os.environ.get("API_STREAM_KEEPALIVE_SECONDS", "15"))
AUDIT_PAGE_SIZE = 50

# --- Broker (docs/broker.md) ----------------------------------------------------------------------------
# Anonymous HTTP routes (claim, invite-code lookup, join) and the status hook: requests per minute per address.
ANONYMOUS_RATE_LIMIT_PER_MIN = env_int("ANONYMOUS_RATE_LIMIT_PER_MIN", 60)
HOOK_IP_RATE_LIMIT_PER_MIN = env_int("HOOK_IP_RATE_LIMIT_PER_MIN", 600)
BROKER_MAX_MESSAGE_BYTES = env_int("MAX_MESSAGE_BYTES", 65536)
BROKER_MAX_CONNECTIONS_PER_MESH = env_int("MAX_CONNECTIONS_PER_MESH", 100)
BROKER_MAX_UNANSWERED_SENDS = env_int("BROKER_MAX_UNANSWERED_SENDS", 256)  # per socket, then it is not read
BROKER_BATCH_SHARE_PER_CONNECTION = env_int("BROKER_BATCH_SHARE_PER_CONNECTION", 250)
BROKER_MAX_QUEUED_PER_RECIPIENT = env_int("BROKER_MAX_QUEUED_PER_RECIPIENT", 1000)  # per sender → recipient
BROKER_OUTBOX_MAX_FRAMES = env_int("BROKER_OUTBOX_MAX_FRAMES", 10_000)  # per socket, waiting to be written
BROKER_OUTBOX_MAX_BYTES = env_int("BROKER_OUTBOX_MAX_BYTES", 8 * 1024 * 1024)
BROKER_MAX_CONNECTIONS_PER_MEMBER = env_int("MAX_CONNECTIONS_PER_MEMBER", 10)
BROKER_MAX_CONNECTIONS_PER_IP = env_int("BROKER_MAX_CONNECTIONS_PER_IP", 20000)  # per worker process
BROKER_SEND_RATE_BURST = env_int("BROKER_SEND_RATE_BURST", 2000)
BROKER_SEND_RATE_PER_MIN = env_int("BROKER_SEND_RATE_PER_MIN", 60000)
BROKER_SHARED_RATE_LIMIT = env_bool("BROKER_SHARED_RATE_LIMIT", True)  # in Redis when REDIS_URL is set
# The send and mark SQL as prepared statements (off behind a pooler that cannot keep them, e.g. PgBouncer's
# transaction mode).
BROKER_PREPARED_STATEMENTS = env_bool("BROKER_PREPARED_STATEMENTS", True)
BROKER_MESSAGE_RETENTION_DAYS = env_int("BROKER_MESSAGE_RETENTION_DAYS", 7)
BROKER_PRESENCE_LEASE_SECONDS = env_int("BROKER_PRESENCE_LEASE_SECONDS", 45)
BROKER_HEARTBEAT_SECONDS = env_int("BROKER_HEARTBEAT_SECONDS", 10)
BROKER_WORKER_BEAT_SECONDS = float(os.environ.get("BROKER_WORKER_BEAT_SECONDS", "1"))
BROKER_WORKER_DEAD_SECONDS = float(os.environ.get("BROKER_WORKER_DEAD_SECONDS", "5"))
BROKER_SWEEP_SECONDS = float(os.environ.get("BROKER_SWEEP_SECONDS", "2"))
BROKER_HELLO_TIMEOUT_SECONDS = env_int("BROKER_HELLO_TIMEOUT_SECONDS", 30)
BROKER_BATCH_MS = float(os.environ.get("BROKER_BATCH_MS", "3"))
BROKER_RETRANSMIT_SECONDS = float(os.environ.get("BROKER_RETRANSMIT_SECONDS", "10"))
BROKER_SCHEDULER_POLL_SECONDS = float(os.environ.get("BROKER_SCHEDULER_POLL_SECONDS", "5"))
BROKER_HOOK_RATE_LIMIT_PER_MIN = env_int("HOOK_RATE_LIMIT_PER_MIN", 30)  # per pid:cwd, per worker process
# CPython thread switch interval in a broker process; 0 keeps Python's 5 ms (docs/benchmarks.md, change 8).
BROKER_SWITCH_INTERVAL_MS = float(os.environ.get("BROKER_SWITCH_INTERVAL_MS", "1"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
