"""A bare WSGI app whose Client is created at import time.

    gunicorn --preload -w 3 examples.gunicorn_app:app

With ``--preload`` this module is imported once, in gunicorn's master, and
the workers are fork()ed from it: every worker inherits the same Client.
That is safe: on its first check a worker notices it is a new process,
drops the inherited connections (closing its copies of their sockets
without a byte written on them, so the master's connections are
untouched) and opens its own.  Within a worker, the Client is shared by
all threads (``--threads N``); set MOBILESTATUS_POOL_SIZE to at least N.

Settings come from the environment: MOBILESTATUS_APPCODE (required),
MOBILESTATUS_BASE_URL (the sandbox's URL, or unset for the real API),
MOBILESTATUS_TIMEOUT, MOBILESTATUS_MAX_RETRIES, MOBILESTATUS_POOL_SIZE.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable

import mobilestatus as ms

_options: dict[str, Any] = {
    "timeout": float(os.environ.get("MOBILESTATUS_TIMEOUT") or 5.0),
    "retry": int(os.environ.get("MOBILESTATUS_MAX_RETRIES") or 2),
    "pool_size": int(os.environ.get("MOBILESTATUS_POOL_SIZE") or 10),
}
if os.environ.get("MOBILESTATUS_BASE_URL"):
    _options["base_url"] = os.environ["MOBILESTATUS_BASE_URL"]

# One Client for the process (and, through fork, for every worker).
client = ms.Client(os.environ.get("MOBILESTATUS_APPCODE"), **_options)

StartResponse = Callable[..., Any]


def _reply(start_response: StartResponse, status: str, payload: dict[str, Any],
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    start_response(status, [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *headers,
    ])
    return [body]


def _error(start_response: StartResponse, status: str,
           error: ms.MobileStatusError, headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    return _reply(start_response, status, {
        "error": type(error).__name__,
        "message": error.message,  # never the AppCode; the number is masked
        "request_id": error.request_id,
        "pid": os.getpid(),
    }, headers)


def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    path = environ.get("PATH_INFO", "")
    if environ.get("REQUEST_METHOD") != "GET" or not path.startswith("/check/"):
        return _reply(start_response, "404 Not Found", {"error": "not found"})
    # PEP 3333: PATH_INFO holds the URL-decoded bytes as latin-1 text.
    number = path[len("/check/"):].encode("latin-1").decode("utf-8", "replace")
    try:
        result = client.check(number)
    except ms.InvalidNumberError as error:
        return _error(start_response, "400 Bad Request", error)
    except ms.RateLimitError as error:
        headers = []
        if error.retry_after is not None:
            headers.append(("Retry-After", str(max(1, round(error.retry_after)))))
        return _error(start_response, "429 Too Many Requests", error, headers)
    except ms.MobileStatusError as error:
        return _error(start_response, "502 Bad Gateway", error)
    return _reply(start_response, "200 OK", {
        "number": result.number,
        "status": result.status.name,
        "status_label": result.status.label_en,
        "carrier": result.carrier.name,
        "province": result.province,
        "city": result.city,
        "order_no": result.order_no,
        "pid": os.getpid(),  # which worker answered
    })
