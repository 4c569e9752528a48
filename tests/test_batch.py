"""check_many / iter_check against the sandbox: one outcome per input in
order, duplicates cost one call, billing-aware retries cost exactly what
they should, pacing, progress, Ctrl-C and pandas."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

import mobilestatus as ms
from mobilestatus.sandbox import SCENARIOS, Sandbox


def make_client(sandbox: Sandbox, base_url: str | None = None, **kwargs: object) -> ms.Client:
    kwargs.setdefault("retry", ms.RetryPolicy(2, backoff=0.01, max_backoff=2.0))
    kwargs.setdefault("timeout", 2.0)
    return ms.Client(sandbox.appcode, base_url=base_url or sandbox.base_url, **kwargs)  # type: ignore[arg-type]


def present(column: object) -> list[object]:
    """Column values with pandas' missing markers (None or NaN) as None."""
    return [v if isinstance(v, str) else None for v in column]  # type: ignore[attr-defined]


def test_outcomes_in_order_with_invalid_duplicate_and_failing(
    client: ms.Client, sandbox: Sandbox
) -> None:
    inputs: list[object] = [
        "13800138000",
        "bad number",
        "+86 138 0013 8005",
        SCENARIOS["business_error"],
        13800138000,  # duplicate of the first, as an int
        None,
        SCENARIOS["quota_exhausted"],
        "13800138005",  # duplicate of the third
        SCENARIOS["malformed_json"],
        "13800138009",
    ]
    batch = client.check_many(inputs, concurrency=4)
    assert len(batch) == len(inputs)
    kinds = [o.status if isinstance(o, ms.CheckResult) else type(o) for o in batch]
    assert kinds == [
        ms.Status.NORMAL,
        ms.InvalidNumberError,
        ms.Status.SUSPENDED,
        ms.ApiError,
        ms.Status.NORMAL,
        ms.InvalidNumberError,
        ms.QuotaExceededError,
        ms.Status.SUSPENDED,
        ms.ParseError,
        ms.Status.POWERED_OFF,
    ]
    assert batch[0] is batch[4]
    # Each distinct valid number cost exactly one call.
    assert sandbox.total == 6
    assert sandbox.count("13800138000") == 1
    assert sandbox.count("13800138005") == 1
    assert batch.calls == 6
    assert batch.counts()["InvalidNumberError"] == 2
    assert batch.by_status()[ms.Status.NORMAL] == 2
    assert [i for i, _ in batch.errors] == [1, 3, 5, 6, 8]
    assert len(batch.results) == 5


def test_large_batch_loses_nothing(client: ms.Client, sandbox: Sandbox) -> None:
    numbers = [f"1381234{i:04d}" for i in range(3000)]
    numbers += numbers[:500]  # duplicates
    batch = client.check_many(numbers, concurrency=64)
    assert len(batch) == 3500
    for number, outcome in zip(numbers, batch):
        assert isinstance(outcome, ms.CheckResult)
        assert outcome.number == number
        assert outcome.order_no is not None and outcome.order_no.endswith(number)
    assert sandbox.total == 3000
    assert sandbox.connections <= 64


def test_iter_check_streams_positions(client: ms.Client, sandbox: Sandbox) -> None:
    def numbers():  # a generator: no len(), consumed lazily
        for i in range(300):
            yield f"1391234{i:04d}"

    seen = dict(client.iter_check(numbers(), concurrency=16))
    assert sorted(seen) == list(range(300))
    assert all(isinstance(o, ms.CheckResult) for o in seen.values())
    assert sandbox.total == 300


def test_empty_batch(client: ms.Client, sandbox: Sandbox) -> None:
    batch = client.check_many([])
    assert len(batch) == 0 and sandbox.total == 0


def test_batch_is_concurrent(sandbox: Sandbox) -> None:
    with make_client(sandbox, sandbox.url(latency=0.1)) as c:
        started = time.monotonic()
        batch = c.check_many([f"1371234{i:04d}" for i in range(64)], concurrency=32)
        elapsed = time.monotonic() - started
    assert all(isinstance(o, ms.CheckResult) for o in batch)
    # Serial: 6.4 s; 32 at a time: ~0.2 s.
    assert elapsed < 6.4 / 3


