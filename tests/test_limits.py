"""Hostile sizes (reliability-anchors §6 item 3): a 10 MB ``[[[[…`` body and
a 4,301-digit number are refused quickly and without a crash, through
``_core.loads`` and through a real HTTP answer, on an ordinary thread and
on one with a 256 KiB stack.  The sandbox cannot serve arbitrary bodies, so
a raw socket server answers here.  The regressions of the response fuzzer
(fuzz/fuzz_response.c) are at the end.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mobilestatus as ms
from mobilestatus import _core

DEEP = b"[" * 10_000_000  # 10 MB of opening brackets
DIGITS_4301 = b"7" * 4301
DIGITS_4300 = b"7" * 4300
MAX_DEPTH = _core.DEFAULT_MAX_DEPTH
SMALL_STACK = 256 * 1024
APPCODE = "limits0123456789abcdef0123456789"


class RawServer:
    """Answers every request with fixed bytes, then closes (FIN)."""

    def __init__(self) -> None:
        self.answer = b""
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.base_url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(body) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        body += chunk
                    self.requests += 1
                    conn.sendall(self.answer)
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass

    def serve_200(self, body: bytes) -> None:
        self.answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n"
                       b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    raw = RawServer()
    try:
        yield raw
    finally:
        raw.close()


def client_for(server: RawServer) -> ms.Client:
    return ms.Client(APPCODE, base_url=server.base_url, max_response_size=16 << 20,
                     timeout=10.0, retry=0)


def on_small_stack(call: Callable[[], Any]) -> Any:
    """call() on a thread with a 256 KiB stack; re-raises what it raised."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    old = threading.stack_size(SMALL_STACK)
    try:
        thread = threading.Thread(target=run)
        thread.start()
    finally:
        threading.stack_size(old)
    thread.join(60)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def fastest(call: Callable[[], Any], times: int = 5) -> float:
    """The best of a few timings: robust to a busy CI machine."""
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


THREADS = {"main thread": lambda call: call(), "256 KiB stack": on_small_stack}


# -- _core.loads --------------------------------------------------------------


@pytest.mark.parametrize("where", sorted(THREADS))
def test_loads_refuses_ten_megabytes_of_brackets(where: str) -> None:
    run = THREADS[where]

    def refuse() -> None:
        with pytest.raises(ms.ParseError) as raised:
            _core.loads(DEEP)
        assert "maximum nesting depth exceeded" in str(raised.value)
        assert raised.value.offset <= MAX_DEPTH + 1

    run(refuse)
    assert run(lambda: fastest(refuse)) < 0.010


@pytest.mark.parametrize("where", sorted(THREADS))
def test_loads_at_and_beyond_the_depth_limit(where: str) -> None:
    run = THREADS[where]
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    value = run(lambda: _core.loads(deepest))
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []
    too_deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    with pytest.raises(ms.ParseError):
        run(lambda: _core.loads(too_deep))
    # Objects nest the same way.
    objects = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert run(lambda: _core.loads(objects)) is not None


@pytest.mark.parametrize("where", sorted(THREADS))
def test_loads_refuses_a_4301_digit_number(where: str) -> None:
    run = THREADS[where]

    def refuse() -> None:
        with pytest.raises(ms.ParseError):
            _core.loads(DIGITS_4301)
        with pytest.raises(ms.ParseError):
            _core.loads(b'{"result":' + DIGITS_4301 + b"}")

    run(refuse)
    assert run(lambda: fastest(refuse)) < 0.010
    # 4300 digits is CPython's own limit: still a number.
    assert run(lambda: _core.loads(DIGITS_4300)) == int(DIGITS_4300)


# -- through a real answer ----------------------------------------------------


@pytest.mark.parametrize("where", sorted(THREADS))
@pytest.mark.parametrize("body", [DEEP, DIGITS_4301, b'{"data":{"result":' + DIGITS_4301 + b"}}"],
                         ids=["10MB brackets", "4301 digits", "4301 digits in an envelope"])
def test_a_hostile_answer_is_refused(server: RawServer, where: str, body: bytes) -> None:
    server.serve_200(body)
    with client_for(server) as client:
        def check() -> tuple[BaseException, float]:
            started = time.perf_counter()
            with pytest.raises(ms.ParseError) as raised:
                client.check("13800138000")
            return raised.value, time.perf_counter() - started

        error, elapsed = THREADS[where](check)
    # HTTP 200 with a body we refused: maybe billed, never retried.
    assert error.http_status == 200
    assert elapsed < 2.0, elapsed  # mostly moving 10 MB over loopback


def test_the_4300_digit_answer_is_a_number_not_a_result(server: RawServer) -> None:
    server.serve_200(DIGITS_4300)
    with client_for(server) as client, pytest.raises(ms.ResponseError) as raised:
        client.check("13800138000")
    assert type(raised.value) is ms.ResponseError  # a JSON number, not an object


def test_an_answer_over_the_cap_is_refused_within_bounded_memory(server: RawServer) -> None:
    cap = 16 << 20
    server.serve_200(b'"' + b"x" * (cap + (4 << 20)) + b'"')
    with open("/proc/self/statm") as f:
        before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with client_for(server) as client, pytest.raises(ms.ResponseTooLargeError):
        client.check("13800138000")
    with open("/proc/self/statm") as f:
        after = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert after - before < 2 * cap, (after - before) / 2**20


def test_batches_refuse_hostile_answers_too(server: RawServer) -> None:
    server.serve_200(DEEP)
    with client_for(server) as client:
        batch = client.check_many([f"138{i:08d}" for i in range(8)], concurrency=4)
    assert [type(o) for o in batch] == [ms.ParseError] * 8


# -- regressions of fuzz/fuzz_response.c ----------------------------------------
#
# Both findings were libcurl 7.88 leniencies, not crashes: what matters is that
# the outcome stays typed.  If libcurl tightens them, these tests say so.


def _answer(server: RawServer, raw: bytes) -> Any:
    server.answer = raw
    with ms.Client(APPCODE, base_url=server.base_url, timeout=5.0, retry=0) as client:
        try:
            return client.check("13800138000")
        except ms.MobileStatusError as error:
            return error


def test_fuzz_status_line_without_a_version_is_taken_as_200(server: RawServer) -> None:
    # crash-d7a9a2fa: "HTTP/th: ..." and a body of JSON null.  libcurl takes
    # any first line that starts with "HTTP/" and does not parse as HTTP/1.0
    # 200 ("HTTP 1.0, assume close after body").
    outcome = _answer(server, b"HTTP/th: \xc8\xcc\xf2-Request-Id: a?\x8d\n\r\n\rnull")
    assert type(outcome) is ms.ResponseError and outcome.http_status == 200
    assert str(outcome) == "empty answer"  # JSON null: no envelope


def test_fuzz_four_digit_status_code(server: RawServer) -> None:
    # crash-eb70eb8b: "HTTP/2 2100." -- libcurl reads an HTTP/2 status line
    # over HTTP/1 with %d, so any number comes through.  Non-200: never billed.
    outcome = _answer(server, b"HTTP/2 2100. OK\r\nContent-Length: 06\x04-Ca-R\r\n\r"
                              b'[{a:\n""1,.5]}')
    assert isinstance(outcome, ms.GatewayError) and outcome.http_status == 2100
