"""pytest plugin: the ``mobilestatus_sandbox`` fixture.

Installed with the package (entry point ``pytest11``), so any test suite
can write::

    def test_my_code(mobilestatus_sandbox):
        client = Client(appcode=mobilestatus_sandbox.appcode,
                        base_url=mobilestatus_sandbox.base_url)
        ...
        assert mobilestatus_sandbox.count("13800138000") == 1

One sandbox server runs for the whole session; before each test its
counters are zeroed and its latency/faults/seed reset to the defaults, or to
the values of the marker::

    @pytest.mark.mobilestatus_sandbox(latency=0.05, faults={"empty_reply": 0.1}, seed=7)
    def test_flaky_network(mobilestatus_sandbox): ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import Sandbox

__all__ = ["mobilestatus_sandbox", "mobilestatus_sandbox_server"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mobilestatus_sandbox(latency=0.0, faults=None, seed=0): settings of "
        "the mobilestatus_sandbox fixture for this test",
    )


@pytest.fixture(scope="session")
def mobilestatus_sandbox_server() -> Iterator[Sandbox]:
    """The session's sandbox server (not reset between tests)."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def mobilestatus_sandbox(
    request: pytest.FixtureRequest, mobilestatus_sandbox_server: Sandbox
) -> Iterator[Sandbox]:
    """A running :class:`~mobilestatus.sandbox.Sandbox`, reset for this test."""
    sandbox = mobilestatus_sandbox_server
    marker = request.node.get_closest_marker("mobilestatus_sandbox")
    options = dict(marker.kwargs) if marker is not None else {}
    unknown = set(options) - {"latency", "faults", "seed"}
    if unknown:
        raise pytest.UsageError(
            f"mobilestatus_sandbox marker: unknown options {sorted(unknown)}"
        )
    sandbox.configure(
        latency=float(options.get("latency", 0.0)),
        faults=options.get("faults") or {},
        seed=int(options.get("seed", 0)),
    )
    sandbox.reset()
    try:
        yield sandbox
    finally:
        sandbox.configure(latency=0.0, faults={}, seed=0)
