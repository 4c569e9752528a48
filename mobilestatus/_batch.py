"""The Python half of a batch: input validation, de-duplication, feeding
the C loop in chunks, giving each answer its meaning and re-submitting
what the retry policy allows.  The waiting itself is ``_core.Batch.run``,
with the GIL released."""

from __future__ import annotations

import collections
import itertools
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from . import _core, errors
from ._types import CheckResult, Outcome
from .numbers import normalize
from .providers import kuaizheng

if TYPE_CHECKING:
    from .client import Client, ProgressCallback

# How long C may keep finished answers before handing them over; bounds
# both Ctrl-C latency and how stale a progress bar gets.
_MAX_WAIT = 0.1
_FLUSH_INTERVAL = 0.05


def _progress_callback(
    progress: bool | ProgressCallback, total: int | None
) -> Callable[[int, int | None], None] | None:
    if callable(progress):
        return progress
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        from .client import _stderr_progress

        return _stderr_progress()
    bar = tqdm(total=total, unit="num", desc="mobilestatus")

    def update(done: int, _total: int | None) -> None:
        bar.update(done - bar.n)
        if _total is not None and done >= _total:
            bar.close()

    return update


class _Job:
    """One distinct number in flight: every input position waiting on it."""

    __slots__ = ("number", "body", "positions", "retries")

    def __init__(self, number: str, body: bytes, position: int) -> None:
        self.number = number
        self.body = body
        self.positions = [position]
        self.retries = 0


class run_batch(Iterator[tuple[int, Outcome]]):
    """Iterator of (input position, outcome); ``calls`` counts requests."""

    def __init__(
        self,
        client: Client,
        numbers: Iterable[object],
        *,
        concurrency: int,
        rate_limit: float | None,
        progress: bool | ProgressCallback,
        dedupe_window: int,
    ) -> None:
        self._closed = True  # until the handles exist: __del__ must not close
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if rate_limit is not None and not rate_limit > 0:
            raise ValueError("rate_limit must be > 0 calls per second, or None")
        total = len(numbers) if isinstance(numbers, collections.abc.Sized) else None
        self.calls = 0
        self._client = client
        self._inputs = enumerate(numbers)
        self._exhausted = False
        self._session = client._batch_session()
        self._batch = _core.Batch(
            self._session, concurrency=concurrency, rate_limit=rate_limit or 0.0
        )
        self._low_water = concurrency
        self._chunk = max(256, 4 * concurrency)
        self._jobs: dict[int, _Job] = {}
        self._by_number: dict[str, _Job] = {}
        self._recent: collections.OrderedDict[str, Outcome] = collections.OrderedDict()
        self._dedupe_window = dedupe_window
        self._ready: collections.deque[tuple[int, Outcome]] = collections.deque()
        self._done = 0
        self._total = total
        self._progress = _progress_callback(progress, total)
        self._closed = False

    def __iter__(self) -> run_batch:
        return self

    def __next__(self) -> tuple[int, Outcome]:
        while not self._ready:
            if self._closed:
                raise StopIteration
            self._step()
        item = self._ready.popleft()
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, self._total)
        return item

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._batch.close()
            self._session.close()

    def _feed(self) -> None:
        """Queue up to a chunk of new distinct numbers."""
        submit: list[tuple[int, bytes]] = []
        consumed = 0
        for position, value in itertools.islice(self._inputs, self._chunk):
            consumed += 1
            try:
                number = normalize(value)
            except (errors.InvalidNumberError, TypeError) as error:
                if isinstance(error, TypeError):
                    error = errors.InvalidNumberError(f"not a phone number: {error}")
                self._ready.append((position, error))
                continue
            job = self._by_number.get(number)
            if job is not None:
                job.positions.append(position)
                continue
            known = self._recent.get(number)
            if known is not None:
                self._ready.append((position, known))
                continue
            job = _Job(number, kuaizheng.request_body(number), position)
            self._by_number[number] = job
            self._jobs[position] = job
            submit.append((position, job.body))
        if consumed < self._chunk:
            self._exhausted = True
        if submit:
            self._batch.submit(submit)
            self.calls += len(submit)

    def _step(self) -> None:
        try:
            if not self._exhausted and self._batch.pending < self._low_water + self._chunk:
                self._feed()
                if self._ready:
                    return
            if self._batch.pending == 0:
                if self._exhausted:
                    self.close()
                return
            finished = self._batch.run(
                max_wait=_MAX_WAIT,
                flush_interval=_FLUSH_INTERVAL,
                low_water=0 if self._exhausted else self._low_water,
            )
        except BaseException:
            self.close()
            raise
        for key, response, is_error in finished:
            job = self._jobs[key]
            outcome: Outcome
            if is_error:
                outcome = response
            else:
                outcome = kuaizheng.interpret(job.number, response)
            if not isinstance(outcome, CheckResult):
                delay = self._client.retry.delay(outcome, job.retries)
                if delay is not None:
                    job.retries += 1
                    self.calls += 1
                    self._batch.submit([(key, job.body)], delay)
                    continue
            del self._jobs[key]
            del self._by_number[job.number]
            if self._dedupe_window > 0:
                self._recent[job.number] = outcome
                if len(self._recent) > self._dedupe_window:
                    self._recent.popitem(last=False)
            for position in job.positions:
                self._ready.append((position, outcome))
