"""Django settings for daemonviz, driven by environment variables (see README)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from daemonviz.env import EnvError, env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless asked for: the debug page shows settings, frames and request data, and
# `make run` is what people try first, sometimes on a shared machine. Development opts in
# with DAEMONVIZ_DEBUG=true.
DEBUG = env_bool("DAEMONVIZ_DEBUG", default=False)
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
    # Sign-in throttling: failed attempts per user and per address, lockouts, admin unlock.
    "axes",
    # The Content-Security-Policy header (Django 5.2 has none of its own; 6.0 adds one).
    "csp",
    "dashboard",
]

MIDDLEWARE = [
    # /healthz, /readyz, /metrics answer probes and scrapes sent to the pod IP.
    "dashboard.metrics.ProbeHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
            # One daphne process writes from several threads at once (history samples,
            # sessions, sign-in records, an admin save). SQLite's default (deferred
            # transactions, rollback journal, 5 s) answers "database is locked" under such
            # load; WAL lets readers go on beside the writer, IMMEDIATE takes the write lock
            # at BEGIN so a waiting writer queues (for up to `timeout`) instead of failing.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# REDIS_URL (redis://host:6379/0): channels-redis carries the deltas between processes, and
# the collector's snapshots, status and locks live there (dashboard/collect/scaleout.py).
REDIS_URL = env_str("REDIS_URL", "")
CHANNEL_LAYER_READ_TIMEOUT = 15.0  # seconds; must stay above channels-redis' brpop_timeout (5)


def redis_channel_layer(url: str) -> dict[str, Any]:
    """The channels-redis layer for REDIS_URL. Its read timeout is explicit and above the
    layer's 5 s blocking pop (BZPOPMIN): redis-py 8 reads with a 5 s socket timeout by
    default, so a web worker that got no delta for 5 s (quiet clusters, a collector failing
    over) raised TimeoutError inside a consumer, which closed its websocket
    (django/channels_redis#422)."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": CHANNEL_LAYER_READ_TIMEOUT}],
            "prefix": "daemonviz:asgi",
        },
    }


if REDIS_URL:
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# django-axes checks every authenticate() call first (so the sign-in page and the admin's
# share one throttle); the ModelBackend then checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# ---- Sign-in: local passwords, OpenID Connect, auth proxy (daemonviz/auth_settings.py).
from daemonviz import auth_settings as _auth  # noqa: E402

# django-axes' throttle stays first (above), so it sees every authenticate() call, OIDC's
# and the proxy's too; Django's plain ModelBackend gives way to LocalPasswordBackend, its
# subclass, then come the OIDC and proxy backends.
AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")
AUTHENTICATION_BACKENDS += _auth.AUTHENTICATION_BACKENDS
# Right after AuthenticationMiddleware (the proxy header needs request.user).
_after_auth = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
MIDDLEWARE[_after_auth:_after_auth] = _auth.MIDDLEWARE
DAEMONVIZ_LOCAL_LOGIN = _auth.LOCAL_LOGIN
DAEMONVIZ_ADMIN_GROUPS = _auth.ADMIN_GROUPS
DAEMONVIZ_VIEWER_GROUPS = _auth.VIEWER_GROUPS
DAEMONVIZ_OIDC_ENABLED = _auth.OIDC_ENABLED
DAEMONVIZ_OIDC_ISSUER = _auth.OIDC_ISSUER
DAEMONVIZ_OIDC_PROVIDER_NAME = _auth.OIDC_PROVIDER_NAME
DAEMONVIZ_OIDC_USERNAME_CLAIM = _auth.OIDC_USERNAME_CLAIM
DAEMONVIZ_OIDC_GROUPS_CLAIM = _auth.OIDC_GROUPS_CLAIM
DAEMONVIZ_AUTH_PROXY_HEADER = _auth.AUTH_PROXY_HEADER
DAEMONVIZ_AUTH_PROXY_GROUPS_HEADER = _auth.AUTH_PROXY_GROUPS_HEADER
DAEMONVIZ_AUTH_PROXY_TRUSTED = _auth.AUTH_PROXY_TRUSTED
globals().update(_auth.OIDC_SETTINGS)
if _auth.OIDC_ENABLED:
    INSTALLED_APPS.append("mozilla_django_oidc")
