"""Settings for the served benchmark site: the example project as it runs in production.

DEBUG off (with DEBUG on, Django keeps every SQL query of a request in memory, which would
be measured as a leak), no per-request logging, persistent connections, and on SQLite the
IMMEDIATE transaction mode so two gunicorn workers that write queue on the lock instead of
failing with "database is locked" when a read lock cannot be upgraded.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("CONN_MAX_AGE", "600")

from example_project.settings import *  # noqa: F403
from example_project.settings import DATABASES, OFFLINE_SYNC

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and os.environ.get("BENCH_PG_SYNC_COMMIT"):
    # push.py --synchronous-commit off: commits stop waiting for the WAL flush (fsync), which
    # shows how much of a write is the disk (a crash may lose the last commits, never corrupts).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c synchronous_commit={os.environ['BENCH_PG_SYNC_COMMIT']}")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 30})
    # The example site's engine queues writers on a lock file; BENCH_SQLITE_ENGINE=
    # django.db.backends.sqlite3 measures Django's own backend (SQLite's busy handler) instead.
    if os.environ.get("BENCH_SQLITE_ENGINE"):
        DATABASES["default"]["ENGINE"] = os.environ["BENCH_SQLITE_ENGINE"]

OFFLINE_SYNC = {
    **OFFLINE_SYNC,
    # As the peer (pageSize = maxTop = 1000): the v2 page is the client's $top, 50 for the JS
    # client and 1000 for the bulk loop (v2 serves $top whole up to MAX_TOP, docs/protocol.rst §3.3).
    "PAGE_SIZE": 1000,
    "MAX_TOP": 1000,
}
if os.environ.get("BENCH_QUERY_TIMEOUT_MS"):  # bench/cpu.py --callgrind: pages run ~50x slower
    OFFLINE_SYNC["QUERY_TIMEOUT_MS"] = int(os.environ["BENCH_QUERY_TIMEOUT_MS"])
if os.environ.get("BENCH_COUNT_ESTIMATE_ABOVE"):  # latency.py: the v3 first page with an estimated count
    OFFLINE_SYNC["COUNT_ESTIMATE_ABOVE"] = int(os.environ["BENCH_COUNT_ESTIMATE_ABOVE"])
if os.environ.get("BENCH_V3_PAGE_SIZE"):
    OFFLINE_SYNC["V3_PAGE_SIZE"] = int(os.environ["BENCH_V3_PAGE_SIZE"])

if os.environ.get("BENCH_URLCONF"):  # cpu.py, served.py: the site's URLs and the floor endpoints (bench_urls)
    ROOT_URLCONF = os.environ["BENCH_URLCONF"]

_MIDDLEWARE_VARIANT = os.environ.get("BENCH_MIDDLEWARE", "")
if _MIDDLEWARE_VARIANT in ("api", "middleware"):
    # bench/cpu.py measuring an API-only process (docs/deployment.rst): no session, CSRF,
    # messages or clickjacking middleware. Never the default: the example site serves the
    # admin, which needs them.
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]
if _MIDDLEWARE_VARIANT in ("api", "auth"):
    # ... and token authentication only (no SessionAuthentication, which reads the session).
    REST_FRAMEWORK = {
        **REST_FRAMEWORK,  # noqa: F405
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "django_offline_sync.auth.authentication.ZumoTokenAuthentication",
            "rest_framework.authentication.TokenAuthentication",
        ],
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
