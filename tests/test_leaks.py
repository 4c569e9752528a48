"""Leaks (reliability-anchors §6 item 8) on a release build.

* Rounds of check_many against the sandbox: RSS and the number of live
  objects stay flat (the last round within 5% of round 3).  Short in
  ``make test``; ``make leaks`` runs 20 rounds of 50,000 checks
  (MOBILESTATUS_LEAK_ROUNDS, MOBILESTATUS_LEAK_CHECKS).
* Every ``_core`` entry point, error paths included, called many times:
  no growth in live objects, in the Python heap (tracemalloc) or in the C
  heap (glibc mallinfo2, where the core's and libcurl's malloc live), and
  the reference counts of the arguments are unchanged.
* Allocation failure: ``_testcapi.set_nomemory`` swept over ``loads`` and
  over building the result of ``Session.post``: MemoryError or success,
  never another error, never a crash, nothing leaked.

The sandbox runs in a subprocess so that only the client is measured (and
so that failing allocations cannot reach the server).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import mobilestatus as ms
from mobilestatus import _core
from mobilestatus.providers import kuaizheng

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("MOBILESTATUS_LEAK_ROUNDS", "5"))
CHECKS = int(os.environ.get("MOBILESTATUS_LEAK_CHECKS", "5000"))
REPORT = os.environ.get("MOBILESTATUS_LEAK_REPORT")  # a JSON file for the figures
APPCODE = "leakcheck0123456789abcdef0123456"
SANITIZED = "libasan" in os.environ.get("LD_PRELOAD", "")


# -- a sandbox in another process ----------------------------------------------


class RemoteSandbox:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mobilestatus", "sandbox", "--port", str(self.port),
             "--appcode", APPCODE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("the sandbox subprocess did not start")
                time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port}"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.refused_url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    def url(self, fault: str | None = None) -> str:
        return self.base_url + (f"/_sandbox/fault={fault}" if fault else "")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteSandbox]:
    sandbox = RemoteSandbox()
    try:
        yield sandbox
    finally:
        sandbox.close()


# -- meters ---------------------------------------------------------------------


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


try:
    _libc = ctypes.CDLL(None)
    _mallinfo2 = _libc.mallinfo2
    _mallinfo2.restype = _Mallinfo2
except (OSError, AttributeError):  # not glibc >= 2.33
    _mallinfo2 = None


def c_heap() -> int:
    """Bytes in use in the C heap (0 when unknown, e.g. under ASan)."""
    if _mallinfo2 is None:
        return 0
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def assert_no_leak(name: str, call: Callable[[], Any], *, per_run: int = 100,
                   runs: int = 5, warmup: int = 3, inputs: tuple[Any, ...] = (),
                   work: int = 1, bounded_heap: int = 0) -> None:
    """Call ``call`` per_run times per run.  A leak grows every metric in
    every measured run; one-off growth (caches, free lists, interned
    strings, libcurl's connection cache) happens in the warm-up.  ``work``
    is how many exchanges one call makes (the C heap's noise scales with
    it: Python objects over 512 bytes live in malloc too).  ``bounded_heap``:
    bytes the Python heap may gain in all (a cache that fills up, such as
    asyncio's freelists) before steady growth counts as a leak.  The C heap is
    only a coarse meter: `make leaks` also runs these tests under
    LeakSanitizer, which sees every unreachable block."""
    gc.collect()  # garbage of earlier cases may still hold the inputs
    refcounts = [sys.getrefcount(obj) for obj in inputs]
    deltas: dict[str, list[int]] = {"objects": [], "python heap": [], "C heap": []}
    # Traced from the warm-up on: blocks allocated before tracing and
    # recycled later would otherwise look like growth.
    tracemalloc.start()
    try:
        for _ in range(warmup * per_run):
            call()
        gc.collect()
        before = (len(gc.get_objects()), tracemalloc.get_traced_memory()[0], c_heap())
        for _ in range(runs):
            for _ in range(per_run):
                call()
            gc.collect()
            after = (len(gc.get_objects()), tracemalloc.get_traced_memory()[0], c_heap())
            for key, b, a in zip(deltas, before, after):
                deltas[key].append(a - b)
            before = after
    finally:
        tracemalloc.stop()
    # Growth in every run beyond noise: 0.05 objects or 8 bytes per call in
    # Python; 24 bytes per exchange in C (glibc's smallest chunk is 32).
    # Under ASan (PYTHONMALLOC=malloc, ASan's own allocator) these meters
    # mean little: the calls still run under ASan, and LeakSanitizer (make
    # leaks) is the leak check there.
    limits = {"objects": per_run // 20, "python heap": 8 * per_run,
              "C heap": 24 * per_run * work}
    extra = {"objects": 0, "python heap": bounded_heap, "C heap": 0}
    for key, series in deltas.items():
        if not SANITIZED:
            assert min(series) <= limits[key] or sum(series) <= extra[key], (
                f"{name}: {key} grows every run: {series}")
    gc.collect()
    assert [sys.getrefcount(obj) for obj in inputs] == refcounts, f"{name}: argument refcounts"


# -- the rounds -----------------------------------------------------------------


def test_rounds_of_check_many_are_flat(remote: RemoteSandbox) -> None:
    numbers = [f"138{i:08d}" for i in range(CHECKS)]
    series: list[dict[str, float]] = []
    with ms.Client(APPCODE, base_url=remote.base_url, timeout=5.0) as client:
        for round_no in range(1, ROUNDS + 1):
            started = time.monotonic()
            batch = client.check_many(numbers, concurrency=64)
            elapsed = time.monotonic() - started
            assert len(batch) == CHECKS
            assert all(isinstance(o, ms.CheckResult) for o in batch)
            del batch
            gc.collect()
            series.append({"round": round_no, "rss_mb": rss() / 2**20,
                           "objects": len(gc.get_objects()), "seconds": elapsed})
    report = {"rounds": ROUNDS, "checks_per_round": CHECKS, "series": series}
    print(json.dumps(report, indent=1))
    if REPORT:
        Path(REPORT).write_text(json.dumps(report, indent=1))
    # Round 3 is the baseline (allocator and caches warm).  A leak grows
    # round after round; noise is one round's spike: compare the smaller
    # of the last two rounds.
    base = series[2]
    # ASan's quarantine keeps freed memory resident: RSS only on release builds.
    for key in ("objects",) if SANITIZED else ("rss_mb", "objects"):
        last = min(series[-1][key], series[-2][key])
        assert last <= base[key] * 1.05, (key, [round(s[key], 1) for s in series])


# -- every _core entry point ------------------------------------------------------

RESPONSE = (
    b'{"msg":"\xe6\x88\x90\xe5\x8a\x9f","success":true,"code":200,"data":{"orderNo":'
    b'"000000004213800138000","result":"1","province":"\xe5\x8c\x97\xe4\xba\xac",'
    b'"city":"\xe5\x8c\x97\xe4\xba\xac","channel":"\xe7\xa7\xbb\xe5\x8a\xa8",'
    b'"resultMsg":"\xe6\xad\xa3\xe5\xb8\xb8"}}'
)
MIXED = b'[1, -2.5e3, 123456789012345678901234567890, null, true, "\\u00e9\\ud83d\\ude00", {"k": [[], {}]}]'
BIG_ARRAY = b"[" + b",".join(b'{"a":%d,"b":"x"}' % i for i in range(64)) + b"]"
BAD = b'{"msg":"x","data":{"result":"1",'
DEEP = b"[" * 200 + b"]" * 200
BODY = b"mobile=13800138000"


def raises(exc: type[BaseException] | tuple[type[BaseException], ...],
           call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            call()
        except exc:
            return
        raise AssertionError(f"{call} did not raise {exc}")

    return run


def session(url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("timeout", 2.0)
    return _core.Session(url + kuaizheng.PATH, kuaizheng.request_headers(APPCODE), **kwargs)


LOADS_CASES: dict[str, Callable[[], Any]] = {
    "envelope": lambda: _core.loads(RESPONSE),
    "mixed values": lambda: _core.loads(MIXED),
    "array of 64 objects": lambda: _core.loads(BIG_ARRAY),
    "bytearray": lambda: _core.loads(bytearray(RESPONSE)),
    "memoryview": lambda: _core.loads(memoryview(RESPONSE)),
    "max_depth keyword": lambda: _core.loads(RESPONSE, max_depth=3),
    "ParseError": raises(ms.ParseError, lambda: _core.loads(BAD)),
    "ParseError (depth)": raises(ms.ParseError, lambda: _core.loads(DEEP)),
    "TypeError (str)": raises(TypeError, lambda: _core.loads("[]")),
    "TypeError (int)": raises(TypeError, lambda: _core.loads(5)),
    "ValueError (max_depth=0)": raises(ValueError, lambda: _core.loads(b"[]", max_depth=0)),
    "TypeError (keyword)": raises(TypeError, lambda: _core.loads(b"[]", depth=3)),
}


@pytest.mark.parametrize("case", sorted(LOADS_CASES))
def test_loads_does_not_leak(case: str) -> None:
    assert_no_leak(f"loads {case}", LOADS_CASES[case], per_run=300,
                   inputs=(RESPONSE, MIXED, BAD))


def test_loads_digit_limit_path_does_not_leak() -> None:
    # A lowered int_max_str_digits sends PyLong_FromString's ValueError
    # through raise_digit_limit (a ParseError chained to it).
    body = b"[" + b"7" * 1000 + b"]"
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(ms.ParseError) as raised:
            _core.loads(body)
        assert isinstance(raised.value.__cause__, ValueError)
        assert_no_leak("loads digit limit", raises(ms.ParseError, lambda: _core.loads(body)),
                       inputs=(body,))
    finally:
        sys.set_int_max_str_digits(old)


def test_session_lifecycle_and_bad_arguments_do_not_leak(remote: RemoteSandbox) -> None:
    url = remote.base_url + kuaizheng.PATH
    headers = kuaizheng.request_headers(APPCODE)

    def make_and_close() -> None:
        s = _core.Session(url, headers, timeout=1.0, proxy=None, ca_bundle=None,
                          user_agent="leaks")
        s.close()
        s.close()

    cases: dict[str, Callable[[], Any]] = {
        "Session + close": make_and_close,
        "dealloc without close": lambda: _core.Session(url, headers),
        "url not str": raises(TypeError, lambda: _core.Session(b"x", headers)),  # type: ignore[arg-type]
        "CR in a header": raises(ValueError, lambda: _core.Session(url, ["A: b\r\nC: d"])),
        "headers not a sequence": raises(TypeError, lambda: _core.Session(url, 5)),  # type: ignore[arg-type]
        "header not str": raises(TypeError, lambda: _core.Session(url, [b"A: b"])),  # type: ignore[list-item]
        "timeout 0": raises(ValueError, lambda: _core.Session(url, headers, timeout=0.0)),
        "max_response_size 0": raises(
            ValueError, lambda: _core.Session(url, headers, max_response_size=0)),
        "max_depth 0": raises(ValueError, lambda: _core.Session(url, headers, max_depth=0)),
        "proxy not str": raises(TypeError, lambda: _core.Session(url, headers, proxy=5)),  # type: ignore[arg-type]
        "unknown keyword": raises(TypeError, lambda: _core.Session(url, headers, nope=1)),  # type: ignore[call-arg]
    }
    for name, call in cases.items():
        assert_no_leak(name, call, per_run=100, inputs=(url, headers))


def test_session_post_does_not_leak(remote: RemoteSandbox) -> None:
    ok = session(remote.base_url)
    transport = (ms.TransportError, ms.ResponseTooLargeError)
    # (name, session, body, the error it raises or None)
    cases: list[tuple[str, Any, Any, Any]] = [
        ("200", ok, BODY, None),
        ("data answer with extra fields", ok, b"mobile=13900000004", None),
        ("gateway 403", ok, b"mobile=13900001410", None),
        ("malformed JSON", ok, b"mobile=13900002000", None),
        ("HTML 502", ok, b"mobile=13900002502", None),
        ("redirect", ok, b"mobile=13900002302", None),
        ("body not bytes", ok, "mobile=13800138000", TypeError),
        ("empty reply", session(remote.url("empty_reply")), BODY, transport),
        ("short body", session(remote.url("short_body")), BODY, transport),
        ("too large", session(remote.url("oversized")), BODY, transport),
        ("refused", session(remote.refused_url), BODY, transport),
        ("read timeout", session(remote.url("no_response"), timeout=0.02), BODY, transport),
        ("huge headers", session(remote.url("huge_headers")), BODY, transport),
    ]
    for name, s, body, error in cases:
        call = (lambda s=s, body=body: s.post(body)) if error is None else \
            raises(error, lambda s=s, body=body: s.post(body))
        per_run = 10 if name == "read timeout" else 60
        assert_no_leak(f"post {name}", call, per_run=per_run, runs=4, inputs=(body,))
    closed = session(remote.base_url)
    closed.close()
    assert_no_leak("post on a closed session",
                   raises(RuntimeError, lambda: closed.post(BODY)), inputs=(BODY,))
    for _, s, _, _ in cases:
        s.close()


def test_batch_does_not_leak(remote: RemoteSandbox) -> None:
    s = session(remote.base_url)
    items = [(i, b"mobile=138%08d" % i) for i in range(16)]
    mixed = [(0, BODY), (1, b"mobile=13900002000"), (2, b"mobile=13900001410"),
             (3, b"mobile=13900003009"), (4, b"mobile=13900003005")]

    def run_batch(work: list[tuple[int, bytes]], delay: float = 0.0) -> None:
        batch = _core.Batch(s, concurrency=4)
        try:
            batch.submit(work, delay)
            done: list[Any] = []
            while batch.pending:
                done += batch.run(max_wait=1.0, flush_interval=0.0)
            assert len(done) == len(work)
        finally:
            batch.close()

    def closed_batch() -> None:
        batch = _core.Batch(s)
        batch.close()
        batch.close()
        raises(RuntimeError, lambda: batch.submit(items))()
        raises(RuntimeError, lambda: batch.run())()

    def abandoned_batch() -> None:
        batch = _core.Batch(s, concurrency=2)
        batch.submit(items)
        batch.run(max_wait=0.0)  # started, then dropped with work in flight

    cases: dict[str, Callable[[], Any]] = {
        "16 answers": lambda: run_batch(items),
        "mixed outcomes": lambda: run_batch(mixed),
        "with a delay": lambda: run_batch(items[:2], 0.001),
        "closed batch": closed_batch,
        "abandoned with work in flight": abandoned_batch,
        "session not a Session": raises(TypeError, lambda: _core.Batch(object())),
        "concurrency 0": raises(ValueError, lambda: _core.Batch(s, concurrency=0)),
        "rate NaN": raises(ValueError, lambda: _core.Batch(s, rate_limit=float("nan"))),
        "submit not a sequence": raises(TypeError, lambda: _core.Batch(s).submit(5)),
        "submit a 3-tuple": raises(TypeError, lambda: _core.Batch(s).submit([(1, b"x", 3)])),
        "submit key < 0": raises(ValueError, lambda: _core.Batch(s).submit([(-1, b"x")])),
        "submit str body": raises(TypeError, lambda: _core.Batch(s).submit([(1, "x")])),
        "run with negative wait": raises(ValueError, lambda: _core.Batch(s).run(max_wait=-1)),
    }
    for name, call in cases.items():
        work = {"16 answers": len(items), "mixed outcomes": len(mixed), "with a delay": 2,
                "abandoned with work in flight": 2}.get(name, 1)
        assert_no_leak(f"Batch {name}", call, per_run=20 if work > 2 else 50, runs=4,
                       inputs=(s, items), work=work)
    s.close()


def test_async_multi_does_not_leak(remote: RemoteSandbox) -> None:
    numbers = [f"137{i:08d}" for i in range(32)] + ["13900002000", "13900003009"]
    loop = asyncio.new_event_loop()
    client = ms.AsyncClient(APPCODE, base_url=remote.base_url, timeout=2.0, retry=0,
                            concurrency=8)

    def batch() -> None:
        result = loop.run_until_complete(client.check_many(numbers))
        assert len(result) == len(numbers)

    async def cancelled_checks() -> None:
        tasks = [asyncio.ensure_future(client.check(n)) for n in numbers[:8]]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    s = session(remote.base_url)

    def direct() -> None:
        multi = _core.AsyncMulti(s, concurrency=2)
        report = multi.add([(1, BODY), (2, BODY)])
        assert len(report) == 4
        multi.socket_action(_core.SOCKET_TIMEOUT, 0)
        multi.socket_action(-2, 0)
        multi.cancel(1)
        multi.cancel(99)
        multi.close()
        multi.close()
        raises(RuntimeError, lambda: multi.add([(3, BODY)]))()
        raises(RuntimeError, lambda: multi.socket_action(-2, 0))()
        raises(RuntimeError, lambda: multi.cancel(2))()

    try:
        cases: dict[str, Callable[[], Any]] = {
            "AsyncClient.check_many": batch,
            "cancelled checks": lambda: loop.run_until_complete(cancelled_checks()),
            "methods and closed": direct,
            "bad session": raises(TypeError, lambda: _core.AsyncMulti(5)),
            "bad items": raises(TypeError, lambda: _core.AsyncMulti(s).add([(1,)])),
            "bad fd": raises(TypeError, lambda: _core.AsyncMulti(s).socket_action("x", 0)),
        }
        for name, call in cases.items():
            batch_call = name == "AsyncClient.check_many"
            # Cancelled checks fill the C _asyncio module's freelist (at most
            # 255 small blocks, ~9 KiB seen) over a few thousand calls.
            cancelled = name == "cancelled checks"
            assert_no_leak(f"AsyncMulti {name}", call,
                           per_run=10 if batch_call else 100 if cancelled else 30,
                           runs=4, inputs=(s, BODY), work=len(numbers) if batch_call else 1,
                           bounded_heap=16 * 1024 if cancelled else 0)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
        s.close()


# -- allocation failure -----------------------------------------------------------

_testcapi = pytest.importorskip("_testcapi")


def _sweep(call: Callable[[], Any], limit: int, *, single: bool) -> dict[str, int]:
    """Fail allocations from #start on (or only #start when single), for
    every start up to limit; returns how often each outcome happened."""
    outcomes: dict[str, int] = {}
    for start in range(1, limit + 1):
        error: BaseException | None = None
        # Nothing between the two hook calls may allocate but the call.
        _testcapi.set_nomemory(start, start + 1 if single else 0)
        try:
            call()
        except BaseException as caught:  # anything but MemoryError is a finding
            error = caught
        finally:
            _testcapi.remove_mem_hooks()
        if error is None:
            outcome = "ok"
        elif type(error) is MemoryError:
            outcome = "MemoryError"
        else:
            outcome = f"{type(error).__name__}: {error}"
        del error
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _sweep_without_leaks(name: str, call: Callable[[], Any], limit: int,
                         allowed: frozenset[str] = frozenset({"ok", "MemoryError"})) -> None:
    for single in (False, True):
        # A warm-up sweep, then two measured ones: a leak on a failure path
        # grows both (one-off growth, e.g. glibc moving its mmap threshold,
        # shows once).
        seen = _sweep(call, limit, single=single)
        growth: list[tuple[int, int, int]] = []
        for _ in range(2):
            gc.collect()
            before = (len(gc.get_objects()), sys.getallocatedblocks(), c_heap())
            for outcome, times in _sweep(call, limit, single=single).items():
                seen[outcome] = seen.get(outcome, 0) + times
            gc.collect()
            after = (len(gc.get_objects()), sys.getallocatedblocks(), c_heap())
            growth.append((after[0] - before[0], after[1] - before[1], after[2] - before[2]))
        assert set(seen) <= allowed, (name, single, seen)
        assert "MemoryError" in seen, (name, "the sweep never failed an allocation")
        objects, blocks, c = (min(g[i] for g in growth) for i in range(3))
        assert objects <= limit // 20 and blocks <= limit // 4 and c <= 64 * limit, (
            name, single, growth)


@pytest.mark.parametrize("doc", [RESPONSE, MIXED, BIG_ARRAY, BAD, DEEP[:120] + DEEP[-120:]],
                         ids=["envelope", "mixed", "array", "malformed", "nested"])
def test_loads_under_allocation_failure(doc: bytes) -> None:
    allowed = frozenset({"ok", "MemoryError", "ParseError: " + _parse_message(doc)})
    _sweep_without_leaks("loads", lambda: _core.loads(doc), 400, allowed)


def _parse_message(doc: bytes) -> str:
    try:
        _core.loads(doc)
    except ms.ParseError as error:
        return str(error)
    return "-"


@pytest.mark.parametrize(("number", "fault"), [
    ("13800138000", None),          # a result
    ("13900000004", None),          # extra fields: nested lists and objects
    ("13900002000", None),          # malformed JSON: a ParseError instance
    ("13900001410", None),          # gateway 403: headers, empty body
    ("13800138000", "empty_reply"),  # a transport error built in C
    ("13800138000", "oversized"),    # ResponseTooLargeError
])
def test_session_post_under_allocation_failure(remote: RemoteSandbox, number: str,
                                               fault: str | None) -> None:
    s = session(remote.url(fault))
    body = b"mobile=" + number.encode()

    def post() -> None:
        try:
            s.post(body)
        except (ms.TransportError, ms.ResponseTooLargeError):
            pass

    try:
        post()  # the connection is open before the sweep
        _sweep_without_leaks(f"post {number} {fault}", post, 150)
    finally:
        s.close()


def test_set_nomemory_is_real() -> None:
    """The sweep above means something: allocation failure is injected."""
    error: BaseException | None = None
    _testcapi.set_nomemory(0, 0)
    try:
        _core.loads(RESPONSE)
    except BaseException as caught:
        error = caught
    finally:
        _testcapi.remove_mem_hooks()
    assert type(error) is MemoryError
