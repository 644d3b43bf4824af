"""Labelloop settings. Every value comes from an environment variable (see docs/configuration.md).

Embedded default: SQLite and a filesystem Celery broker under LABELLOOP_DATA_DIR, so the app,
a worker and beat run with nothing but Python. Production: DATABASE_URL (PostgreSQL via
psycopg 3) and CELERY_BROKER_URL (Redis).
"""
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("LABELLOOP_DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Use SECRET_KEY if set; otherwise generate one on first run and keep it in DATA_DIR."""
    configured = env_str("SECRET_KEY", "")
    if configured:
        return configured
    path = DATA_DIR / "secret_key"
    if not path.exists():
        _write_private_once(path, secrets.token_urlsafe(50))
    return path.read_text().strip()


def _write_private_once(path: Path, text: str) -> None:
    """Write `path` readable by its owner only, from the first byte, and only if it does not exist.

    The file is created 0600 under a temporary name and linked into place: no moment where the key
    is readable by others or half-written, and when web, worker and beat start together the first
    link wins and every process reads that one key.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind a TLS-terminating proxy (docker-compose.yml): cookies only over HTTPS, HSTS, and plain
# HTTP redirected. Off by default so `./labelloop run` works on http://127.0.0.1.
LABELLOOP_HTTPS = env_bool("LABELLOOP_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = LABELLOOP_HTTPS
SECURE_HSTS_SECONDS = env_int("LABELLOOP_HSTS_SECONDS", 31_536_000) if LABELLOOP_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("LABELLOOP_HSTS_INCLUDE_SUBDOMAINS", True)
# Asking browsers to preload HSTS for the whole domain is hard to undo, so it is the operator's
# choice (LABELLOOP_HSTS_PRELOAD); the deploy check's reminder about it is silenced.
SECURE_HSTS_PRELOAD = env_bool("LABELLOOP_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# The header the proxy sets to say the client spoke HTTPS, e.g. X-Forwarded-Proto. Only set it
# when a proxy that overwrites this header sits in front: otherwise clients could forge it.
_proxy_ssl_header = env_str("LABELLOOP_PROXY_SSL_HEADER", "")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets served from here: the API docs work offline
    "django_celery_beat",
    "labeller",
    "feedback",
    "models_registry",
    "active_learning",
    "frontend",
]

MIDDLEWARE = [
    # First: refuses an oversized body on its declared size, before anything reads it.
    "core.middleware.BodySizeLimit",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "labeller.api.middleware.RefuseNulMiddleware",  # before a view reads a NUL into a query
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused for lockout into the 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'labelloop.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A kept connection is checked before its first use in each request (and task), so one
        # the server dropped (a PostgreSQL restart, a failover) is replaced instead of answering 500.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # transactions take the write lock up front (this is what serialises the expert queue).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so a Celery worker process can open the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test_labelloop.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Password guessing: django-axes counts failed logins per username and address (in the database, so
# every web process sees them) on the login page, the admin login and POST /api/auth/token, and
# refuses that pair, even with the right password, until the cool-off has passed. A success resets
# the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LABELLOOP_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LABELLOOP_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
# Behind trusted reverse proxies every request comes from a proxy's address: with their number set,
# the lockout and the login rate limit count the client's address from X-Forwarded-For instead.
LABELLOOP_PROXY_COUNT = env_int("LABELLOOP_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "config.lockout.client_address"
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The Docker image bakes collected static files into the image (LABELLOOP_STATIC_ROOT=/app/staticfiles).
STATIC_ROOT = Path(env_str("LABELLOOP_STATIC_ROOT", str(DATA_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve app static files even before collectstatic
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

# Uploads larger than this many bytes stream to a temporary file rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None
# Largest non-upload body (JSON: predict, feedback). Refused on its declared size by
# core.middleware.BodySizeLimit, since DRF's parsers do not apply Django's check. 1,000
# feedback events or 256 predict items with a few KiB of item data each fit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("LABELLOOP_MAX_BODY_BYTES", 10 * 1024 * 1024)

REST_FRAMEWORK = {
    # Token first: a bad, expired or revoked token is then a 401 with WWW-Authenticate, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON that nothing downstream can keep (deep nesting, NaN, 1e999, NUL) is a 400 naming its path.
    "DEFAULT_PARSER_CLASSES": [
        "labeller.api.parsers.StrictJSONParser",
        "labeller.api.parsers.StrictFormParser",
        "labeller.api.parsers.StrictMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "labeller.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exception_handler.exception_handler",
    # Product backends' project tokens are throttled per token (feedback.tokens.ProjectTokenThrottle).
    # 100 a second per token: about what two cores serve, so one backend cannot starve the rest.
    # 0, not DRF's default None: with None a client picks its own address by sending X-Forwarded-For.
    "NUM_PROXIES": LABELLOOP_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {"project_token": env_str("LABELLOOP_TOKEN_RATE", "100/s"),
                               # POST /api/auth/token per client address (labeller.api.auth.LoginRateThrottle).
                               "login": env_str("LABELLOOP_LOGIN_RATE", "20/min")},
}

# User API tokens (POST /api/auth/token, `Authorization: Token …`): django-rest-knox keeps only a
# SHA-512 digest; each token expires after this many hours and can be revoked (logout, logout-all).
LABELLOOP_API_TOKEN_TTL_HOURS = env_int("LABELLOOP_API_TOKEN_TTL_HOURS", 24)
REST_KNOX = {"TOKEN_TTL": timedelta(hours=LABELLOOP_API_TOKEN_TTL_HOURS), "AUTH_HEADER_PREFIX": "Token"}

# The throttle and the feedback-routing debounce keep counters here, shared by every web process:
# in Redis when LABELLOOP_CACHE_URL names one (several machines), otherwise in files under
# DATA_DIR/cache, which every gunicorn worker on this machine sees (per-process memory would let
# each worker count its own share, multiplying the limit by the number of workers).
_cache_url = env_str("LABELLOOP_CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "config.redis_cache.RedisCache", "LOCATION": _cache_url}
    if _cache_url else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(DATA_DIR / "cache")}
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Labelloop API",
    "DESCRIPTION": "Projects, import, the expert queue, annotations and export.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Error responses, JSON-only request bodies and the links between operations: see the module.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.postprocess"],
    "ENUM_NAME_OVERRIDES": {
        "ModelKindEnum": "models_registry.models.ModelKind",
        "VersionStatusEnum": "models_registry.models.VersionStatus",
        "ExportStatusEnum": "labeller.models.ExportStatus",
        "JobStatusEnum": "labeller.models.JobStatus",
    },
    # The bounded id converters (labeller.api.converters) are integers to clients.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "number": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    },
}

# Celery. The embedded default is kombu's filesystem transport: no broker server to install.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The transport ignores the host, but kombu warns "No hostname was supplied" each time a
    # process first connects without one (the first line `./labelloop run` printed): name one.
    if CELERY_BROKER_URL.rstrip("/") == "filesystem:":
        CELERY_BROKER_URL = "filesystem://localhost/"
    _broker_dir = Path(env_str("LABELLOOP_BROKER_DIR", str(DATA_DIR / "broker")))
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_TASK_IGNORE_RESULT = True  # progress and results live in our own tables
CELERY_TASK_DEFAULT_QUEUE = "default"
# Long jobs get their own queues, so an export or a big encode never delays a queue refresh.
CELERY_TASK_ROUTES = {
    "labeller.tasks.export_run": {"queue": "exports"},
    "labeller.tasks.encode_items": {"queue": "encode"},
    "active_learning.encoding.encode_chunk": {"queue": "encode"},
    "labeller.tasks.explain_suggestions": {"queue": "encode"},
    "labeller.tasks.refresh_priorities": {"queue": "refresh"},
    "active_learning.labels_audit": {"queue": "refresh"},
    "models_registry.tasks.train_version": {"queue": "training"},
    "feedback.tasks.monitor": {"queue": "monitoring"},
    "feedback.tasks.monitor_one": {"queue": "monitoring"},
}
LABELLOOP_WORKER_QUEUES = "default,exports,encode,refresh,training,monitoring"
CELERY_BEAT_SCHEDULE = {
    # A lost message or a killed worker never leaves a job (encode, refresh, export, training)
    # queued or running forever: core.jobs sends it again or fails it with the reason.
    "reap-stuck-jobs": {"task": "labeller.tasks.reap_stuck_jobs", "schedule": 60.0},
    # Production health per model version: drift, disagreement, alerts.
    "monitor-models": {"task": "feedback.tasks.monitor", "schedule": env_int("LABELLOOP_MONITOR_EVERY", 300)},
    # Feedback whose routing message was lost (a broker restart) is still routed.
    "route-pending-feedback": {"task": "feedback.tasks.route_all_pending", "schedule": 60.0},
    # Items an import left when its process died (SQLite imports commit batch by batch).
    "discard-abandoned-imports": {"task": "labeller.tasks.discard_abandoned_imports", "schedule": 600.0},
    "expire-idempotency-keys": {"task": "feedback.tasks.expire_idempotency_keys", "schedule": 3600.0},
    # Export files and unused dataset snapshots past their retention (disk would only grow).
    "expire-exports": {"task": "labeller.tasks.expire_exports", "schedule": 3600.0},
    "expire-snapshots": {"task": "models_registry.tasks.expire_snapshots", "schedule": 24 * 3600.0},
}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "models_registry.beat:SafeDatabaseScheduler"  # skips a schedule it cannot load
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Labelloop's own knobs.
LABELLOOP_MAX_UPLOAD_BYTES = env_int("LABELLOOP_MAX_UPLOAD_BYTES", 500 * 1024 * 1024)
LABELLOOP_IMPORT_BATCH_SIZE = env_int("LABELLOOP_IMPORT_BATCH_SIZE", 2000)
LABELLOOP_IMPORT_MAX_REPORTED_ERRORS = env_int("LABELLOOP_IMPORT_MAX_REPORTED_ERRORS", 1000)
LABELLOOP_DEFAULT_HOLD_SECONDS = env_int("LABELLOOP_DEFAULT_HOLD_SECONDS", 600)
# Find-similar keeps each searched project's vectors in memory (about 1.2 KB an item at 384 dims:
# 1.1 GiB for 1M items); past this many MiB per process the least recently searched projects go.
LABELLOOP_SIMILAR_CACHE_MB = env_int("LABELLOOP_SIMILAR_CACHE_MB", 2048)
LABELLOOP_EXPORT_DIR = Path(env_str("LABELLOOP_EXPORT_DIR", str(DATA_DIR / "exports")))
# Days an export file (and its job) is kept after it was asked for; 0 keeps them forever.
LABELLOOP_EXPORT_RETENTION_DAYS = env_int("LABELLOOP_EXPORT_RETENTION_DAYS", 7)
# Days a dataset snapshot no model version was trained on is kept; 0 keeps them forever.
LABELLOOP_SNAPSHOT_RETENTION_DAYS = env_int("LABELLOOP_SNAPSHOT_RETENTION_DAYS", 30)
# Dataset snapshots and model versions (safetensors, tokenizer, label map, manifest with checksum).
LABELLOOP_ARTEFACT_DIR = Path(env_str("LABELLOOP_ARTEFACT_DIR", str(DATA_DIR / "artefacts")))
# The folder of local models a project's base_model_path may name (the operator puts them there).
# Unset: only the bundled all-MiniLM-L6-v2. Never the artefact folder, whatever this says.
LABELLOOP_BASE_MODELS_DIR = env_str("LABELLOOP_BASE_MODELS_DIR", "")
# A remote artefact store shared by every machine (models_registry/store.py): S3-compatible object
# storage through django-storages, or a shared folder. Unset: artefacts stay in LABELLOOP_ARTEFACT_DIR.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if env_str("LABELLOOP_ARTEFACT_S3_BUCKET", ""):
    STORAGES["artefacts"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": env_str("LABELLOOP_ARTEFACT_S3_BUCKET", ""),
        "location": env_str("LABELLOOP_ARTEFACT_S3_PREFIX", "labelloop"),
        "endpoint_url": env_str("LABELLOOP_ARTEFACT_S3_ENDPOINT_URL", "") or None,  # MinIO, Ceph, R2, …
        "file_overwrite": True,
        # Credentials come from boto3's usual sources: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a role.
    }}
elif env_str("LABELLOOP_ARTEFACT_SHARED_DIR", ""):
    STORAGES["artefacts"] = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                             "OPTIONS": {"location": env_str("LABELLOOP_ARTEFACT_SHARED_DIR", "")}}
LABELLOOP_TRAINING_HEARTBEAT_TIMEOUT = env_int("LABELLOOP_TRAINING_HEARTBEAT_TIMEOUT", 300)
# Encode, refresh and export jobs: seconds without a heartbeat before the reaper counts one as stuck,
# and how many times it sends a stuck job again before failing it with the reason.
LABELLOOP_JOB_HEARTBEAT_TIMEOUT = env_int("LABELLOOP_JOB_HEARTBEAT_TIMEOUT", 600)
LABELLOOP_JOB_MAX_ATTEMPTS = env_int("LABELLOOP_JOB_MAX_ATTEMPTS", 3)
# Items per encode chunk: a project's items are encoded in chunks of this many, each a task that any
# worker consuming the `encode` queue takes (docs/scaling.md); smaller spreads better, larger costs
# fewer messages. About 7 s of one core each with all-MiniLM-L6-v2.
LABELLOOP_ENCODE_CHUNK_ITEMS = env_int("LABELLOOP_ENCODE_CHUNK_ITEMS", 2048)
# Serving and feedback.
LABELLOOP_PREDICT_MAX_ITEMS = env_int("LABELLOOP_PREDICT_MAX_ITEMS", 256)
# The runtime that serves predictions: "onnx" (ONNX Runtime, exported in memory from the loaded
# torch model; about twice as fast for one short text on CPU) or "torch".
LABELLOOP_SERVE_RUNTIME = env_str("LABELLOOP_SERVE_RUNTIME", "onnx")
if LABELLOOP_SERVE_RUNTIME not in ("onnx", "torch"):
    raise ImproperlyConfigured("LABELLOOP_SERVE_RUNTIME must be onnx or torch")
# Serve with int8-quantised weights: faster on CPU, slightly less accurate.
LABELLOOP_SERVE_INT8 = env_bool("LABELLOOP_SERVE_INT8", False)
LABELLOOP_FEEDBACK_MAX_EVENTS = env_int("LABELLOOP_FEEDBACK_MAX_EVENTS", 1000)
LABELLOOP_FEEDBACK_ROUTE_DELAY = float(env_str("LABELLOOP_FEEDBACK_ROUTE_DELAY", "1.0"))
# Trustworthy labels (docs/label-errors.md): refit the consensus and look for label errors after
# this many new labels (and a tenth more than at the last fit), after a refresh; and demote a
# trusted feedback source to review once the estimator puts its accuracy below the floor on at
# least the basis of judged events.
LABELLOOP_LABEL_AUDIT_EVERY = env_int("LABELLOOP_LABEL_AUDIT_EVERY", 50)
LABELLOOP_TRUSTED_SOURCE_MIN_ACCURACY = float(env_str("LABELLOOP_TRUSTED_SOURCE_MIN_ACCURACY", "0.8"))
LABELLOOP_TRUSTED_SOURCE_MIN_BASIS = env_int("LABELLOOP_TRUSTED_SOURCE_MIN_BASIS", 20)
# Alerts are POSTed only to these hosts, and never to private addresses unless allowed.
LABELLOOP_WEBHOOK_ALLOWED_HOSTS = [h.lower() for h in env_list("LABELLOOP_WEBHOOK_ALLOWED_HOSTS", [])]
LABELLOOP_WEBHOOK_ALLOW_PRIVATE = env_bool("LABELLOOP_WEBHOOK_ALLOW_PRIVATE", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes logs every successful login's reset of the failure count at INFO.
    "loggers": {"axes": {"level": "WARNING"}},
}
