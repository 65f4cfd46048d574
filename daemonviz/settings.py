"""Django settings for daemonviz, driven by environment variables (see README)."""

from pathlib import Path

from daemonviz.env import env_bool, env_float, env_list, env_str

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
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_str("DAEMONVIZ_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}

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
# decrypt). Empty: a key derived from SECRET_KEY. See dashboard/crypto.py and the README.
DAEMONVIZ_ENCRYPTION_KEY = env_str("DAEMONVIZ_ENCRYPTION_KEY", "")
# Seconds the admin's checks (form validation, test connection) wait for an API server.
DAEMONVIZ_CHECK_TIMEOUT = env_float("DAEMONVIZ_CHECK_TIMEOUT", 4.0)

# Wall display tokens travel in URL paths (/wall/<token>/): the loggers that log request
# paths redact them (dashboard.redact.RedactWallTokens).
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
    "filters": {"wall_tokens": {"()": "dashboard.redact.RedactWallTokens"}},
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
