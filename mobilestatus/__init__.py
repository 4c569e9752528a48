"""mobilestatus: is this Chinese mobile number in service?

A libcurl-backed client for the mobile network status check sold on the
Alibaba Cloud API marketplace, with a local sandbox of the same API::

    import mobilestatus as ms
    with ms.Client() as client:              # AppCode from MOBILESTATUS_APPCODE
        result = client.check("+86 138-0013-8000")
        result.status                         # Status.NORMAL
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._types import BatchResult, CheckResult, Outcome
from .client import Client, RetryPolicy
from .errors import (
    ApiError,
    AuthenticationError,
    ConnectError,
    GatewayError,
    InvalidNumberError,
    MobileStatusError,
    ParseError,
    QuotaExceededError,
    RateLimitError,
    RedirectError,
    ResponseError,
    ResponseTooLargeError,
    TimeoutError,
    TransportError,
    UpstreamError,
)
from .numbers import is_valid, mask, normalize
from .status import Carrier, Status
from .frame import check_frame

__all__ = [
    "__version__",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "BatchResult",
    "Carrier",
    "CheckResult",
    "Client",
    "ConnectError",
    "GatewayError",
    "InvalidNumberError",
    "MobileStatusError",
    "Outcome",
    "ParseError",
    "QuotaExceededError",
    "RateLimitError",
    "RedirectError",
    "ResponseError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "Status",
    "TimeoutError",
    "TransportError",
    "UpstreamError",
    "check_frame",
    "is_valid",
    "mask",
    "normalize",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .aio import AsyncClient
else:

    def __getattr__(name: str) -> object:
        # asyncio costs ~25 ms to import: only code that uses the
        # AsyncClient pays for it.
        if name == "AsyncClient":
            from .aio import AsyncClient

            return AsyncClient
        raise AttributeError(f"module 'mobilestatus' has no attribute {name!r}")
