"""The app factory and the one view, ``GET /check/<number>``."""

from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask, Response, jsonify

import mobilestatus as ms

from .extension import mobilestatus

bp = Blueprint("mobilestatus_checks", __name__)


@bp.get("/check/<number>")
def check(number: str) -> Response:
    result = mobilestatus.client.check(number)
    return jsonify(
        number=result.number,
        status=result.status.name,
        status_label=result.status.label_en,
        carrier=result.carrier.name,
        province=result.province,
        city=result.city,
    )


def _error(error: ms.MobileStatusError, status: int) -> tuple[Response, int]:
    # The message never holds the AppCode, and masks the number.
    body = jsonify(error=type(error).__name__, message=error.message,
                   request_id=error.request_id)
    return body, status


# Flask picks the handler of the most specific class in the error's MRO.
@bp.errorhandler(ms.InvalidNumberError)
def invalid_number(error: ms.InvalidNumberError) -> tuple[Response, int]:
    return _error(error, 400)  # the caller's mistake; no call was spent


@bp.errorhandler(ms.RateLimitError)
def rate_limited(error: ms.RateLimitError) -> tuple[Response, int]:
    response, status = _error(error, 429)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return response, status


@bp.errorhandler(ms.MobileStatusError)
def upstream_failed(error: ms.MobileStatusError) -> tuple[Response, int]:
    return _error(error, 502)  # quota, gateway, network: not the caller's fault


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    if config:
        app.config.update(config)
    mobilestatus.init_app(app)
    app.register_blueprint(bp)
    return app
