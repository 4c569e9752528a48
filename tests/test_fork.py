"""A Client created before fork(): gunicorn --preload, Celery's prefork
pool, multiprocessing.

The parent holds a kept-alive connection when it forks.  Parent and child
must never share it: the child drops the inherited sessions (closing its
copies of the sockets without libcurl speaking on them) and connects
afresh, and the parent carries on with its own connection as if nothing
had happened.  Every answer is matched to its request through the
sandbox's number echo (``orderNo`` ends with the number), so a response
read by the wrong process shows up as a mismatch, not as luck.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import select
import signal
import threading
import time
import traceback
from typing import Any, Callable, Iterator

import pytest

import mobilestatus as ms
from mobilestatus.sandbox import Sandbox

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns about fork() in a process with threads (the
    # sandbox runs in one).  That is the situation under test.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILD_DEADLINE = 20  # seconds; SIGALRM ends a child that hangs


def number(prefix: str, i: int) -> str:
    """Distinct ordinary numbers; digits 4-7 are never 0000 (scenarios)."""
    return f"{prefix}{1 + i // 10000:04d}{i % 10000:04d}"


def assert_echo(requested: str, order_no: str | None) -> None:
    assert order_no is not None and order_no.endswith(requested), (requested, order_no)


def rows_of(numbers: list[str], batch: ms.BatchResult) -> list[list[Any]]:
    """[requested, answered number, orderNo] per input; errors stay visible."""
    return [
        [n, o.number, o.order_no] if isinstance(o, ms.CheckResult) else [n, None, repr(o)]
        for n, o in zip(numbers, batch)
    ]


def checks(client: ms.Client, numbers: list[str]) -> list[list[Any]]:
    rows = []
    for n in numbers:
        result = client.check(n)
        rows.append([n, result.number, result.order_no])
    return rows


class ChildHung(AssertionError):
    """A forked child did not finish within its deadline."""


def run_in_child(work: Callable[[], Any], *, timeout: float = CHILD_DEADLINE,
                 parent_work: Callable[[], Any] | None = None,
                 fork: Callable[[], int] = os.fork) -> tuple[Any, Any]:
    """fork(); the child runs work() and sends back its JSON result, while
    the parent runs parent_work().  Returns (child result, parent result).

    The child never returns into pytest: it always ends with os._exit.
    A child still running after ``timeout`` s is killed (it is our own
    pid) and ChildHung is raised."""
    read_fd, write_fd = os.pipe()
    pid = fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(read_fd)
            signal.alarm(int(timeout) + 1)
            try:
                payload = {"ok": work()}
                status = 0
            except BaseException:
                payload = {"error": traceback.format_exc()}
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(write_fd, data):]
        finally:
            os._exit(status)

    os.close(write_fd)
    reaped = False
    try:
        parent_result = parent_work() if parent_work is not None else None
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_fd], [], [], max(0.0, left))
            if not ready:
                break
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        status = 0
        while not reaped and time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            reaped = done == pid
            if not reaped:
                time.sleep(0.01)
        if not reaped:
            raise ChildHung(f"the forked child did not finish within {timeout}s")
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
            raise ChildHung(f"the forked child hung (killed by its {timeout}s alarm)")
    finally:
        os.close(read_fd)
        if not reaped:  # our own child: never leave it running
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    payload = json.loads(b"".join(chunks) or b"{}")
    assert "error" not in payload, "child failed:\n" + payload["error"]
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return payload["ok"], parent_result


@pytest.fixture(scope="module")
def own_sandbox() -> Iterator[Sandbox]:
    """A sandbox of this module's own (not the shared session one)."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(own_sandbox: Sandbox) -> Sandbox:
    own_sandbox.reset()
    return own_sandbox


def test_parent_and_child_each_use_their_own_connection(sb: Sandbox) -> None:
    client = ms.Client(sb.appcode, base_url=sb.base_url, retry=0)
    first = client.check(number("138", 0))  # the parent's kept-alive connection
    assert_echo(number("138", 0), first.order_no)
    assert sb.connections == 1
    parent_port = sb.peer_ports[0]

    child_numbers = [number("150", i) for i in range(100)]
    parent_numbers = [number("138", i) for i in range(1, 101)]
    # Both sides run at the same time.
    child_rows, parent_rows = run_in_child(
        lambda: checks(client, child_numbers),
        parent_work=lambda: checks(client, parent_numbers),
    )

    for rows, asked in ((child_rows, child_numbers), (parent_rows, parent_numbers)):
        assert [row[0] for row in rows] == asked
        for requested, got, order_no in rows:
            assert got == requested
            assert_echo(requested, order_no)
    for n in child_numbers + parent_numbers:
        assert sb.count(n) == 1, n

    # The child connected once, afresh; the parent never reconnected.
    assert sb.connections == 2
    assert sb.peer_ports[0] == parent_port and sb.peer_ports[1] != parent_port

    # The child is gone (its copies of the sockets closed with it): the
    # parent's next check still goes over its original connection.
    last = client.check(number("138", 500))
    assert_echo(number("138", 500), last.order_no)
    assert sb.connections == 2
    client.close()


def test_child_that_only_closes_the_client_leaves_the_parent_alone(sb: Sandbox) -> None:
    """A child that never checks but closes the inherited client (as an
    atexit handler or a framework shutdown hook would) must not close the
    parent's connection."""
    client = ms.Client(sb.appcode, base_url=sb.base_url, retry=0)
    client.check(number("139", 0))
    run_in_child(lambda: client.close())
    for i in range(1, 6):
        assert_echo(number("139", i), client.check(number("139", i)).order_no)
    assert sb.connections == 1
    client.close()


