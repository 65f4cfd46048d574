"""Django settings for daemonviz, driven by environment variables (see README)."""

from pathlib import Path
from typing import Any

import dj_database_url

from daemonviz.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DAEMONVIZ_DEBUG", default=True)
# A development default keeps `make run` configuration-free; production must set its own.
SECRET_KEY = env_str("DAEMONVIZ_SECRET_KEY", "dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env_list("DAEMONVIZ_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DAEMONVIZ_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "dashboard",
]

MIDDLEWARE = [
    # /healthz, /readyz, /metrics answer probes and scrapes sent to the pod IP.
    "dashboard.metrics.ProbeHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "daemonviz.urls"
ASGI_APPLICATION = "daemonviz.asgi.application"

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
                "dashboard.context_processors.connection_states",
            ],
        },
    },
]

# SQLite by default (`make run`); DATABASE_URL (e.g. postgres://user:pw@host:5432/db) for
# the scale-out deployment, parsed by dj-database-url.
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    # conn_max_age=0: Django's advice under ASGI (sync views run in a thread pool, so
    # persistent connections would pile up); put a pooler (PgBouncer) in front if needed.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("DAEMONVIZ_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }

# REDIS_URL (redis://host:6379/0): channels-redis carries the deltas between processes, and
# the collector's snapshots, status and locks live there (dashboard/collect/scaleout.py).
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "daemonviz:asgi"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Static files are served by WhiteNoise straight from the finders (app + static/), so no
# collectstatic step is needed; a deployment that wants one sets DAEMONVIZ_STATIC_ROOT.
STATIC_ROOT = env_str("DAEMONVIZ_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# daemonviz's own knobs.
# Run the collector inside the ASGI process (the embedded default). Scale-out turns it off.
DAEMONVIZ_EMBEDDED_COLLECTOR = env_bool("DAEMONVIZ_EMBEDDED_COLLECTOR", default=True)
# How long the collector gathers changes before publishing one delta (seconds).
DAEMONVIZ_COALESCE_SECONDS = env_float("DAEMONVIZ_COALESCE_SECONDS", 0.25)
# Churn of simulated clusters, in events per minute (empty: the scenario's default).
DAEMONVIZ_SIM_CHURN = env_float("DAEMONVIZ_SIM_CHURN", 0.0) or None
# Register a simulated demo cluster on first start when no cluster exists.
DAEMONVIZ_DEMO_CLUSTER = env_bool("DAEMONVIZ_DEMO_CLUSTER", default=True)
# Key(s) encrypting uploaded kubeconfigs at rest (comma-separated: the first encrypts, all
# decrypt). Empty: a key derived from SECRET_KEY. See dashboard/clusters/crypto.py and the README.
DAEMONVIZ_ENCRYPTION_KEY = env_str("DAEMONVIZ_ENCRYPTION_KEY", "")
# Seconds the admin's checks (form validation, test connection) wait for an API server.
DAEMONVIZ_CHECK_TIMEOUT = env_float("DAEMONVIZ_CHECK_TIMEOUT", 4.0)
# Test connection makes outbound requests from the server's network on an admin's behalf:
# the whole test of one action (every selected cluster) ends after this many seconds, and
# each admin may test at most RATE clusters a minute (0: no limit), per web process.
DAEMONVIZ_CHECK_DEADLINE = env_float("DAEMONVIZ_CHECK_DEADLINE", 20.0)
DAEMONVIZ_CHECK_RATE = env_int("DAEMONVIZ_CHECK_RATE", 10)
# Scale-out (dashboard/collect/scaleout.py): the collector lock's TTL (a dead collector's clusters
# are taken over after at most this long), how often snapshots are written at most, and
# after how many seconds without a collector heartbeat the web workers call a cluster stale.
DAEMONVIZ_LOCK_TTL_SECONDS = env_float("DAEMONVIZ_LOCK_TTL_SECONDS", 15.0)
DAEMONVIZ_SNAPSHOT_SECONDS = env_float("DAEMONVIZ_SNAPSHOT_SECONDS", 1.0)
DAEMONVIZ_STALE_SECONDS = env_float("DAEMONVIZ_STALE_SECONDS", 5.0)
# How often `manage.py collect` re-reads the Cluster table (new/changed/removed clusters).
DAEMONVIZ_RECONCILE_SECONDS = env_float("DAEMONVIZ_RECONCILE_SECONDS", 5.0)
# Coverage history (dashboard/history/recorder.py): on/off, days kept (manage.py purgehistory), and
# batching: rows are written every FLUSH seconds or BATCH rows, whichever comes first.
DAEMONVIZ_HISTORY = env_bool("DAEMONVIZ_HISTORY", default=True)
DAEMONVIZ_HISTORY_DAYS = env_int("DAEMONVIZ_HISTORY_DAYS", 30)
DAEMONVIZ_HISTORY_FLUSH_SECONDS = env_float("DAEMONVIZ_HISTORY_FLUSH_SECONDS", 5.0)
DAEMONVIZ_HISTORY_BATCH = env_int("DAEMONVIZ_HISTORY_BATCH", 500)
# /metrics is open by default (Prometheus scrapes without credentials; keep it on the
# internal network). Set a token to require `Authorization: Bearer <token>`.
DAEMONVIZ_METRICS_TOKEN = env_str("DAEMONVIZ_METRICS_TOKEN", "")
# At most this many daemonviz_problem_cell series per cluster (one per problem cell, worst
# state first); the rest are counted in daemonviz_problem_cells_dropped.
DAEMONVIZ_METRICS_PROBLEM_CELLS = env_int("DAEMONVIZ_METRICS_PROBLEM_CELLS", 500)

# Wall display tokens travel in URL paths (/wall/<token>/): the loggers that log request
# paths redact them (dashboard.clusters.redact.RedactWallTokens).
_PATH_LOGGERS = (
    "django.request",
    "django.channels.server",
    "daphne.http_protocol",
    "daphne.ws_protocol",
    "daphne.server",
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"wall_tokens": {"()": "dashboard.clusters.redact.RedactWallTokens"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["wall_tokens"],
        }
    },
    "loggers": {name: {"filters": ["wall_tokens"]} for name in _PATH_LOGGERS},
    "root": {"handlers": ["console"], "level": env_str("DAEMONVIZ_LOG_LEVEL", "INFO")},
}
