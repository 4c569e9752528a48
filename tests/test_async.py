"""AsyncClient: the same contract as Client, driven from the running loop
through libcurl's socket interface."""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import sys
import time
from typing import Any, Awaitable, Callable, Iterator

import pytest

import mobilestatus as ms
from mobilestatus.sandbox import SCENARIOS, Sandbox

LOOPS = ["asyncio"]
try:  # uvloop is optional; when it is installed it is tested too
    import uvloop

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover
    uvloop = None


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    def runner(coro: Awaitable[Any]) -> Any:
        if request.param == "uvloop":
            return uvloop.run(coro)  # type: ignore[union-attr]
        return asyncio.run(coro)  # type: ignore[arg-type]

    return runner


def make(sandbox: Sandbox, base_url: str | None = None, **kwargs: Any) -> ms.AsyncClient:
    kwargs.setdefault("retry", ms.RetryPolicy(2, backoff=0.01, max_backoff=2.0))
    kwargs.setdefault("timeout", 2.0)
    return ms.AsyncClient(sandbox.appcode, base_url=base_url or sandbox.base_url, **kwargs)


def test_check(sandbox: Sandbox, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with make(sandbox) as c:
            result = await c.check("+86 138 0013 8000")
            assert result.status is ms.Status.NORMAL and result.province == "北京"
            assert (await c.check(SCENARIOS["powered_off"])).status is ms.Status.POWERED_OFF
            with pytest.raises(ms.InvalidNumberError):
                await c.check("12345")
            with pytest.raises(ms.QuotaExceededError):
                await c.check(SCENARIOS["quota_exhausted"])
            with pytest.raises(ms.ApiError):
                await c.check(SCENARIOS["business_error"])
            with pytest.raises(ms.RedirectError):
                await c.check(SCENARIOS["redirect_other"])

    run(main())
    assert sandbox.count("13800138000") == 1
    assert sandbox.count("12345") == 0
    assert sandbox.other_requests == 0


def test_retries_follow_the_same_policy(sandbox: Sandbox, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        async with make(sandbox) as c:
            with pytest.raises(ms.RateLimitError):
                await c.check(SCENARIOS["throttled_user"])
            with pytest.raises(ms.ApiError):
                await c.check(SCENARIOS["business_error"])
        async with make(sandbox, timeout=0.3) as c:
            with pytest.raises(ms.TimeoutError):
                await c.check(SCENARIOS["no_response"])
        async with make(sandbox, sandbox.refused_url) as c:
            with pytest.raises(ms.ConnectError):
                await c.check("13800138000")

    run(main())
    assert sandbox.count(SCENARIOS["throttled_user"]) == 3
    assert sandbox.count(SCENARIOS["business_error"]) == 1
    assert sandbox.count(SCENARIOS["no_response"]) == 1


def test_check_many_order_and_dedupe(sandbox: Sandbox, run: Callable[[Awaitable[Any]], Any]) -> None:
    inputs: list[object] = ["13800138000", "nope", "13800138005", 13800138000,
                            SCENARIOS["internal_error"]]

    async def main() -> ms.BatchResult:
        async with make(sandbox) as c:
            return await c.check_many(inputs)

    batch = run(main())
    assert len(batch) == 5
    assert isinstance(batch[1], ms.InvalidNumberError)
    assert batch[0].status is ms.Status.NORMAL and batch[3] is batch[0]
    assert batch[2].status is ms.Status.SUSPENDED
    assert isinstance(batch[4], ms.UpstreamError)
    assert sandbox.count("13800138000") == 1


@pytest.fixture(scope="module")
def sandbox_process() -> Iterator[str]:
    """A sandbox in its own process, so the loop under test does not share
    the GIL with the in-process sandbox's thread (that sharing, not the
    client, is what would make a 5 ms ticker late)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "mobilestatus", "sandbox", "--port", str(port),
         "--appcode", "process-sandbox"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_many_checks_are_concurrent_and_the_loop_stays_responsive(
    sandbox_process: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    n, concurrency, latency = 1000, 64, 0.02
    numbers = [f"1341234{i:04d}" for i in range(n)]
    lateness: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            expected = time.monotonic() + 0.005
            await asyncio.sleep(0.005)
            lateness.append(time.monotonic() - expected)

    async def main() -> float:
        base_url = f"{sandbox_process}/_sandbox/latency={latency * 1000:g}ms"
        async with ms.AsyncClient("process-sandbox", base_url=base_url,
                                  concurrency=concurrency, timeout=5.0) as c:
            stop = asyncio.Event()
            tick = asyncio.create_task(ticker(stop))
            started = time.monotonic()
            batch = await c.check_many(numbers)
            elapsed = time.monotonic() - started
            stop.set()
            await tick
            assert all(isinstance(o, ms.CheckResult) for o in batch)
            return elapsed

    # A full collection of the heap a thousand earlier tests left behind
    # can alone pause the loop for 20 ms; that is the suite's, not the
    # client's, so it is moved out of the collector's way meanwhile.
    gc.collect()
    gc.freeze()
    try:
        elapsed = run(main())
    finally:
        gc.unfreeze()
    floor = n * latency / concurrency
    # Serial would be 20 s; in flight 64 at a time it is ~0.3 s.
    assert elapsed < 4 * floor
    assert max(lateness) < 0.020, sorted(lateness)[-5:]


def test_cancelling_a_task_removes_its_transfer(
    sandbox: Sandbox, run: Callable[[Awaitable[Any]], Any]
) -> None:
    async def main() -> None:
        async with make(sandbox, sandbox.url(latency=1.0)) as c:
            task = asyncio.create_task(c.check("13800138000"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            driver = c._driver
            assert driver is not None and driver._multi.pending == 0
            # The client keeps working after a cancellation.
            fast = make(sandbox)
            async with fast:
                assert (await fast.check("13800138001")).status is ms.Status.NORMAL
        with pytest.raises(asyncio.TimeoutError):
            async with make(sandbox, sandbox.url(latency=1.0)) as c2:
                await asyncio.wait_for(c2.check("13800138002"), 0.2)

    run(main())


def test_iter_check_async(sandbox: Sandbox, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> dict[int, Any]:
        async with make(sandbox, concurrency=8) as c:
            return {i: o async for i, o in c.iter_check(f"1331234{i:04d}" for i in range(100))}

    seen = run(main())
    assert sorted(seen) == list(range(100))
    assert sandbox.total == 100


def test_client_used_from_two_loops(sandbox: Sandbox) -> None:
    c = make(sandbox)

    async def once() -> ms.Status:
        return (await c.check("13800138000")).status

    assert asyncio.run(once()) is ms.Status.NORMAL
    assert asyncio.run(once()) is ms.Status.NORMAL
    asyncio.run(c.aclose())


def test_sync_batch_inside_a_running_loop(sandbox: Sandbox) -> None:
    """Jupyter runs cells inside an event loop: the sync API must still work."""

    async def cell() -> ms.BatchResult:
        with ms.Client(sandbox.appcode, base_url=sandbox.base_url) as c:
            return c.check_many(["13800138000", "13800138005"])

    batch = asyncio.run(cell())
    assert [o.status for o in batch] == [ms.Status.NORMAL, ms.Status.SUSPENDED]  # type: ignore[union-attr]