def test_batch_keeps_going_while_the_consumer_is_busy(sandbox: Sandbox) -> None:
    """The transfers run on a native thread, not in the caller's run():
    while the code consuming iter_check is busy, the sandbox keeps
    receiving requests."""
    numbers = [f"1371235{i:04d}" for i in range(256)]  # all fit one feed
    busy = 1.0
    with make_client(sandbox, sandbox.url(latency=0.05)) as c:
        sandbox.reset()
        outcomes = c.iter_check(numbers, concurrency=32)
        next(outcomes)
        busy_from = time.monotonic()
        time.sleep(busy)  # e.g. a slow database write per result
        busy_until = time.monotonic()
        rest = list(outcomes)
    assert len(rest) == len(numbers) - 1
    during = [t for t in sandbox.arrivals() if busy_from <= t < busy_until]
    # 8 rounds of 32 at 50 ms: everything left arrives within ~0.4 s of the
    # pause.  A loop that stops with its caller gets nothing new here.
    assert len(during) >= 128, len(during)


# -- billing-aware retries ----------------------------------------------------


def test_refused_connection_is_retried(sandbox: Sandbox) -> None:
    with make_client(sandbox, sandbox.refused_url) as c:
        batch = c.check_many(["13800138000", "13800138001"], concurrency=2)
        assert all(isinstance(o, ms.ConnectError) for o in batch)
        assert batch.calls == 2 * 3  # never connected: not billed, so retried twice
        with pytest.raises(ms.ConnectError):
            c.check("13800138000")


@pytest.mark.parametrize("scenario", ["throttled_user", "internal_error", "async_service"])
def test_unbilled_gateway_errors_are_retried(sandbox: Sandbox, scenario: str) -> None:
    number = SCENARIOS[scenario]
    with make_client(sandbox) as c:
        batch = c.check_many([number])
        assert sandbox.count(number) == 3
        assert batch.calls == 3
        sandbox.reset()
        with pytest.raises(ms.GatewayError):
            c.check(number)
        assert sandbox.count(number) == 3


def test_retry_after_is_honoured(sandbox: Sandbox) -> None:
    number = SCENARIOS["service_unavailable"]  # 503 with Retry-After: 1
    with make_client(sandbox, retry=ms.RetryPolicy(1, backoff=0.01, max_backoff=5.0)) as c:
        started = time.monotonic()
        batch = c.check_many([number])
        elapsed = time.monotonic() - started
    assert isinstance(batch[0], ms.UpstreamError)
    assert batch[0].retry_after == 1.0
    assert sandbox.count(number) == 2
    assert elapsed >= 1.0


def test_retry_after_longer_than_we_wait_is_not_retried(sandbox: Sandbox) -> None:
    number = SCENARIOS["service_unavailable"]
    with make_client(sandbox, retry=ms.RetryPolicy(2, backoff=0.01, max_backoff=0.5)) as c:
        assert isinstance(c.check_many([number])[0], ms.UpstreamError)
    assert sandbox.count(number) == 1


@pytest.mark.parametrize(
    "scenario", ["business_error", "malformed_json", "quota_exhausted", "invalid_appcode"]
)
def test_billed_or_hopeless_answers_are_not_retried(sandbox: Sandbox, scenario: str) -> None:
    number = SCENARIOS[scenario]
    with make_client(sandbox) as c:
        assert isinstance(c.check_many([number])[0], ms.MobileStatusError)
        with pytest.raises(ms.MobileStatusError):
            c.check(number)
    assert sandbox.count(number) == 2


def test_read_timeout_is_not_retried_unless_asked(sandbox: Sandbox) -> None:
    number = SCENARIOS["no_response"]
    with make_client(sandbox, timeout=0.3) as c:
        started = time.monotonic()
        outcome = c.check_many([number])[0]
        assert time.monotonic() - started < 0.3 + 0.25
        assert isinstance(outcome, ms.TimeoutError) and outcome.may_be_billed
    assert sandbox.count(number) == 1
    sandbox.reset()
    policy = ms.RetryPolicy(2, backoff=0.01, retry_read_timeouts=True)
    with make_client(sandbox, timeout=0.3, retry=policy) as c:
        assert isinstance(c.check_many([number])[0], ms.TimeoutError)
    assert sandbox.count(number) == 3


