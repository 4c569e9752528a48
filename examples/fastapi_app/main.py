"""FastAPI: one ``mobilestatus.AsyncClient`` for the app's lifetime.

    MOBILESTATUS_APPCODE=... MOBILESTATUS_BASE_URL=http://127.0.0.1:8080 \
        uvicorn examples.fastapi_app.main:app
    curl http://127.0.0.1:8000/check/13800138000

The lifespan creates the client when the app starts and closes it when the
app stops.  AsyncClient runs its transfers on the event loop itself (no
thread per call), so an ``async def`` endpoint never blocks the loop.  Each
uvicorn/gunicorn worker process runs its own lifespan, hence its own client.

With the synchronous ``mobilestatus.Client`` instead, declare the endpoint
with plain ``def``: FastAPI then runs it in its thread pool, and the shared
Client is thread-safe (set pool_size to the pool's size, 40 by default).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import mobilestatus as ms


def _options() -> dict[str, Any]:
    options: dict[str, Any] = {
        "timeout": float(os.environ.get("MOBILESTATUS_TIMEOUT") or 5.0),
        "retry": int(os.environ.get("MOBILESTATUS_MAX_RETRIES") or 2),
    }
    if os.environ.get("MOBILESTATUS_BASE_URL"):
        options["base_url"] = os.environ["MOBILESTATUS_BASE_URL"]
    return options


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with ms.AsyncClient(os.environ.get("MOBILESTATUS_APPCODE"), **_options()) as client:
        app.state.mobilestatus = client
        yield
    # Leaving the block closed the client's connections.


app = FastAPI(lifespan=lifespan)


@app.get("/check/{number}")
async def check(number: str, request: Request) -> dict[str, Any]:
    client: ms.AsyncClient = request.app.state.mobilestatus
    result = await client.check(number)
    return {
        "number": result.number,
        "status": result.status.name,
        "status_label": result.status.label_en,
        "carrier": result.carrier.name,
        "province": result.province,
        "city": result.city,
    }


def _error(error: ms.MobileStatusError, status: int,
           headers: dict[str, str] | None = None) -> JSONResponse:
    # The message never holds the AppCode, and masks the number.
    return JSONResponse(
        {"error": type(error).__name__, "message": error.message,
         "request_id": error.request_id},
        status_code=status,
        headers=headers,
    )


# Starlette picks the handler of the most specific class in the error's MRO.
@app.exception_handler(ms.InvalidNumberError)
async def invalid_number(request: Request, error: ms.InvalidNumberError) -> JSONResponse:
    return _error(error, 400)  # the caller's mistake; no call was spent


@app.exception_handler(ms.RateLimitError)
async def rate_limited(request: Request, error: ms.RateLimitError) -> JSONResponse:
    headers = None
    if error.retry_after is not None:
        headers = {"Retry-After": str(max(1, round(error.retry_after)))}
    return _error(error, 429, headers)


@app.exception_handler(ms.MobileStatusError)
async def upstream_failed(request: Request, error: ms.MobileStatusError) -> JSONResponse:
    return _error(error, 502)  # quota, gateway, network: not the caller's fault
