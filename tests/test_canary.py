"""The secrets canary (reliability-anchors §5 and §6 item 7).

A random AppCode goes through every fault and answer the sandbox has,
by single checks and batches, sync and async, with logging at DEBUG.  It
must be found nowhere: not in log records (message, args, formatted), not
in the repr/str of any client, policy, result or batch, not in any
exception (args, repr, str, vars, notes, cause and context chains,
formatted tracebacks, pickles), not in what the sandbox recorded apart
from the Authorization header itself.  Phone numbers reach log lines only
masked.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
import secrets
import traceback
from typing import Any, Iterator

import pytest

import mobilestatus as ms
from mobilestatus.numbers import mask
from mobilestatus.sandbox import SCENARIOS, Sandbox

CANARY = secrets.token_hex(16)
TIMEOUT = 0.5
# Retry-After: 1 is longer than max_backoff: 5xx/429 with it stand at once;
# throttles without it are retried (and logged) once.
POLICY = ms.RetryPolicy(1, backoff=0.01, max_backoff=0.5)
BATCH_FAULTS = {
    "no_response": 0.01, "stall_body": 0.01, "short_body": 0.02, "reset_body": 0.02,
    "chunked_eof": 0.02, "bad_chunk": 0.02, "empty_reply": 0.02, "garbage_status": 0.02,
    "bad_header": 0.02, "huge_headers": 0.02, "endless_body": 0.01, "html_5xx": 0.02,
    "throttled": 0.02, "redirect_same": 0.02, "redirect_other": 0.02,
    "redirect_scheme": 0.02, "keepalive_close": 0.02, "keepalive_race": 0.02,
    "invalid_appcode": 0.02, "quota_exhausted": 0.02, "malformed_json": 0.02,
    "oversized": 0.01, "bad_gateway_html": 0.02, "business_error": 0.02,
    "refused": 0.05, "tarpit": 0.02,
}
PIECE = 12  # any 12 consecutive characters of the canary count as a leak


def pieces(secret: str) -> list[str]:
    return [secret[i:i + PIECE] for i in range(len(secret) - PIECE + 1)]


CANARY_PIECES = pieces(CANARY)


def leaks(text: str | bytes) -> bool:
    if isinstance(text, bytes):
        return any(p.encode() in text for p in CANARY_PIECES)
    return any(p in text for p in CANARY_PIECES)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    package = logging.getLogger("mobilestatus")
    saved = (root.level, package.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    package.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        package.setLevel(saved[1])


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(appcode=CANARY) as sandbox:
        yield sandbox


def texts_of_exception(error: BaseException, with_locals: bool = True) -> Iterator[str | bytes]:
    """Every textual form of an exception and of its chain.

    ``with_locals``: also the traceback with frame locals, as error
    reporters capture it.  Not for errors raised while a Client is being
    built: there the caller's own ``appcode`` argument is a local of
    ``Client.__init__`` by necessity (docs/reliability.md)."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        exc = stack.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield repr(exc)
        yield str(exc)
        yield repr(exc.args)
        yield repr(vars(exc))
        yield repr(getattr(exc, "__notes__", None))
        yield "".join(traceback.format_exception(exc))
        if with_locals:
            # What error reporters that capture frame locals would show.
            yield "".join(traceback.TracebackException.from_exception(
                exc, capture_locals=True).format())
        try:
            yield pickle.dumps(exc)
        except Exception as refused:  # an exception that refuses pickling is fine
            yield repr(refused)
        stack.extend([exc.__cause__, exc.__context__])  # type: ignore[list-item]


