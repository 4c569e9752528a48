"""One Client shared by a whole server: many threads, one pool of
connections, every answer delivered to the thread that asked for it.

A web server (Django, Flask, gunicorn's gthread workers) creates one
``mobilestatus.Client`` at start-up and calls ``check`` from every request
thread.  These tests do that against the sandbox, with failing numbers
mixed in, and check the bookkeeping the way a billing department would:
every request the sandbox saw is accounted for, every answer carries the
number it was asked for (the sandbox's ``orderNo`` ends with the number),
no thread waits forever, and the work really ran in parallel.

Timing assertions are loose on purpose (a factor of 3 or more of margin):
they tell "in parallel" from "one after the other", never how fast.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import mobilestatus as ms
from mobilestatus import errors
from mobilestatus.sandbox import SCENARIOS, Sandbox

# What the sandbox answers for an ordinary number, by its last digit.
STATUS_BY_LAST_DIGIT = {
    **dict.fromkeys("01234", ms.Status.NORMAL),
    "5": ms.Status.SUSPENDED,
    "6": ms.Status.CANCELLED,
    "7": ms.Status.UNAVAILABLE,
    "8": ms.Status.PRE_CANCELLED,
    "9": ms.Status.POWERED_OFF,
}

# Failing numbers mixed into the load: the error each one must raise and
# how many requests one call makes under SERVING_RETRY (one retry, no
# wait): only answers that cannot have been billed are retried, i.e. the
# gateway's throttle and 5xx; business errors, quota and auth never.
FAILURES: dict[str, tuple[type[errors.MobileStatusError], int]] = {
    SCENARIOS["business_error"]: (errors.ApiError, 1),
    SCENARIOS["unsupported_prefix"]: (errors.ApiError, 1),
    SCENARIOS["quota_exhausted"]: (errors.QuotaExceededError, 1),
    SCENARIOS["invalid_appcode"]: (errors.AuthenticationError, 1),
    SCENARIOS["internal_error"]: (errors.UpstreamError, 2),
    SCENARIOS["bad_gateway_html"]: (errors.UpstreamError, 2),
    SCENARIOS["throttled_user"]: (errors.RateLimitError, 2),
}
FAILING = list(FAILURES)


def serving_retry() -> ms.RetryPolicy:
    return ms.RetryPolicy(1, backoff=0.0, max_backoff=0.0)


def ordinary(thread: int, i: int, prefix: str = "138") -> str:
    """A distinct ordinary number per (thread, i).  Digits 4-7 are never
    0000, so it is never a sandbox scenario number."""
    assert 0 <= thread < 9999 and 0 <= i < 10000
    return f"{prefix}{thread + 1:04d}{i:04d}"


def assert_answer(number: str, outcome: object) -> None:
    """The outcome is the sandbox's answer to *this* number."""
    if number in FAILURES:
        expected, _ = FAILURES[number]
        assert isinstance(outcome, expected), (number, outcome)
        return
    assert isinstance(outcome, ms.CheckResult), (number, outcome)
    assert outcome.number == number
    # orderNo is built by the sandbox from the number it received.
    assert outcome.order_no is not None and outcome.order_no.endswith(number), (
        number,
        outcome.order_no,
    )
    assert outcome.status is STATUS_BY_LAST_DIGIT[number[-1]], (number, outcome.status)


@contextlib.contextmanager
def hard_timeout(seconds: float) -> Iterator[None]:
    """Last line of defence against a deadlock that holds the GIL: dump
    every thread's stack and end the process.  (Ordinary hangs are caught
    earlier by the join deadlines, which fail only the test.)"""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle_fds(baseline: int, timeout: float = 3.0) -> int:
    """Open descriptors once the sandbox has seen the client's closes."""
    deadline = time.monotonic() + timeout
    while open_fds() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    return open_fds()