# ---- end of sign-in

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Static files are served by WhiteNoise. Without DAEMONVIZ_STATIC_ROOT straight from the
# finders (app + static/), so `make run` needs no collectstatic step. With it (the image
# sets it and runs collectstatic at build time) from WhiteNoise's compressed manifest
# storage: file names carry a content hash (cached for ever, busted by any change) and
# gzip/brotli copies are made once, at build time.
STATIC_ROOT = env_str("DAEMONVIZ_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = STATIC_ROOT is None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_ROOT
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- hardening
# Sign-in throttling (django-axes): after DAEMONVIZ_LOGIN_FAILURE_LIMIT failed sign-ins for
# one username, or from one address, further attempts for it are refused (even with the
# right password) for DAEMONVIZ_LOGIN_COOLOFF_MINUTES, or until an admin deletes the
# *Access attempt* in the admin (0 minutes: locked until then). The address is the
# client's as the server sees it: behind an ingress, daphne's --proxy-headers (as in
# deploy/Dockerfile) makes it the X-Forwarded-For address.
AXES_FAILURE_LIMIT = env_int("DAEMONVIZ_LOGIN_FAILURE_LIMIT", 5)
_COOLOFF_MINUTES = env_float("DAEMONVIZ_LOGIN_COOLOFF_MINUTES", 15.0)
AXES_COOLOFF_TIME = timedelta(minutes=_COOLOFF_MINUTES) if _COOLOFF_MINUTES > 0 else None
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The access log of attempts is what the admin shows; never the password.
AXES_SENSITIVE_PARAMETERS = ["password"]

# Served over https (DAEMONVIZ_HTTPS=true, at the ingress or here): session and CSRF
# cookies only travel over https, and browsers are told to use nothing else (HSTS).
DAEMONVIZ_HTTPS = env_bool("DAEMONVIZ_HTTPS", default=False)
SESSION_COOKIE_SECURE = DAEMONVIZ_HTTPS
CSRF_COOKIE_SECURE = DAEMONVIZ_HTTPS
SECURE_HSTS_SECONDS = env_int("DAEMONVIZ_HSTS_SECONDS", 31536000) if DAEMONVIZ_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DAEMONVIZ_HSTS_INCLUDE_SUBDOMAINS", default=False)
# A TLS-terminating ingress forwards plain http: trust its X-Forwarded-Proto (or the header
# named here) to tell an https request. Only set it behind a proxy that sets the header on
# every request (and drops the client's own), or clients could claim https.
_PROXY_SSL_HEADER = env_str("DAEMONVIZ_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.strip().upper().replace("-", "_"), "https")
    if _PROXY_SSL_HEADER.strip()
    else None
)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Never framed (clickjacking): X-Frame-Options for old browsers, frame-ancestors below.
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles from our own static files only —
# no inline <script>, no eval (htmx's allowEval is off, see templates/base.html). Inline
# style *attributes* stay allowed (style-src-attr): the grid and history draw bar heights
# and widths with them; <style> elements stay forbidden. connect-src 'self' covers the
# page's own websocket. img-src allows data: URLs (the wall's empty favicon).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # Sign-out is a form whose answer redirects to the OIDC provider's end-session
        # endpoint; browsers hold that redirect to form-action too.
        "form-action": ["'self'", *_auth.FORM_ACTION_ORIGINS],
        "frame-ancestors": ["'none'"],
    }
}
# Error pages (DEBUG on, or a mailed report) hide every local variable of functions that
# hold kubeconfig text — also when DEBUG is on (Django's default filter shows them then).
DEFAULT_EXCEPTION_REPORTER_FILTER = "dashboard.clusters.redact.AlwaysSafeExceptionReporterFilter"

