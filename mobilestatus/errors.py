"""The exception hierarchy of mobilestatus.

Every error the package raises derives from :class:`MobileStatusError`.  The
C core (``mobilestatus._core``) imports this module at initialisation and
raises these classes itself, so this module must never import ``_core``.

Three layers are kept apart because they differ in cost and in what a caller
should do next:

* gateway errors (the marketplace's API gateway answered non-200 with
  ``X-Ca-Error-*`` headers): never billed, some are worth a retry;
* business errors (HTTP 200 with ``success: false``): the vendor answered and
  may have billed the call, retrying will not change the answer;
* transport errors (no complete HTTP answer): billed only if the request had
  been sent, which :attr:`TransportError.may_be_billed` states.

Exceptions pickle with their attributes (they cross process pools) and never
hold the AppCode: nothing in the package ever passes it to an exception.
"""

from __future__ import annotations

import builtins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MobileStatusError",
    "InvalidNumberError",
    "GatewayError",
    "AuthenticationError",
    "QuotaExceededError",
    "RateLimitError",
    "UpstreamError",
    "ApiError",
    "ResponseError",
    "ParseError",
    "ResponseTooLargeError",
    "RedirectError",
    "TransportError",
    "ConnectError",
    "TimeoutError",
]


class MobileStatusError(Exception):
    """Base class of every error raised by mobilestatus.

    ``request_id`` is the gateway's ``X-Ca-Request-Id`` when the failing
    answer carried one: quote it to the vendor's support.
    """

    request_id: str | None

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def _state(self) -> dict[str, Any]:
        return {"request_id": self.request_id}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes are lost by BaseException's default pickling,
        # and batches cross process pools.
        return (_rebuild, (type(self), self.message, self._state()))

    def __repr__(self) -> str:
        extra = "".join(
            f", {key}={value!r}"
            for key, value in self._state().items()
            if value is not None
        )
        return f"{type(self).__name__}({self.message!r}{extra})"


def _rebuild(
    cls: type[MobileStatusError], message: str, state: dict[str, Any]
) -> MobileStatusError:
    return cls(message, **state)


class InvalidNumberError(MobileStatusError, ValueError):
    """The input is not a Chinese mobile number; no request was sent."""


class GatewayError(MobileStatusError):
    """The API gateway refused the call (HTTP status other than 200).

    The marketplace bills only HTTP 200 answers, so these were not billed.
    ``error_message`` and ``error_code`` are the gateway's
    ``X-Ca-Error-Message`` and ``X-Ca-Error-Code`` headers.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int = 0,
        error_message: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.http_status = http_status
        self.error_message = error_message
        self.error_code = error_code

    def _state(self) -> dict[str, Any]:
        return {
            "http_status": self.http_status,
            "error_message": self.error_message,
            "error_code": self.error_code,
            "request_id": self.request_id,
        }


class AuthenticationError(GatewayError):
    """Wrong AppCode or AppKey, or the app may not call this API."""


class QuotaExceededError(GatewayError):
    """The purchased package is used up, expired or the account is in arrears."""


class _RetryLater(GatewayError):
    """A gateway refusal that a later call may get past; ``retry_after``
    is the answer's ``Retry-After`` in seconds, if it sent one."""

    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int = 0,
        error_message: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            http_status=http_status,
            error_message=error_message,
            error_code=error_code,
            request_id=request_id,
        )
        self.retry_after = retry_after

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after}


class RateLimitError(_RetryLater):
    """The gateway throttled the call (``Throttled by … Flow Control``)."""


class UpstreamError(_RetryLater):
    """The gateway or the vendor's backend failed (HTTP 5xx); retry later."""


class ApiError(MobileStatusError):
    """HTTP 200, but the vendor refused the query (``success`` false or
    ``code`` other than 200).  The call may have been billed."""

    def __init__(
        self,
        message: str,
        *,
        code: int | str | None = None,
        msg: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code
        self.msg = msg

    def _state(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, "request_id": self.request_id}


class ResponseError(MobileStatusError):
    """The answer could not be understood: malformed or oversized body, an
    unexpected HTTP status, or a redirect (never followed)."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.http_status = http_status

    def _state(self) -> dict[str, Any]:
        return {"http_status": self.http_status, "request_id": self.request_id}


class ParseError(ResponseError, ValueError):
    """Malformed JSON; ``offset`` is the byte where the parser stopped."""

    def __init__(
        self,
        message: str,
        *,
        offset: int = 0,
        http_status: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.offset = offset

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "offset": self.offset}


class ResponseTooLargeError(ResponseError):
    """The body exceeded the client's ``max_response_size``."""


class RedirectError(ResponseError):
    """The server answered with a redirect; redirects are never followed,
    so the AppCode is never sent to another host."""

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        http_status: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.location = location

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "location": self.location}


class TransportError(MobileStatusError):
    """No complete HTTP answer arrived.

    ``curl_code`` is libcurl's CURLcode.  ``may_be_billed`` is true when the
    request had been sent before the failure, so the upstream may have
    answered (and billed) it: such calls are not retried unless asked.
    """

    def __init__(
        self,
        message: str,
        *,
        curl_code: int = 0,
        may_be_billed: bool = False,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.curl_code = curl_code
        self.may_be_billed = may_be_billed

    def _state(self) -> dict[str, Any]:
        return {
            "curl_code": self.curl_code,
            "may_be_billed": self.may_be_billed,
            "request_id": self.request_id,
        }


class ConnectError(TransportError):
    """The connection was never established (refused, unreachable, DNS, TLS)."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """The deadline passed; ``phase`` is ``"connect"`` or ``"read"``."""

    def __init__(
        self,
        message: str,
        *,
        phase: str = "read",
        curl_code: int = 0,
        may_be_billed: bool = False,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            curl_code=curl_code,
            may_be_billed=may_be_billed,
            request_id=request_id,
        )
        self.phase = phase

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "phase": self.phase}
