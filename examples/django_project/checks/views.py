"""``GET /check/<number>``: the status as JSON, errors as HTTP codes."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

import mobilestatus as ms

from .client import get_client


def _error(error: ms.MobileStatusError, status: int) -> JsonResponse:
    # The message never holds the AppCode, and masks the number.
    return JsonResponse(
        {"error": type(error).__name__, "message": error.message,
         "request_id": error.request_id},
        status=status,
    )


@require_GET
def check(request: HttpRequest, number: str) -> JsonResponse:
    try:
        result = get_client().check(number)
    except ms.InvalidNumberError as error:
        return _error(error, 400)  # the caller's mistake; no call was spent
    except ms.RateLimitError as error:
        response = _error(error, 429)
        if error.retry_after is not None:
            response["Retry-After"] = str(max(1, round(error.retry_after)))
        return response
    except ms.MobileStatusError as error:
        return _error(error, 502)  # quota, gateway, network: not the caller's fault
    return JsonResponse({
        "number": result.number,
        "status": result.status.name,
        "status_label": result.status.label_en,
        "carrier": result.carrier.name,
        "province": result.province,
        "city": result.city,
    })
