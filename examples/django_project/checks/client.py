"""The project's one mobilestatus.Client: a lazy, thread-safe singleton.

Every request thread calls get_client() and shares the same Client: it is
thread-safe and keeps one warm connection per thread that checks at once.
Created on first use, so a process that forks before any check (gunicorn
--preload, Celery prefork) creates it in each worker; one created before a
fork is safe too (the child drops the inherited connections).
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from django.conf import settings

import mobilestatus as ms

_client: ms.Client | None = None
_lock = threading.Lock()


def _make_client() -> ms.Client:
    conf = settings.MOBILESTATUS
    options: dict[str, Any] = {
        "timeout": conf.get("TIMEOUT", 5.0),
        "retry": conf.get("MAX_RETRIES", 2),
        "pool_size": conf.get("POOL_SIZE", 10),
    }
    if conf.get("BASE_URL"):
        options["base_url"] = conf["BASE_URL"]
    client = ms.Client(conf.get("APPCODE"), **options)
    atexit.register(client.close)
    return client


def get_client() -> ms.Client:
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = _make_client()
            client = _client
    return client


def reset_client() -> None:
    """Close the Client; the next get_client() makes a new one."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # override_settings(MOBILESTATUS=...) in tests takes effect at once.
    if setting == "MOBILESTATUS":
        reset_client()
