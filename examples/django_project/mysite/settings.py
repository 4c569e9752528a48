"""A minimal settings module: one app, no database, no templates."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = ["checks.apps.ChecksConfig"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# mobilestatus: read by checks.client.get_client().  The AppCode comes from
# the environment, never from source control.
MOBILESTATUS = {
    "APPCODE": os.environ.get("MOBILESTATUS_APPCODE"),
    "BASE_URL": os.environ.get("MOBILESTATUS_BASE_URL") or None,  # None: the real API
    "TIMEOUT": float(os.environ.get("MOBILESTATUS_TIMEOUT") or 5.0),
    "MAX_RETRIES": int(os.environ.get("MOBILESTATUS_MAX_RETRIES") or 2),
    # At least the number of threads serving requests at once.
    "POOL_SIZE": int(os.environ.get("MOBILESTATUS_POOL_SIZE") or 10),
}
