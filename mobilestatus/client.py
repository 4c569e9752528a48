"""The synchronous Client: configuration, the session pool, the retry
policy, single checks and batches."""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref

from . import errors
from ._log import logger
from ._types import BatchResult, CheckResult, Outcome
from .numbers import mask, normalize
from .providers import kuaizheng

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    from . import _core

__all__ = ["Client", "RetryPolicy"]

if TYPE_CHECKING:
    ProgressCallback = Callable[[int, int | None], None]


class _Secret:
    """Holds the AppCode; every textual form of it is redacted."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the AppCode is not picklable")


class RetryPolicy:
    """Billing-aware retries.

    The marketplace bills only HTTP 200 answers, so a call is retried only
    when it cannot have been billed: no connection was made, the gateway
    throttled it, or a 5xx came back (``Retry-After`` honoured).  An HTTP
    200 is never retried.  A failure after the request was sent (read
    timeout, connection reset, empty reply) may have been answered and
    billed upstream: retried only with ``retry_read_timeouts=True``.
    """

    __slots__ = ("max_retries", "backoff", "max_backoff", "retry_read_timeouts")

    def __init__(
        self,
        max_retries: int = 2,
        *,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        retry_read_timeouts: bool = False,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff values must be >= 0")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_read_timeouts = retry_read_timeouts

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries}, backoff={self.backoff}, "
            f"max_backoff={self.max_backoff}, "
            f"retry_read_timeouts={self.retry_read_timeouts})"
        )

    def delay(self, error: errors.MobileStatusError, retries_done: int) -> float | None:
        """Seconds to wait before retrying, or None when the error must
        stand (not retryable, or retries used up)."""
        if retries_done >= self.max_retries:
            return None
        backoff = min(self.max_backoff, self.backoff * 2.0**retries_done)
        import random  # only when something failed: not at import

        backoff *= random.uniform(0.5, 1.0)  # jitter: do not retry in lockstep
        if isinstance(error, errors._RetryLater):  # throttles and 5xx
            if error.retry_after is not None:
                if error.retry_after > self.max_backoff:
                    return None  # the upstream asks for longer than we wait
                return max(error.retry_after, backoff)
            return backoff
        if isinstance(error, errors.ConnectError):
            # A refused or unresolvable host may come back; a TLS or URL
            # failure will not.
            return backoff if error.curl_code in _RETRYABLE_CONNECT_CODES else None
        if isinstance(error, errors.TransportError):
            if not error.may_be_billed or self.retry_read_timeouts:
                return backoff
        return None


# CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT
_RETRYABLE_CONNECT_CODES = frozenset({5, 6, 7})

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(base_url: str, allow_insecure: bool) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("base_url must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not (allow_insecure or _is_loopback(parts.hostname)):
        # The AppCode travels in a header: plain HTTP would expose it.
        raise ValueError(
            "base_url uses plain http to a non-loopback host; use https "
            "(or allow_insecure=True if you really mean it)"
        )
    return base_url.rstrip("/") + kuaizheng.PATH


class _SessionPool:
    """Idle sessions, newest first, so a thread reuses a warm connection.

    A session is used by one thread at a time.  After os.fork() the
    inherited sessions are dropped (their C handles close their copies of
    the parent's sockets without speaking on them) and the child connects
    afresh.  A fork that Python's at-fork hooks miss (fork() called from C)
    is still caught per session: its handle belongs to another process
    generation and is replaced before use.
    """

    def __init__(self, factory: Callable[[], Any], size: int) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        _live_pools.add(self)

    def _after_fork_in_child(self) -> None:
        # Another parent thread may have held the lock at the fork: the
        # child's copy would stay locked forever.
        self._lock = threading.Lock()
        self._idle = []

    # acquire() and release() take no lock: list.pop() and list.append()
    # are atomic, so two threads never get the same session.  A release
    # racing close() may leave one session in the dropped list, where the
    # garbage collector closes it; a few releases racing each other may
    # overfill the list by one each.  Both are harmless, and the lock they
    # would need cost ~1 µs on every check.

    def acquire(self) -> Any:
        if self._closed:
            raise RuntimeError("the client is closed")
        try:
            return self._idle.pop()
        except IndexError:
            return self._factory()

    def release(self, session: Any) -> None:
        idle = self._idle
        if not self._closed and len(idle) < self._size:
            idle.append(session)
            return
        session.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()


class _Endpoint:
    """What every session of a client shares: URL, credentials, limits.

    Validated once; the AppCode is held redacted and only revealed to the
    C core when a session is made."""

    def __init__(
        self,
        appcode: str | None,
        *,
        base_url: str,
        timeout: float,
        connect_timeout: float,
        max_response_size: int,
        ca_bundle: str | None,
        proxy: str | None,
        allow_insecure: bool,
    ) -> None:
        if appcode is None:
            appcode = os.environ.get("MOBILESTATUS_APPCODE")
        if not appcode:
            raise errors.AuthenticationError(
                "no AppCode: pass appcode= or set MOBILESTATUS_APPCODE"
            )
        if not isinstance(appcode, str):
            raise TypeError("appcode must be a str")
        if any(c in appcode for c in "\r\n\0") or appcode != appcode.strip():
            # Never echo the value: it is a credential.
            raise ValueError("appcode must not contain CR, LF, NUL or surrounding spaces")
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if not (0 < value <= 86400):
                raise ValueError(f"{name} must be a finite number of seconds in (0, 86400]")
        if max_response_size < 1:
            raise ValueError("max_response_size must be >= 1")
        self.appcode = _Secret(appcode)
        self.base_url = base_url
        self.url = _endpoint(base_url, allow_insecure)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.session_args: dict[str, Any] = {
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_response_size": max_response_size,
            "ca_bundle": ca_bundle,
            "proxy": proxy,
        }

    def new_session(self) -> _core.Session:
        # The C core (and libcurl with its TLS library) loads on first use,
        # not at `import mobilestatus`.
        from . import _core

        if "user_agent" not in self.session_args:
            self.session_args["user_agent"] = (
                f"mobilestatus/{_version()} libcurl/{_core.LIBCURL_VERSION}"
            )
        return _core.Session(
            self.url,
            kuaizheng.request_headers(self.appcode.reveal()),
            **self.session_args,
        )


def _retry_policy(retry: RetryPolicy | int | None) -> RetryPolicy:
    if retry is None:
        return RetryPolicy()
    if isinstance(retry, int):
        return RetryPolicy(retry)
    return retry


_live_pools: weakref.WeakSet[_SessionPool] = weakref.WeakSet()


def _reset_pools_in_child() -> None:
    for pool in list(_live_pools):
        pool._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_pools_in_child)


class Client:
    """A client of the mobile status API; safe to share between threads.

    ``appcode`` falls back to the ``MOBILESTATUS_APPCODE`` environment
    variable.  ``base_url`` may carry a path prefix.  Deadlines are always
    finite: ``timeout`` covers a whole exchange (DNS, connect, TLS, request
    and answer), ``connect_timeout`` the connection alone.  Plain ``http``
    is refused except to loopback hosts (the AppCode travels in a header).
    Environment proxies are ignored; pass ``proxy=`` to use one.
    """

    def __init__(
        self,
        appcode: str | None = None,
        *,
        base_url: str = kuaizheng.DEFAULT_BASE_URL,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        retry: RetryPolicy | int | None = None,
        max_response_size: int = 1 << 20,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        pool_size: int = 10,
        allow_insecure: bool = False,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self._endpoint = _Endpoint(
            appcode,
            base_url=base_url,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_response_size=max_response_size,
            ca_bundle=ca_bundle,
            proxy=proxy,
            allow_insecure=allow_insecure,
        )
        self.base_url = base_url
        self.timeout = self._endpoint.timeout
        self.connect_timeout = self._endpoint.connect_timeout
        self.retry = _retry_policy(retry)
        self._pool = _SessionPool(self._endpoint.new_session, pool_size)

    def __repr__(self) -> str:
        # getattr: also for an instance whose __init__ raised (reprs of frame
        # locals in tracebacks and error reporters).
        base_url, timeout = getattr(self, "base_url", None), getattr(self, "timeout", None)
        return f"<mobilestatus.Client base_url={base_url!r} timeout={timeout}>"

    def __reduce__(self) -> Any:
        raise TypeError("a Client holds credentials and connections; create one per process")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection.  Idempotent."""
        self._pool.close()

    # -- single checks -----------------------------------------------------

    def check(self, number: object) -> CheckResult:
        """Check one number.

        Raises :class:`~mobilestatus.InvalidNumberError` (no call spent)
        for anything that is not a Chinese mobile number, and the typed
        gateway, business or transport error otherwise.
        """
        normalized = normalize(number)
        body = kuaizheng.request_body(normalized)
        retries = 0
        while True:
            outcome = self._post_once(normalized, body)
            if isinstance(outcome, CheckResult):
                return outcome
            delay = self.retry.delay(outcome, retries)
            if delay is None:
                raise outcome
            logger().info(
                "retrying %s in %.2fs after %s (retry %d)",
                mask(normalized), delay, type(outcome).__name__, retries + 1,
            )
            retries += 1
            time.sleep(delay)

    def _post_once(self, number: str, body: bytes) -> Outcome:
        session = self._pool.acquire()
        try:
            response = session.post(body)
        except errors.MobileStatusError as error:
            outcome: Outcome = error
        else:
            outcome = kuaizheng.interpret(number, response)
        finally:
            self._pool.release(session)
        if isinstance(outcome, errors.MobileStatusError):
            logger().debug("check %s failed: %s", mask(number), type(outcome).__name__)
        return outcome

    # -- batches -------------------------------------------------------------

    def iter_check(
        self,
        numbers: Iterable[object],
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        progress: bool | ProgressCallback = False,
        dedupe_window: int = 10_000,
    ) -> Iterator[tuple[int, Outcome]]:
        """Yield ``(input position, outcome)`` as checks complete.

        Holds only what is in flight (plus a window of recent answers for
        de-duplication), so any number of inputs streams through constant
        memory.  Invalid inputs yield their error without a call.
        """
        from ._batch import run_batch

        return run_batch(
            self,
            numbers,
            concurrency=concurrency,
            rate_limit=rate_limit,
            progress=progress,
            dedupe_window=dedupe_window,
        )

    def check_many(
        self,
        numbers: Iterable[object],
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        progress: bool | ProgressCallback = False,
    ) -> BatchResult:
        """Check many numbers concurrently; one outcome per input, in order.

        A per-item failure never raises and never drops a row; duplicates
        cost one call.  Ctrl-C stops the batch within ~0.2 s and raises
        ``KeyboardInterrupt`` whose ``partial`` attribute holds the
        :class:`BatchResult` so far (``None`` for unfinished inputs).
        """
        inputs = numbers if isinstance(numbers, list) else list(numbers)
        outcomes: list[Any] = [None] * len(inputs)
        iterator = self.iter_check(
            inputs,
            concurrency=concurrency,
            rate_limit=rate_limit,
            progress=progress,
            dedupe_window=len(inputs) + 1,
        )
        try:
            for index, outcome in iterator:
                outcomes[index] = outcome
        except KeyboardInterrupt as interrupt:
            interrupt.partial = BatchResult(outcomes, inputs)  # type: ignore[attr-defined]
            raise
        return BatchResult(outcomes, inputs, calls=getattr(iterator, "calls", 0))

    def _batch_session(self) -> _core.Session:
        if self._pool.closed:
            raise RuntimeError("the client is closed")
        return self._endpoint.new_session()


def _version() -> str:
    from . import __version__

    return __version__


def _stderr_progress() -> ProgressCallback:
    last = [0.0]

    def report(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and done != total:
            return
        last[0] = now
        text = f"{done}/{total}" if total is not None else str(done)
        sys.stderr.write(f"\rmobilestatus: checked {text}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report