class Constructing:
    """An error raised while a client was being built (see texts_of_exception)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def texts_of_outcome(outcome: Any) -> Iterator[str | bytes]:
    if isinstance(outcome, Constructing):
        yield from texts_of_exception(outcome.error, with_locals=False)
    elif isinstance(outcome, BaseException):
        yield from texts_of_exception(outcome)
    else:
        yield repr(outcome)
        yield str(outcome)
        yield pickle.dumps(outcome)


def numbers_of_scenarios() -> list[str]:
    return sorted(set(SCENARIOS.values()))


def check_everything(sb: Sandbox, capture: Capture, artefacts: list[Any],
                     numbers: list[str]) -> None:
    texts: list[str | bytes] = []
    for artefact in artefacts:
        if isinstance(artefact, (str, bytes)):
            texts.append(artefact)
        else:
            texts.extend(texts_of_outcome(artefact))
    for record in capture.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        texts.append(repr(record.msg))
        if record.exc_info and record.exc_info[1] is not None:
            texts.extend(texts_of_exception(record.exc_info[1]))
    texts.extend(capture.lines)

    # The sandbox's own records, except the Authorization value it must keep.
    last = sb.last_request
    assert last is not None
    texts += [repr(last), repr(sb.last_headers), repr(last.form), last.target, last.body,
              repr(sb.scenario_counts), repr(sb)]
    texts += [f"{name}: {value}" for name, value in last.headers.raw
              if name.lower() != "authorization"]
    assert last.headers["Authorization"] == f"APPCODE {CANARY}"  # it did travel

    leaked = [t for t in texts if leaks(t)]
    assert not leaked, leaked[:3]
    assert sb.appcode_leaks == 0

    # Phone numbers: only masked in log lines (no full number, nor one
    # inside a longer run of digits such as an order number).
    full = re.compile("|".join(re.escape(n) for n in numbers))
    for line in capture.lines:
        assert not full.search(line), line
    masked = [line for line in capture.lines if "retrying" in line]
    assert masked and all("****" in line for line in masked), masked[:3]


def exercise_constructors() -> list[Any]:
    """Configuration errors raised with the canary in hand."""
    caught: list[Any] = []
    for kwargs in (
        {"appcode": CANARY + "\r\nX-Injected: 1"},
        {"appcode": " " + CANARY},
        {"appcode": CANARY, "base_url": "ftp://example.com"},
        {"appcode": CANARY, "base_url": "http://example.com"},
        {"appcode": CANARY, "base_url": "https://user:pw@example.com"},
        {"appcode": CANARY, "timeout": 0},
        {"appcode": CANARY, "pool_size": 0},
    ):
        with pytest.raises((ValueError, TypeError)) as raised:
            ms.Client(**kwargs)  # type: ignore[arg-type]
        caught.append(Constructing(raised.value))
    with pytest.raises(TypeError) as raised:
        pickle.dumps(ms.Client(CANARY))
    caught.append(Constructing(raised.value))  # this frame's kwargs hold the canary
    return caught


def test_canary_sync(sb: Sandbox, capture: Capture) -> None:
    artefacts: list[Any] = exercise_constructors()
    numbers = numbers_of_scenarios()
    with ms.Client(CANARY, base_url=sb.base_url, timeout=TIMEOUT,
                   connect_timeout=TIMEOUT, retry=POLICY) as client:
        artefacts += [repr(client), str(client), repr(client.retry), str(client.retry),
                      repr(vars(client))]
        # Every scenario by number, one at a time.
        for number in numbers:
            try:
                artefacts.append(client.check(number))
            except ms.MobileStatusError as error:
                artefacts.append(error)
        # Every fault by URL, and the connect-time faults.
        for name in sorted(BATCH_FAULTS) + ["slow"]:
            with ms.Client(CANARY, base_url=sb.url(fault=name), timeout=TIMEOUT,
                           connect_timeout=TIMEOUT, retry=POLICY) as faulty:
                try:
                    artefacts.append(faulty.check("13800138000"))
                except ms.MobileStatusError as error:
                    artefacts.append(error)
        # A batch with everything mixed in, the scenario numbers too.
        sb.configure(faults=BATCH_FAULTS, seed=11)
        batch_numbers = [f"139{i:08d}" for i in range(1500)] + numbers + ["bad", "123"]
        batch = client.check_many(batch_numbers, concurrency=32)
        artefacts += [repr(batch), str(batch), *batch, batch.to_pandas().to_string()]
        sb.configure(faults={})
    # Errors about a closed client.
    with pytest.raises(RuntimeError) as closed:
        client.check("13800138000")
    artefacts.append(closed.value)
    assert any(isinstance(a, ms.TransportError) for a in artefacts)
    assert any(isinstance(a, ms.GatewayError) for a in artefacts)
    check_everything(sb, capture, artefacts, numbers + batch_numbers)


def test_canary_async(sb: Sandbox, capture: Capture) -> None:
    numbers = numbers_of_scenarios()
    artefacts: list[Any] = []

    async def main() -> None:
        async with ms.AsyncClient(CANARY, base_url=sb.base_url, timeout=TIMEOUT,
                                  connect_timeout=TIMEOUT, retry=POLICY,
                                  concurrency=32) as client:
            artefacts.extend([repr(client), str(client), repr(vars(client))])
            singles = await asyncio.gather(*(client.check(n) for n in numbers),
                                           return_exceptions=True)
            artefacts.extend(singles)
            for name in ("refused", "tarpit"):
                async with ms.AsyncClient(CANARY, base_url=sb.url(fault=name),
                                          timeout=TIMEOUT, connect_timeout=TIMEOUT,
                                          retry=POLICY) as faulty:
                    artefacts.append((await asyncio.gather(
                        faulty.check("13800138000"), return_exceptions=True))[0])
            sb.configure(faults=BATCH_FAULTS, seed=12)
            batch = await client.check_many([f"139{i:08d}" for i in range(1500)] + numbers)
            artefacts.extend([repr(batch), *batch])
            sb.configure(faults={})
        with pytest.raises(RuntimeError) as closed:
            await client.check("13800138000")
        artefacts.append(closed.value)

    asyncio.run(main())
    assert any(isinstance(a, ms.TimeoutError) for a in artefacts)
    check_everything(sb, capture, artefacts,
                     numbers + [f"139{i:08d}" for i in range(1500)])


def test_canary_pieces_are_meaningful() -> None:
    """The search itself finds the canary where it is, whole or in part."""
    assert leaks(f"Authorization: APPCODE {CANARY}")
    assert leaks(("x" + CANARY[3:3 + PIECE] + "y").encode())
    assert not leaks(CANARY[:PIECE - 1])
    assert mask("13800138000") == "138****8000"
