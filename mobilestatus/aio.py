"""AsyncClient: the same contract as Client, on the running event loop.

libcurl's multi socket interface is driven from the loop itself: libcurl
says which sockets to watch and when its timer fires; the loop's readers,
writers and ``call_later`` tell it back.  No thread per call, and the loop
never blocks: each step runs in C with the GIL released and returns at
once.  Works on the default asyncio loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
from typing import Any, AsyncIterator, Callable, Iterable

from . import _core, errors
from ._log import logger
from ._types import BatchResult, CheckResult, Outcome
from .client import RetryPolicy, _Endpoint, _retry_policy
from .numbers import mask, normalize
from .providers import kuaizheng

__all__ = ["AsyncClient"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .client import ProgressCallback

_Done = tuple[Any, bool]


class _LoopDriver:
    """One curl multi handle bound to one event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: _core.Session,
        concurrency: int,
        rate_limit: float | None,
    ) -> None:
        self.loop = loop
        self.pid = os.getpid()
        self._session = session
        self._multi = _core.AsyncMulti(
            session, concurrency=concurrency, rate_limit=rate_limit or 0.0
        )
        self._keys = itertools.count()
        self._waiters: dict[int, asyncio.Future[_Done]] = {}
        self._watched: dict[int, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._wake: asyncio.TimerHandle | None = None
        # Submissions made in one loop iteration reach C in one call.
        self._outbox: list[tuple[int, bytes]] = []
        self._flush_scheduled = False

    def submit(self, body: bytes, delay: float = 0.0) -> tuple[int, asyncio.Future[_Done]]:
        key = next(self._keys)
        future: asyncio.Future[_Done] = self.loop.create_future()
        self._waiters[key] = future
        if delay > 0:
            self._apply(self._multi.add([(key, body)], delay))
        else:
            self._outbox.append((key, body))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)
        return key, future

    def _flush(self) -> None:
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, []
        if outbox:
            try:
                report = self._multi.add(outbox)
            except Exception as error:  # MemoryError, or closed meanwhile
                self._fail_all(error)
                return
            self._apply(report)

    def cancel(self, key: int) -> None:
        if self._waiters.pop(key, None) is not None:
            pending = len(self._outbox)
            self._outbox = [item for item in self._outbox if item[0] != key]
            if len(self._outbox) == pending:
                self._apply(self._multi.cancel(key))

    def _fail_all(self, error: BaseException) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()

    def close(self) -> None:
        self._outbox.clear()
        for fd in list(self._watched):
            self._unwatch(fd)
        for handle in (self._timer, self._wake):
            if handle is not None:
                handle.cancel()
        self._multi.close()
        self._session.close()
        for future in self._waiters.values():
            if not future.done():
                future.cancel()
        self._waiters.clear()

    # -- libcurl <-> loop ---------------------------------------------------

    def _apply(self, report: _core._Report) -> None:
        done, changes, timer_ms, wake_in = report
        for fd, what in changes:
            self._watch(fd, what)
        if timer_ms is not None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if timer_ms >= 0:
                self._timer = self.loop.call_later(timer_ms / 1000.0, self._on_timeout)
        if wake_in is not None and self._wake is None:
            self._wake = self.loop.call_later(wake_in, self._on_wake)
        for key, outcome, is_error in done:
            future = self._waiters.pop(key, None)
            if future is not None and not future.done():
                future.set_result((outcome, is_error))

    def _unwatch(self, fd: int) -> None:
        mask_ = self._watched.pop(fd, 0)
        # The socket may already be closed; the loop forgets it either way.
        if mask_ & _core.POLL_IN:
            try:
                self.loop.remove_reader(fd)
            except (OSError, ValueError):
                pass
        if mask_ & _core.POLL_OUT:
            try:
                self.loop.remove_writer(fd)
            except (OSError, ValueError):
                pass

    def _watch(self, fd: int, what: int) -> None:
        if what == _core.POLL_REMOVE:
            self._unwatch(fd)
            return
        old = self._watched.get(fd, 0)
        if old == what:
            return
        self._unwatch(fd)
        if what & _core.POLL_IN:
            self.loop.add_reader(fd, self._on_socket, fd, _core.CSELECT_IN)
        if what & _core.POLL_OUT:
            self.loop.add_writer(fd, self._on_socket, fd, _core.CSELECT_OUT)
        self._watched[fd] = what

    def _on_socket(self, fd: int, events: int) -> None:
        self._step(fd, events)

    def _on_timeout(self) -> None:
        self._timer = None
        self._step(_core.SOCKET_TIMEOUT, 0)

    def _on_wake(self) -> None:
        self._wake = None
        self._step(-2, 0)

    def _step(self, fd: int, events: int) -> None:
        try:
            report = self._multi.socket_action(fd, events)
        except BaseException as error:  # MemoryError or a libcurl bug
            self._fail_all(error)
            if not isinstance(error, Exception):
                raise
            return
        self._apply(report)