def run_threads(
    target: Callable[[int], None], count: int, deadline: float
) -> tuple[float, list[BaseException]]:
    """Run target(0..count-1) in daemon threads; (wall time, errors).

    Fails the test, with every stack dumped, if a thread is still running
    after ``deadline`` seconds: a deadlock fails instead of hanging."""
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(count + 1)

    def body(index: int) -> None:
        start.wait()
        try:
            target(index)
        except BaseException as error:  # reported by the main thread
            with lock:
                failures.append(error)

    threads = [
        threading.Thread(target=body, args=(i,), name=f"serving-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    start.wait(timeout=10)
    began = time.monotonic()
    end = began + deadline
    for thread in threads:
        thread.join(timeout=max(0.0, end - time.monotonic()))
    elapsed = time.monotonic() - began
    alive = [t.name for t in threads if t.is_alive()]
    if alive:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        pytest.fail(f"{len(alive)} threads still running after {deadline}s: {alive[:5]}")
    return elapsed, failures


@pytest.fixture(scope="module")
def own_sandbox() -> Iterator[Sandbox]:
    """A sandbox of this module's own (not the shared session one)."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(own_sandbox: Sandbox) -> Sandbox:
    own_sandbox.reset()
    return own_sandbox


# ---------------------------------------------------------------------------


THREADS = 32
CHECKS_PER_THREAD = 500
LATENCY = 0.02
FAIL_EVERY = 20  # 5% of the calls are failing numbers


@pytest.mark.slow  # ~12 s; the smaller tests below run in `make test-fast` too
def test_one_client_32_threads_500_checks_each(sb: Sandbox) -> None:
    fds = open_fds()
    client = ms.Client(
        sb.appcode,
        base_url=sb.url(latency=LATENCY),
        retry=serving_retry(),
        pool_size=THREADS,  # one warm connection per request thread
    )
    outcomes: list[list[tuple[str, object]]] = [[] for _ in range(THREADS)]

    def worker(t: int) -> None:
        record = outcomes[t].append
        for i in range(CHECKS_PER_THREAD):
            if i % FAIL_EVERY == FAIL_EVERY - 1:
                number = FAILING[(t + i) % len(FAILING)]
            else:
                number = ordinary(t, i)
            try:
                outcome: object = client.check(number)
            except errors.MobileStatusError as error:
                outcome = error
            record((number, outcome))

    with hard_timeout(180), client:
        elapsed, failures = run_threads(worker, THREADS, deadline=120)
    assert not failures, failures[:3]

    calls = [pair for per_thread in outcomes for pair in per_thread]
    assert len(calls) == THREADS * CHECKS_PER_THREAD
    for number, outcome in calls:
        assert_answer(number, outcome)

    # Every request the sandbox saw is one we expected, number by number.
    expected: collections.Counter[str] = collections.Counter()
    for number, _ in calls:
        expected[number] += FAILURES[number][1] if number in FAILURES else 1
    assert sb.total == sum(expected.values())
    for number, count in expected.items():
        assert sb.count(number) == count, number

    # Connections were kept alive and reused: at most one per thread.
    assert 1 < sb.connections <= THREADS, sb.connections

    # 32 in flight, not one at a time: sequentially this takes 320 s.
    sequential = THREADS * CHECKS_PER_THREAD * LATENCY
    assert elapsed < sequential / 3, f"{elapsed:.1f}s for {len(calls)} checks"

    # close() let go of every connection (both ends live in this process).
    if os.path.isdir("/proc/self/fd"):
        assert settle_fds(fds) == fds
    print(f"\n{len(calls)} checks from {THREADS} threads in {elapsed:.2f}s, "
          f"{sb.total} requests, {sb.connections} connections")


def test_pool_keeps_connections_when_threads_outnumber_it(sb: Sandbox) -> None:
    """pool_size smaller than the thread count: extra sessions are made on
    demand and the pool keeps pool_size idle ones; connections still stay
    far below the number of checks."""
    threads, per_thread, pool_size = 16, 60, 4
    client = ms.Client(sb.appcode, base_url=sb.url(latency=LATENCY), retry=0,
                       pool_size=pool_size)

    def worker(t: int) -> None:
        for i in range(per_thread):
            number = ordinary(t, i, prefix="139")
            assert_answer(number, client.check(number))

    with hard_timeout(120), client:
        _, failures = run_threads(worker, threads, deadline=60)
    assert not failures, failures[:3]
    assert sb.total == threads * per_thread
    print(f"\n{threads} threads, pool_size={pool_size}: {sb.connections} connections "
          f"for {sb.total} checks")
    assert sb.connections < threads * per_thread / 4, sb.connections


def test_check_many_from_several_threads_on_one_client(sb: Sandbox) -> None:
    """Batches and single checks at the same time on the same client:
    each batch gets its own outcomes, in its own input order."""
    client = ms.Client(sb.appcode, base_url=sb.url(latency=LATENCY), retry=0)
    batch_threads, single_threads, size = 4, 4, 200
    batches: dict[int, tuple[list[str], ms.BatchResult]] = {}
    singles: dict[int, list[tuple[str, object]]] = {}

    def batch_inputs(t: int) -> list[str]:
        numbers = [ordinary(t, i, prefix="150") for i in range(size)]
        numbers[7] = numbers[3]  # a duplicate: answered once, reported twice
        numbers[50] = SCENARIOS["quota_exhausted"]
        numbers[51] = "12345"  # invalid: refused locally, no call
        return numbers

    def worker(index: int) -> None:
        if index < batch_threads:
            numbers = batch_inputs(index)
            batches[index] = (numbers, client.check_many(numbers, concurrency=16))
        else:
            t = index - batch_threads
            got = singles.setdefault(t, [])
            for i in range(40):
                number = ordinary(t, i, prefix="186")
                got.append((number, client.check(number)))

    with hard_timeout(120), client:
        _, failures = run_threads(worker, batch_threads + single_threads, deadline=60)
    assert not failures, failures[:3]

    calls = 0
    for numbers, result in batches.values():
        assert len(result) == len(numbers)
        for number, outcome in zip(numbers, result):
            if number == "12345":
                assert isinstance(outcome, errors.InvalidNumberError)
            else:
                assert_answer(number, outcome)
                if number != SCENARIOS["quota_exhausted"]:
                    assert sb.count(number) == 1, number
        assert result[7] is result[3]
        calls += len(set(numbers)) - 1  # every distinct valid number once
    for got in singles.values():
        assert len(got) == 40
        for number, single in got:
            assert_answer(number, single)
            calls += 1
    quota = SCENARIOS["quota_exhausted"]
    assert sb.count(quota) == batch_threads
    assert sb.total == calls


def test_blocking_checks_release_the_gil(sb: Sandbox) -> None:
    """8 threads, one 200 ms check each: together they take about 200 ms,
    not 1.6 s, because the transfer runs with the GIL released."""
    latency, threads = 0.2, 8
    client = ms.Client(sb.appcode, base_url=sb.url(latency=latency), retry=0,
                       pool_size=threads)
    results: dict[int, Any] = {}

    def worker(t: int) -> None:
        number = ordinary(t, 0, prefix="133")
        results[t] = (number, client.check(number))

    with hard_timeout(60), client:
        elapsed, failures = run_threads(worker, threads, deadline=30)
    assert not failures, failures[:3]
    for number, outcome in results.values():
        assert_answer(number, outcome)
    assert elapsed < threads * latency / 2, f"{elapsed:.2f}s"