# daemonviz's own knobs.
# Run the collector inside the ASGI process (the embedded default). Scale-out turns it off.
DAEMONVIZ_EMBEDDED_COLLECTOR = env_bool("DAEMONVIZ_EMBEDDED_COLLECTOR", default=True)
# When collectors publish (dashboard/collect/coalescing.py). adaptive: a change goes out
# once its source has been quiet for QUIET seconds; while changes pour in, at most BURST
# frames back to back and then one every COALESCE seconds per cluster. fixed: one frame
# every COALESCE seconds, whatever arrives (the behaviour before adaptive coalescing).
DAEMONVIZ_COALESCE = env_choice("DAEMONVIZ_COALESCE", ("adaptive", "fixed"), "adaptive")
DAEMONVIZ_COALESCE_SECONDS = env_float("DAEMONVIZ_COALESCE_SECONDS", 0.25)
DAEMONVIZ_COALESCE_BURST = env_int("DAEMONVIZ_COALESCE_BURST", 2)
DAEMONVIZ_COALESCE_QUIET_SECONDS = env_float("DAEMONVIZ_COALESCE_QUIET_SECONDS", 0.01)
if DAEMONVIZ_COALESCE_BURST < 1:
    raise EnvError(f"DAEMONVIZ_COALESCE_BURST={DAEMONVIZ_COALESCE_BURST} must be at least 1")
if min(DAEMONVIZ_COALESCE_SECONDS, DAEMONVIZ_COALESCE_QUIET_SECONDS) < 0:
    raise EnvError(
        "DAEMONVIZ_COALESCE_SECONDS and DAEMONVIZ_COALESCE_QUIET_SECONDS must not be negative"
    )
# The clusters' DNS domain, for the Service names the access paths show.
DAEMONVIZ_CLUSTER_DOMAIN = env_str("DAEMONVIZ_CLUSTER_DOMAIN", "cluster.local")
# Churn of simulated clusters, in events per minute (empty: the scenario's default).
DAEMONVIZ_SIM_CHURN = env_float("DAEMONVIZ_SIM_CHURN", 0.0) or None
# Register a simulated demo cluster on first start when no cluster exists.
DAEMONVIZ_DEMO_CLUSTER = env_bool("DAEMONVIZ_DEMO_CLUSTER", default=True)
# ... and a second, differently shaped simulated cluster beside it (the fleet view).
DAEMONVIZ_DEMO_FLEET = env_bool("DAEMONVIZ_DEMO_FLEET", default=True)
# Key(s) encrypting uploaded kubeconfigs at rest (comma-separated: the first encrypts, all
# decrypt). Empty: a key derived from SECRET_KEY. See dashboard/clusters/crypto.py and the README.
DAEMONVIZ_ENCRYPTION_KEY = env_str("DAEMONVIZ_ENCRYPTION_KEY", "")
# Initial lists and relists as WatchList streams (sendInitialEvents) where the API server
# supports them, else paginated lists (docs/list-watch.md#streaming-lists-watchlist).
DAEMONVIZ_WATCH_LIST = env_bool("DAEMONVIZ_WATCH_LIST", default=True)
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
# The interpreter's thread switch interval in seconds (Python's default is 0.005): the
# event loop serving sockets must win the interpreter lock back after every socket read and
# write from whichever thread computes (dashboard/apps.py says why).
DAEMONVIZ_SWITCH_INTERVAL = env_float("DAEMONVIZ_SWITCH_INTERVAL", 0.001)
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
    "loggers": {
        # Django's default config gives "django" its own console handler in debug mode:
        # with the root handler below every 404 was printed twice.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        **{name: {"filters": ["wall_tokens"]} for name in _PATH_LOGGERS},
        # The start-up lines a user needs are daphne.cli's "Starting server at …"; the
        # server's own (HTTP/2 extras, endpoint strings) are for debugging.
        "daphne.server": {"filters": ["wall_tokens"], "level": "WARNING"},
        # django-axes says INFO at every start and sign-in (and would clutter the CLI's
        # stderr); lockouts are WARNINGs.
        "axes": {"level": "WARNING"},
    },
    "root": {"handlers": ["console"], "level": env_str("DAEMONVIZ_LOG_LEVEL", "INFO")},
}
