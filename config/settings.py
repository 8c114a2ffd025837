"""Settings, read from the environment; every default is the embedded one (SQLite,
in-process tasks), so a fresh clone runs with nothing configured.

Environment:
    DATABASE_URL        e.g. postgres://postgres@127.0.0.1:5432/test (default: SQLite in var/)
    CELERY_BROKER_URL   e.g. redis://127.0.0.1:6379/0 (default: tasks run in-process)
    CACHE_URL           e.g. redis://127.0.0.1:6379/1: the cache the join rate limit counts in; every
                        server process must share it (default: in-process memory, fine for one process)
    MULTIVIZ_JOIN_RATE  new enrolments allowed per client address (default: 20/h; raise it for a lab
                        session where everyone shares one address)
    MULTIVIZ_LIVE_SOG_RATE  new live second-order gradients per enrolment (and per researcher),
                        counted in the cache (default: 10/m; cached word sets are not counted)
    MULTIVIZ_LIVE_SOG_KEEP  live second-order gradients kept per item, the least recently shown
                        dropped first (default: 32)
    MULTIVIZ_ASSET_KEY_SECONDS  how long the key of an annotator's image URL lets it be served without
                        a database query (default: 21600, 6 h; then the full check serves it)
    MULTIVIZ_TRUSTED_PROXIES  proxies in front of the server that append to X-Forwarded-For
                        (default: 0, the client address is the connection's)
    CELERY_TASK_DEFAULT_QUEUE  the queue tasks go to and workers read (default: celery)
    MULTIVIZ_TORCH_THREADS     torch threads per Celery worker process (default: 1)
    DJANGO_SECRET_KEY   required when DJANGO_DEBUG=0
    DJANGO_DEBUG        1 (default) or 0
    DJANGO_ALLOWED_HOSTS comma-separated (default: localhost, 127.0.0.1)
    DJANGO_SSL_REDIRECT, DJANGO_HSTS_SECONDS, DJANGO_HSTS_SUBDOMAINS, DJANGO_HSTS_PRELOAD  HTTPS when DEBUG=0
    MULTIVIZ_DATA_DIR   where bundles, caches and the demo live (default: var/)
    MULTIVIZ_LOGIN_FAILURE_LIMIT    wrong passwords before an account, or an address, is locked out (default: 5)
    MULTIVIZ_LOGIN_COOLOFF_MINUTES  how long a lockout lasts (default: 15)
    MULTIVIZ_LOG_LEVEL  the least level logged to stderr, one JSON object per line (default: INFO)
    SENTRY_DSN          report server errors to this Sentry project (default: none, nothing is sent)
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("MULTIVIZ_DATA_DIR", BASE_DIR / "var"))

DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]
SILENCED_SYSTEM_CHECKS: list[str] = []
if not DEBUG:
    # production is served over HTTPS (behind a proxy that sets X-Forwarded-Proto)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SSL_REDIRECT", "1") == "1"
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(60 * 60 * 24 * 30)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("DJANGO_HSTS_SUBDOMAINS", "1") == "1"
    # HSTS preload is a request to browser vendors to hard-code the domain: the domain
    # owner's decision (DJANGO_HSTS_PRELOAD=1), not an installation default.
    SECURE_HSTS_PRELOAD = os.environ.get("DJANGO_HSTS_PRELOAD", "0") == "1"
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS.append("security.W021")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_ratelimit",
    "axes",
    "csp",
    "studies",
    "annotations",
]

MIDDLEWARE = [
    "config.request_log.RequestIdMiddleware",  # first: every log record of the request carries its id
    # our 404/500 pages with DEBUG on too (the demo); early, so the others' process_exception go first
    "config.error_pages.FriendlyErrorPagesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "studies.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: it turns a lockout into its answer
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
    "default": dj_database_url.config(
        # persistent connections, checked before reuse: after a database restart the next
        # request reconnects instead of failing on a dead connection
        default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}", conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # a database that does not answer fails the request in seconds (the annotator gets the
    # retry page) instead of hanging it
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    if "DATABASE_URL" not in os.environ:
        DATA_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default lives there; a fresh clone has none
    # wait for a writer instead of failing at once; tests get a file database (an in-memory
    # one locks whole tables, which a threaded test server's parallel requests run into)
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # a transaction takes the write lock when it begins: read-then-write transactions (a join
    # picking the least-filled condition) run one at a time instead of failing with "locked"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}

# django-axes refuses a locked-out login before any password is hashed
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # basic auth first: DRF answers a request without valid credentials with the first class's
    # challenge, a 401 with WWW-Authenticate: Basic (a session has none, which made it a 403)
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotations.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # bodies nested too deeply or too large are refused in JSON (4xx), not with a 500 or an HTML page
    "DEFAULT_PARSER_CLASSES": ["annotations.parsing.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "EXCEPTION_HANDLER": "annotations.parsing.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MultiViz Studies API",
    "DESCRIPTION": "Studies, conditions, items, enrolments, responses, metrics and exports. Researchers "
                   "authenticate; annotators use their enrolment token.",
    "VERSION": "1",
}

# Celery: real workers when a broker is configured, in-process otherwise.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
# Without a broker, a long task started from a page (the model debugging report) runs in a
# thread of the web process, so the page answers at once and shows its progress; tests turn
# it off to run such tasks inline.
EAGER_TASKS_IN_THREAD = True
# Workers and the commands that send them work agree on a queue (tests use their own).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
LOGIN_URL = "login"  # the platform's own page (the admin's asks for a staff account)
LOGIN_REDIRECT_URL = "studies:study-list"
LOGOUT_REDIRECT_URL = "login"
# Database sessions that treat a forged key with a NUL character as no session (not a 500).
SESSION_ENGINE = "config.sessions"

# An expired or missing CSRF token: a page that says what to do, not Django's bare 403.
CSRF_FAILURE_VIEW = "annotations.annotate.csrf_failure"

# The cache: shared (Redis) when CACHE_URL is set, in-process memory otherwise.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "multiviz", "TIMEOUT": 300}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Joining a study is rate limited per client address (django-ratelimit counts in the cache).
MULTIVIZ_JOIN_RATE = os.environ.get("MULTIVIZ_JOIN_RATE", "20/h")
MULTIVIZ_TRUSTED_PROXIES = int(os.environ.get("MULTIVIZ_TRUSTED_PROXIES", "0"))
# Live second-order gradients: new word sets per enrolment (or researcher), and how many are kept per item.
MULTIVIZ_LIVE_SOG_RATE = os.environ.get("MULTIVIZ_LIVE_SOG_RATE", "10/m")
MULTIVIZ_LIVE_SOG_KEEP = int(os.environ.get("MULTIVIZ_LIVE_SOG_KEEP", "32"))
# Keys of annotators' image URLs expire (revoked sooner when the enrolment goes or its condition changes).
MULTIVIZ_ASSET_KEY_SECONDS = int(os.environ.get("MULTIVIZ_ASSET_KEY_SECONDS", str(6 * 3600)))
RATELIMIT_FAIL_OPEN = True  # a cache that does not answer lets joins through (and it is logged)
if CACHE_URL:
    # django-ratelimit lists only django-redis as supported; Django's own Redis backend
    # increments atomically (INCR) as well
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.W001")
elif DEBUG:
    # the development server is one process, so in-process counts are the real counts; a
    # production server (several processes) must set CACHE_URL, and the check says so
    SILENCED_SYSTEM_CHECKS += ["django_ratelimit.E003", "django_ratelimit.W001"]

# Login lockout (django-axes): the login pages (/login/ and the admin's) and the API's basic auth are refused
# for a cool-off after too many wrong passwords for one account (from any address) or from one
# address (for any account); counted in the database, so every server process shares them.
AXES_FAILURE_LIMIT = int(os.environ.get("MULTIVIZ_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("MULTIVIZ_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lockout ends a cool-off after it began
AXES_CLIENT_IP_CALLABLE = "annotations.annotate.client_address"  # the address the join rate limit counts
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"

# Logs: one JSON object per line on stderr, each with the id of the request that wrote it
# (also in the response's X-Request-ID header); server errors with their traceback.
MULTIVIZ_LOG_LEVEL = os.environ.get("MULTIVIZ_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_log.RequestIdFilter"}},
    "formatters": {"json": {"()": "config.request_log.JsonLogFormatter", "timestamp": True,
                            "fmt": ["levelname", "name", "message", "request_id"]}},
    "handlers": {"stderr": {"class": "config.request_log.StderrHandler", "filters": ["request_id"],
                            "formatter": "json"}},
    "root": {"handlers": ["stderr"], "level": MULTIVIZ_LOG_LEVEL},
    # Django's own loggers write here too, instead of their plain-text console
    "loggers": {"django": {"handlers": ["stderr"], "level": MULTIVIZ_LOG_LEVEL, "propagate": False},
                # axes says "BEGIN" at every start and counts its clean-ups: only its warnings matter
                "axes": {"level": "WARNING"}},
}
# An error tracker only when SENTRY_DSN is set: without it sentry-sdk is not even started.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(dsn=SENTRY_DSN, send_default_pii=False)

# Content-Security-Policy (django-csp): scripts, styles, fonts and requests from this site only,
# no inline script, style attribute or handler (the templates have none); images may also be
# data: URLs (the live second-order gradients arrive as such).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
