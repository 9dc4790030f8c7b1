"""Settings for the example site: SQLite next to manage.py, or the database in DATABASE_URL."""

import os
from pathlib import Path

from example_project.database import database_from_env, replicas_from_env
from example_project.secret_key import load_or_create

BASE_DIR = Path(__file__).resolve().parent.parent

# DJANGO_SECRET_KEY, else a key generated on first use and kept in .secret_key (git-ignored):
# a key in the repository would be public, and cursors, sessions and tokens forgeable.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or load_or_create(
    Path(os.environ.get("DJANGO_SECRET_KEY_FILE", BASE_DIR / ".secret_key"))
)
# Off unless asked for: `make demo` sets DJANGO_DEBUG=1.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the site: /api/docs/ works offline
    "django_offline_sync",
    "django_offline_sync.auth",
    "example_project.tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, which may answer first
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

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
            ]
        },
    }
]

# Persistent connections: Django's default (0) opens the database anew for every request,
# about 0.6 ms on SQLite and a new backend process on PostgreSQL; health checks drop a
# connection the database closed.
DATABASES = {
    "default": database_from_env(
        f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}

# Streaming replicas that serve the pulls (docs/scaling.rst): REPLICA_DATABASE_URL holds one or
# more URLs separated by spaces or commas. Writes, their re-reads and the clock stay on the
# primary above. TEST MIRROR: the test runner points a replica at the test primary instead of
# creating a database on a read-only server.
DATABASES.update(
    replicas_from_env(
        os.environ.get("REPLICA_DATABASE_URL", ""),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
)
DATABASE_ROUTERS = ["django_offline_sync.replicas.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "django_offline_sync.auth.authentication.ZumoTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "django-offline-sync example",
    "DESCRIPTION": "Tables served with the Azure Mobile Apps / Datasync protocol.",
    "VERSION": "1.0.0",
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files rather than a CDN, so the
    # API docs render where the network is poor or absent (and under a strict CSP).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

OFFLINE_SYNC = {"READ_DATABASES": [alias for alias in DATABASES if alias != "default"]}

# CORS, for browser and Cordova clients served from another origin (django-cors-headers).
# Allowed: localhost on any port and scheme (as the v2 Node server's default hostnames
# ["localhost"]; Cordova/Capacitor apps are app://, ionic:// or capacitor://localhost), plus
# the origins listed in DJANGO_CORS_ALLOWED_ORIGINS (comma-separated, e.g. https://app.example).
CORS_ALLOWED_ORIGIN_REGEXES = [r"^(https?|app|ionic|capacitor)://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$"]
CORS_ALLOWED_ORIGINS = [o for o in os.environ.get("DJANGO_CORS_ALLOWED_ORIGINS", "").split(",") if o]
# The request headers the Azure Mobile Apps and Datasync clients send.
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "zumo-api-version",
    "x-zumo-application",
    "x-zumo-auth",
    "x-zumo-features",
    "x-zumo-installation-id",
    "x-zumo-options",
    "x-zumo-version",
    "x-ms-useragent",  # the Datasync TypeScript client's user agent in a browser
    "x-csrftoken",
    "x-requested-with",
]
# What the clients must read from a response: ETag (versions), Link (v2 paging), Location.
CORS_EXPOSE_HEADERS = ["ETag", "Link", "Location"]
# The Datasync TypeScript client sends credentials (withCredentials: true).
CORS_ALLOW_CREDENTIALS = True
