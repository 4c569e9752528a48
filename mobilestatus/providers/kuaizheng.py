"""The kuaizheng ``mobile_status/check`` product on the Alibaba Cloud API
marketplace: request shape, AppCode header, and the mapping of its answers
(and of the marketplace gateway's errors) to results and typed errors.

Pure functions of bytes and dicts: the C core does the transfer and the
JSON parse, this module gives the answer its meaning.
"""

from __future__ import annotations

from .. import errors
from .._types import CheckResult
from ..numbers import guess_carrier
from ..status import Carrier, Status

DEFAULT_BASE_URL = "https://kzmstatev1.market.alicloudapi.com"
PATH = "/api-mall/api/mobile_status/check"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    #: (status code, headers, body, data): what ``_core.Session.post`` returns.
    Response = tuple[int, Mapping[str, str], bytes, Any]


def request_headers(appcode: str) -> list[str]:
    """Header lines for one call.  ``Expect:`` is blanked so that libcurl
    never waits for a ``100 Continue`` the gateway does not send."""
    return [
        f"Authorization: APPCODE {appcode}",
        "Content-Type: application/x-www-form-urlencoded; charset=UTF-8",
        "Accept: application/json",
        "Expect:",
    ]


def request_body(number: str) -> bytes:
    """The form body; ``number`` is already normalised to 11 ASCII digits,
    so no URL-encoding is needed."""
    return b"mobile=" + number.encode("ascii")


_AUTH_MESSAGES = (
    "Invalid AppCode",
    "Invalid AppKey",
    "Invalid AppSecret",
    "Unauthorized",
    "Invalid Signature",
    "Empty Signature",
    "Timestamp Expired",
    "Invalid Timestamp",
    "Nonce Used",
    "Empty AppCode",
)
_AUTH_CODES = frozenset({"A400AC", "A400IK", "A403IS"})
_QUOTA_MESSAGES = (
    "Quota Exhausted",
    "Quota Expired",
    "User Arrears",
    "Expiry of Authorization",
)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        # The HTTP-date form is not used by this gateway; treat it as absent
        # rather than guessing a clock skew.
        return None
    return seconds if 0 <= seconds < 86400 else None


def gateway_error(status: int, headers: Mapping[str, str]) -> errors.MobileStatusError:
    """The typed error for a non-200 answer."""
    message = headers.get("x-ca-error-message")
    code = headers.get("x-ca-error-code") or None
    request_id = headers.get("x-ca-request-id")
    if 300 <= status < 400:
        return errors.RedirectError(
            f"HTTP {status} redirect not followed",
            location=headers.get("location"),
            http_status=status,
            request_id=request_id,
        )
    text = f"HTTP {status}" + (f": {message}" if message else "")
    common: dict[str, Any] = {
        "http_status": status,
        "error_message": message,
        "error_code": code,
        "request_id": request_id,
    }
    if message is not None or code is not None:
        if code in _AUTH_CODES or (message or "").startswith(_AUTH_MESSAGES):
            return errors.AuthenticationError(text, **common)
        if (message or "").startswith(_QUOTA_MESSAGES):
            return errors.QuotaExceededError(text, **common)
        if (message or "").startswith("Throttled by"):
            return errors.RateLimitError(
                text, retry_after=_retry_after(headers), **common
            )
    if status == 429:
        return errors.RateLimitError(text, retry_after=_retry_after(headers), **common)
    if status >= 500:
        return errors.UpstreamError(text, retry_after=_retry_after(headers), **common)
    if message is not None or code is not None:
        return errors.GatewayError(text, **common)
    return errors.ResponseError(
        f"unexpected HTTP status {status}", http_status=status, request_id=request_id
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _is_success_code(code: Any) -> bool:
    return (isinstance(code, int) and not isinstance(code, bool) and code == 200) or (
        isinstance(code, str) and code.strip() == "200"
    )


def interpret(
    number: str, response: Response
) -> CheckResult | errors.MobileStatusError:
    """Turn one answer into a result or (returned, not raised) an error."""
    status, headers, _body, data = response
    request_id = headers.get("x-ca-request-id")
    if status != 200:
        return gateway_error(status, headers)
    if isinstance(data, errors.ParseError):
        data.request_id = request_id
        data.http_status = status
        return data
    if not isinstance(data, dict):
        return errors.ResponseError(
            "the answer is not a JSON object" if data is not None else "empty answer",
            http_status=status,
            request_id=request_id,
        )
    if data.get("success") is not True or not _is_success_code(data.get("code")):
        code = data.get("code")
        msg = _text(data.get("msg"))
        return errors.ApiError(
            f"the vendor refused the query: {code} {msg or ''}".rstrip(),
            code=code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
            msg=msg,
            request_id=request_id,
        )
    payload = data.get("data")
    if not isinstance(payload, dict):
        return errors.ResponseError(
            "success answer without a data object", http_status=status, request_id=request_id
        )
    raw = payload.get("result")
    raw_status = _text(raw) or ""
    channel = _text(payload.get("channel"))
    carrier = Carrier.from_channel(channel) if channel else guess_carrier(number)
    # Positional: keyword binding is a third of the constructor's cost.
    return CheckResult(
        number,
        Status.from_raw(raw),
        raw_status,
        carrier,
        _text(payload.get("province")),
        _text(payload.get("city")),
        _text(payload.get("orderNo")),
        request_id,
        _text(payload.get("resultMsg")) or _text(data.get("msg")),
    )
