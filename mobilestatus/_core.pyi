# Exact stub of the C extension mobilestatus._core (csrc/).  Private API:
# use mobilestatus.Client.
from typing import Any, Sequence, final

LIBCURL_VERSION: str
LIBCURL_COMPILED_VERSION: str
ASYNCH_DNS: int
DEFAULT_MAX_DEPTH: int
POLL_IN: int
POLL_OUT: int
POLL_INOUT: int
POLL_REMOVE: int
CSELECT_IN: int
CSELECT_OUT: int
SOCKET_TIMEOUT: int

_Response = tuple[int, dict[str, str], bytes, Any]

def loads(data: bytes | bytearray | memoryview, /, *, max_depth: int = 128) -> Any: ...

@final
class Session:
    def __new__(
        cls,
        url: str,
        headers: Sequence[str],
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_response_size: int = 1048576,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        user_agent: str | None = None,
        max_depth: int = 128,
    ) -> Session: ...
    def post(self, body: bytes, /) -> _Response: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def timeout(self) -> float: ...

@final
class Batch:
    def __new__(
        cls, session: Session, *, concurrency: int = 16, rate_limit: float = 0.0
    ) -> Batch: ...
    def submit(self, items: Sequence[tuple[int, bytes]], delay: float = 0.0, /) -> None: ...
    def run(
        self, max_wait: float = 0.1, flush_interval: float = 0.05, low_water: int = 0
    ) -> list[tuple[int, Any, bool]]: ...
    def close(self) -> None: ...
    @property
    def pending(self) -> int: ...
    @property
    def in_flight(self) -> int: ...

# (done [(key, outcome, is_error)], socket changes [(fd, POLL_*)],
#  timer_ms or None, wake_in or None)
_Report = tuple[list[tuple[int, Any, bool]], list[tuple[int, int]], int | None, float | None]

@final
class AsyncMulti:
    def __new__(
        cls, session: Session, *, concurrency: int = 64, rate_limit: float = 0.0
    ) -> AsyncMulti: ...
    def add(self, items: Sequence[tuple[int, bytes]], delay: float = 0.0, /) -> _Report: ...
    def socket_action(self, fd: int, events: int, /) -> _Report: ...
    def cancel(self, key: int, /) -> _Report: ...
    def close(self) -> None: ...
    @property
    def pending(self) -> int: ...