class AsyncClient:
    """The asyncio twin of :class:`~mobilestatus.Client`.

    ``concurrency`` caps the transfers in flight on the loop (across all
    tasks) and ``rate_limit`` the calls started per second.  Create it
    inside the running loop or before; it binds to the loop of its first
    call, and to a new one if used from another loop later.
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
        concurrency: int = 64,
        rate_limit: float | None = None,
        allow_insecure: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if rate_limit is not None and not rate_limit > 0:
            raise ValueError("rate_limit must be > 0 calls per second, or None")
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
        self.retry = _retry_policy(retry)
        self.concurrency = concurrency
        self.rate_limit = rate_limit
        self._driver: _LoopDriver | None = None
        self._closed = False

    def __repr__(self) -> str:
        # getattr: also for an instance whose __init__ raised (reprs of frame
        # locals in tracebacks and error reporters).
        base_url, timeout = getattr(self, "base_url", None), getattr(self, "timeout", None)
        return f"<mobilestatus.AsyncClient base_url={base_url!r} timeout={timeout}>"

    def __reduce__(self) -> Any:
        raise TypeError("an AsyncClient holds credentials and connections")

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Abort what is in flight and close the connections.  Idempotent."""
        self._closed = True
        if self._driver is not None:
            driver, self._driver = self._driver, None
            if driver.pid == os.getpid():
                driver.close()

    def _get_driver(self) -> _LoopDriver:
        if self._closed:
            raise RuntimeError("the client is closed")
        loop = asyncio.get_running_loop()
        driver = self._driver
        if driver is None or driver.loop is not loop or driver.pid != os.getpid():
            if driver is not None and driver.pid == os.getpid() and not driver.loop.is_closed():
                driver.close()
            driver = _LoopDriver(
                loop, self._endpoint.new_session(), self.concurrency, self.rate_limit
            )
            self._driver = driver
        return driver

    async def _exchange(self, number: str, body: bytes, delay: float = 0.0) -> Outcome:
        driver = self._get_driver()
        key, future = driver.submit(body, delay)
        try:
            outcome, is_error = await future
        except asyncio.CancelledError:
            # The task was cancelled: its transfer goes too.
            driver.cancel(key)
            raise
        if is_error:
            return outcome  # type: ignore[no-any-return]
        return kuaizheng.interpret(number, outcome)

    async def _check_normalized(self, number: str) -> Outcome:
        body = kuaizheng.request_body(number)
        retries = 0
        delay = 0.0
        while True:
            outcome = await self._exchange(number, body, delay)
            if isinstance(outcome, CheckResult):
                return outcome
            next_delay = self.retry.delay(outcome, retries)
            if next_delay is None:
                return outcome
            logger().info(
                "retrying %s in %.2fs after %s (retry %d)",
                mask(number), next_delay, type(outcome).__name__, retries + 1,
            )
            retries += 1
            delay = next_delay

    async def check(self, number: object) -> CheckResult:
        """Check one number; raises like :meth:`Client.check`."""
        outcome = await self._check_normalized(normalize(number))
        if isinstance(outcome, CheckResult):
            return outcome
        raise outcome

    async def iter_check(
        self,
        numbers: Iterable[object],
        *,
        progress: bool | ProgressCallback = False,
    ) -> AsyncIterator[tuple[int, Outcome]]:
        """Yield ``(input position, outcome)`` as checks complete; holds at
        most about ``2 × concurrency`` inputs at a time.  Duplicates in
        flight share one call."""
        from ._batch import _progress_callback

        total = len(numbers) if hasattr(numbers, "__len__") else None  # type: ignore[arg-type]
        report = _progress_callback(progress, total)
        window = 2 * self.concurrency
        # number -> (task, positions waiting on it); finished tasks land in
        # `finished` through a done-callback, so each completion costs O(1)
        # (asyncio.wait over every task in flight would cost O(window)).
        in_flight: dict[str, tuple[asyncio.Task[Outcome], list[int]]] = {}
        finished: collections.deque[str] = collections.deque()
        wakeup = asyncio.Event()
        inputs = enumerate(numbers)
        exhausted = False
        done_count = 0
        ready: list[tuple[int, Outcome]] = []

        def on_done(number: str) -> Callable[[asyncio.Task[Outcome]], None]:
            def callback(_task: asyncio.Task[Outcome]) -> None:
                finished.append(number)
                wakeup.set()

            return callback

        try:
            while True:
                while not exhausted and len(in_flight) < window:
                    item = next(inputs, None)
                    if item is None:
                        exhausted = True
                        break
                    position, value = item
                    try:
                        number = normalize(value)
                    except (errors.InvalidNumberError, TypeError) as error:
                        if isinstance(error, TypeError):
                            error = errors.InvalidNumberError(f"not a phone number: {error}")
                        ready.append((position, error))
                        continue
                    if number in in_flight:
                        in_flight[number][1].append(position)
                        continue
                    task = asyncio.ensure_future(self._check_normalized(number))
                    task.add_done_callback(on_done(number))
                    in_flight[number] = (task, [position])
                while finished:
                    number = finished.popleft()
                    task, positions = in_flight.pop(number)
                    outcome = task.result()
                    ready.extend((position, outcome) for position in positions)
                for entry in ready:
                    done_count += 1
                    if report is not None:
                        report(done_count, total)
                    yield entry
                ready.clear()
                if not in_flight:
                    if exhausted:
                        return
                    continue
                if not finished:
                    wakeup.clear()
                    await wakeup.wait()
        finally:
            for task, _ in in_flight.values():
                task.cancel()

    async def check_many(
        self,
        numbers: Iterable[object],
        *,
        progress: bool | ProgressCallback = False,
    ) -> BatchResult:
        """One outcome per input, in input order (see Client.check_many)."""
        inputs = numbers if isinstance(numbers, list) else list(numbers)
        outcomes: list[Any] = [None] * len(inputs)
        async for position, outcome in self.iter_check(inputs, progress=progress):
            outcomes[position] = outcome
        return BatchResult(outcomes, inputs)