def test_a_fork_from_c_is_caught_per_session(sb: Sandbox) -> None:
    """fork() called from C runs none of Python's at-fork hooks, so the
    child's pool still offers the parent's warm session.  The C core tells
    by its pthread_atfork process generation that the handle is the
    parent's: it leaves that connection alone and connects afresh."""
    libc = ctypes.CDLL(None, use_errno=True)
    client = ms.Client(sb.appcode, base_url=sb.base_url, retry=0)
    client.check(number("135", 0))
    assert sb.connections == 1

    def child() -> list[list[Any]]:
        return checks(client, [number("135", i) for i in range(1, 21)])

    child_rows, _ = run_in_child(child, fork=libc.fork)
    for requested, answered, order_no in child_rows:
        assert answered == requested
        assert_echo(requested, order_no)
    assert sb.connections == 2  # the child's own
    for i in range(21, 41):
        assert_echo(number("135", i), client.check(number("135", i)).order_no)
    assert sb.connections == 2  # the parent kept its connection throughout
    client.close()


def test_child_batch_after_fork(sb: Sandbox) -> None:
    """check_many in the child runs on new connections of its own."""
    client = ms.Client(sb.appcode, base_url=sb.base_url, retry=0)
    client.check(number("186", 0))
    numbers = [number("186", i) for i in range(1, 201)]

    def child() -> list[list[Any]]:
        return rows_of(numbers, client.check_many(numbers, concurrency=8))

    rows, _ = run_in_child(child)
    assert [row[0] for row in rows] == numbers
    for requested, got, order_no in rows:
        assert got == requested, order_no
        assert_echo(requested, order_no)
    assert sb.total == 1 + len(numbers)
    assert 2 <= sb.connections <= 1 + 8
    assert_echo(number("186", 999), client.check(number("186", 999)).order_no)
    client.close()


def test_fork_while_other_threads_have_checks_in_flight(sb: Sandbox) -> None:
    """fork() from one thread while six others wait for answers on their
    connections.  The child inherits those sockets with requests in
    flight; it must not read them, and the parent's threads must still get
    their own answers."""
    latency, threads, rounds = 0.3, 6, 3
    client = ms.Client(sb.appcode, base_url=sb.url(latency=latency), retry=0,
                       pool_size=threads)
    results: dict[int, list[list[Any]]] = {}
    failures: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            results[t] = checks(client, [number("158", t * 100 + k) for k in range(rounds)])
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 5
    while sb.total < threads and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sb.total == threads  # all six requests are waiting on the sandbox
    time.sleep(latency / 3)

    child_numbers = [number("177", i) for i in range(20)]

    def child() -> list[list[Any]]:
        rows = checks(client, child_numbers[:2])
        rest = child_numbers[2:]
        return rows + rows_of(rest, client.check_many(rest, concurrency=6))

    child_rows, _ = run_in_child(child)
    for w in workers:
        w.join(timeout=20)
    assert not any(w.is_alive() for w in workers), "a parent thread hung"
    assert not failures, failures[:3]

    assert [row[0] for row in child_rows] == child_numbers
    for rows in [child_rows, *results.values()]:
        for requested, got, order_no in rows:
            assert got == requested, order_no
            assert_echo(requested, order_no)
    assert len(results) == threads
    assert sb.total == threads * rounds + len(child_numbers)
    # The parent kept its six connections; the child made its own.
    assert threads + 1 <= sb.connections <= threads + 1 + 6
    client.close()


def test_fork_while_another_thread_is_inside_the_pool(sb: Sandbox) -> None:
    """Deterministic form of a race seen in a stress run (a parent with 8
    threads checking in a loop, forking repeatedly): a thread is inside the
    session pool's critical section at the instant of fork()."""
    client = ms.Client(sb.appcode, base_url=sb.base_url, retry=0)
    client.check(number("166", 0))
    inside, leave = threading.Event(), threading.Event()

    def hold_pool_lock() -> None:
        with client._pool._lock:  # what acquire()/release() do for a moment
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold_pool_lock, daemon=True)
    holder.start()
    assert inside.wait(5)
    try:
        rows, _ = run_in_child(lambda: checks(client, [number("166", 1)]), timeout=2)
    finally:
        leave.set()
        holder.join(5)
    assert_echo(number("166", 1), rows[0][2])
    client.close()


# -- multiprocessing's fork start method (Celery's prefork pool works alike)

_CLIENT: ms.Client | None = None


def _pool_check(n: str) -> tuple[int, str, str | None]:
    assert _CLIENT is not None
    return os.getpid(), n, _CLIENT.check(n).order_no


def test_multiprocessing_fork_pool_uses_the_inherited_client(sb: Sandbox) -> None:
    global _CLIENT
    _CLIENT = client = ms.Client(sb.appcode, base_url=sb.base_url, retry=0)
    try:
        client.check(number("189", 0))  # warm connection, inherited by the workers
        numbers = [number("189", i) for i in range(1, 61)]
        pool = multiprocessing.get_context("fork").Pool(2)
        try:
            rows = pool.map_async(_pool_check, numbers, chunksize=5).get(timeout=30)
        finally:
            pool.terminate()
            pool.join()
        assert [n for _, n, _ in rows] == numbers
        for _, n, order_no in rows:
            assert_echo(n, order_no)
        workers = {pid for pid, _, _ in rows}
        assert os.getpid() not in workers
        # Each worker that answered connected afresh; the parent's
        # connection was never used by a worker.
        assert sb.connections == 1 + len(workers)
        assert_echo(number("189", 99), client.check(number("189", 99)).order_no)
        assert sb.connections == 1 + len(workers)
    finally:
        _CLIENT = None
        client.close()