@pytest.mark.parametrize("scenario", ["reset_body", "empty_reply", "short_body"])
def test_broken_answers_after_sending_are_not_retried(sandbox: Sandbox, scenario: str) -> None:
    number = SCENARIOS[scenario]
    with make_client(sandbox) as c:
        outcome = c.check_many([number])[0]
    assert isinstance(outcome, ms.TransportError)
    assert outcome.may_be_billed
    assert sandbox.count(number) == 1


# -- pacing, progress, interruption ------------------------------------------------


def test_rate_limit_paces_starts(sandbox: Sandbox) -> None:
    rate = 20
    numbers = [f"1361234{i:04d}" for i in range(3 * rate)]
    with make_client(sandbox) as c:
        started = time.monotonic()
        batch = c.check_many(numbers, concurrency=16, rate_limit=rate)
        elapsed = time.monotonic() - started
    assert all(isinstance(o, ms.CheckResult) for o in batch)
    arrivals = sorted(sandbox.arrivals())
    assert len(arrivals) == len(numbers)
    # No one-second window holds more than `rate` starts...
    for i in range(len(arrivals) - rate):
        assert arrivals[i + rate] - arrivals[i] > 0.98
    # ...and the batch still runs close to the allowed rate (wide margin).
    assert len(numbers) / elapsed > 0.85 * rate


def test_progress_callback(client: ms.Client) -> None:
    calls: list[tuple[int, int | None]] = []
    client.check_many(
        ["13800138000", "x", "13800138001"], progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1] == (3, 3)
    assert [d for d, _ in calls] == [1, 2, 3]


def test_progress_true_without_tqdm_writes_to_stderr(
    client: ms.Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    client.check_many(["13800138000", "13800138001"], progress=True)
    assert "2/2" in capsys.readouterr().err


def test_ctrl_c_stops_a_batch(
    sandbox: Sandbox, ctrl_c_after: Callable[[float], list[float]]
) -> None:
    numbers = [f"1351234{i:04d}" for i in range(200)]
    with make_client(sandbox, sandbox.url(latency=0.2)) as c:
        sent = ctrl_c_after(0.5)
        with pytest.raises(KeyboardInterrupt) as info:
            c.check_many(numbers, concurrency=8)
        stopped = time.monotonic()
    assert stopped - sent[0] < 0.2
    partial = info.value.partial  # type: ignore[attr-defined]
    assert len(partial) == len(numbers)
    done = [o for o in partial if o is not None]
    assert 0 < len(done) < len(numbers)
    # Every handle was removed: the sandbox sees all connections close.
    deadline = time.monotonic() + 2
    while sandbox.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.open_connections == 0


def test_check_frame_keeps_every_row(client: ms.Client, sandbox: Sandbox) -> None:
    pandas = pytest.importorskip("pandas")
    df = pandas.DataFrame(
        {
            "applicant": ["a", "b", "c", "d", "e"],
            "mobile": ["13800138000", "oops", 13800138005, SCENARIOS["business_error"],
                       "13800138000"],
        },
        index=[10, 20, 30, 40, 50],
    )
    out = ms.check_frame(df, column="mobile", client=client)
    assert list(out.index) == [10, 20, 30, 40, 50]
    assert list(out["applicant"]) == ["a", "b", "c", "d", "e"]
    assert present(out["status"]) == ["NORMAL", None, "SUSPENDED", None, "NORMAL"]
    assert out["error"][20].startswith("InvalidNumberError")
    assert out["error"][40].startswith("ApiError")
    assert list(out["carrier"])[0] == "CHINA_MOBILE"
    assert "status" not in df.columns  # the input frame is untouched
    assert sandbox.total == 3
    with pytest.raises(KeyError):
        ms.check_frame(df, column="phone", client=client)


def test_to_pandas(client: ms.Client) -> None:
    pytest.importorskip("pandas")
    batch = client.check_many(["13800138000", "x"])
    frame = batch.to_pandas()
    assert present(frame["status"]) == ["NORMAL", None]
    assert frame["error"][1].startswith("InvalidNumberError")


def test_import_does_not_load_pandas_or_tqdm() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mobilestatus; "
        "print(*(m in sys.modules for m in ('pandas', 'tqdm', 'asyncio', 'mobilestatus._core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ})
    # Each is loaded on first use: import cost is paid by every worker.
    assert out.stdout.strip() == "False False False False"
