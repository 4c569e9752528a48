"""A Flask extension in the usual style: create it once at import, bind it
to each app with ``init_app`` (the app-factory pattern).

One ``mobilestatus.Client`` per app, created when the app is created and
shared by every request thread: the Client is thread-safe and keeps one
warm connection per concurrent thread, so creating a Client per request
would only throw connections away.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from flask import Flask, current_app

import mobilestatus as ms

EXTENSION_KEY = "mobilestatus"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class MobileStatus:
    """``mobilestatus.client`` is the current app's Client."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        # Settings: app.config first, then the environment.  The AppCode
        # stays out of source code (and out of logs: the Client redacts it).
        app.config.setdefault("MOBILESTATUS_APPCODE", os.environ.get("MOBILESTATUS_APPCODE"))
        app.config.setdefault("MOBILESTATUS_BASE_URL", os.environ.get("MOBILESTATUS_BASE_URL"))
        app.config.setdefault("MOBILESTATUS_TIMEOUT", _env_float("MOBILESTATUS_TIMEOUT", 5.0))
        app.config.setdefault("MOBILESTATUS_MAX_RETRIES", _env_int("MOBILESTATUS_MAX_RETRIES", 2))
        # One pooled connection per request thread that runs at once.
        app.config.setdefault("MOBILESTATUS_POOL_SIZE", _env_int("MOBILESTATUS_POOL_SIZE", 10))

        options: dict[str, Any] = {
            "timeout": app.config["MOBILESTATUS_TIMEOUT"],
            "retry": app.config["MOBILESTATUS_MAX_RETRIES"],
            "pool_size": app.config["MOBILESTATUS_POOL_SIZE"],
        }
        if app.config["MOBILESTATUS_BASE_URL"]:
            options["base_url"] = app.config["MOBILESTATUS_BASE_URL"]
        client = ms.Client(app.config["MOBILESTATUS_APPCODE"], **options)
        app.extensions[EXTENSION_KEY] = client
        # Flask has no "app stopped" hook; close the connections at exit.
        atexit.register(client.close)

    @property
    def client(self) -> ms.Client:
        return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


mobilestatus = MobileStatus()
