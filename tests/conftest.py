"""Shared fixtures: the sandbox comes from the package's own pytest plugin
(``mobilestatus_sandbox``), exactly as users get it."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import mobilestatus as ms
from mobilestatus.sandbox import Sandbox


@pytest.fixture
def sandbox(mobilestatus_sandbox: Sandbox) -> Sandbox:
    return mobilestatus_sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[ms.Client]:
    # Short deadlines keep fault tests fast; fast retries keep retry tests fast.
    with ms.Client(
        sandbox.appcode,
        base_url=sandbox.base_url,
        timeout=2.0,
        connect_timeout=1.0,
        retry=ms.RetryPolicy(2, backoff=0.01, max_backoff=2.0),
    ) as c:
        yield c


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt for this test, as in a terminal.

    A suite started in the background by a non-interactive shell (``make
    sanitize &``) inherits SIGINT ignored, and Python then keeps ignoring
    it; the Ctrl-C tests would prove nothing there.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)



@pytest.fixture
def ctrl_c_after(ctrl_c_raises: None) -> Iterator[Callable[[float], list[float]]]:
    """ctrl_c_after(delay) sends SIGINT to the main thread (where Python
    raises KeyboardInterrupt) after delay seconds, as a user pressing Ctrl-C
    would; the returned list receives the monotonic time it was sent."""
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    timers: list[threading.Timer] = []

    def schedule(delay: float) -> list[float]:
        sent: list[float] = []

        def interrupt() -> None:
            sent.append(time.monotonic())
            signal.pthread_kill(main, signal.SIGINT)  # type: ignore[arg-type]

        timer = threading.Timer(delay, interrupt)
        timers.append(timer)
        timer.start()
        return sent

    yield schedule
    for timer in timers:
        timer.cancel()
        timer.join()
