"""The framework examples in examples/, run against the sandbox.

Flask and Django go through their own test clients, FastAPI through
Starlette's TestClient (entered, so the app's lifespan opens and closes its
AsyncClient); the bare WSGI app runs under a real gunicorn (``--preload
-w 3``), so the Client it creates at import in the master is inherited by
three forked workers.  Settings reach every example the way they would in
production: through the environment (MOBILESTATUS_APPCODE,
MOBILESTATUS_BASE_URL, MOBILESTATUS_MAX_RETRIES).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest

import mobilestatus as ms
from mobilestatus import Status
from mobilestatus.sandbox import SCENARIOS, Sandbox

ROOT = Path(__file__).resolve().parents[1]
DJANGO_PROJECT = ROOT / "examples" / "django_project"
for _path in (str(ROOT), str(DJANGO_PROJECT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

NORMAL = SCENARIOS["normal"]  # 13800138000: 正常, 中国移动, 北京
SUSPENDED = SCENARIOS["suspended"]


@pytest.fixture(scope="module")
def own_sandbox() -> Iterator[Sandbox]:
    """A sandbox of this module's own (not the shared session one)."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(own_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    own_sandbox.reset()
    monkeypatch.setenv("MOBILESTATUS_APPCODE", own_sandbox.appcode)
    monkeypatch.setenv("MOBILESTATUS_BASE_URL", own_sandbox.base_url)
    monkeypatch.setenv("MOBILESTATUS_MAX_RETRIES", "0")
    return own_sandbox


def assert_normal(payload: dict[str, Any], number: str = NORMAL) -> None:
    assert payload["number"] == number
    assert payload["status"] == "NORMAL"
    assert payload["carrier"] == "CHINA_MOBILE"


# -- Flask ---------------------------------------------------------------


@pytest.fixture
def flask_client(sb: Sandbox) -> Any:
    from examples.flask_app import create_app, mobilestatus

    app = create_app({"TESTING": True})
    with app.app_context():
        yield app.test_client()
        mobilestatus.client.close()


def test_flask_check(flask_client: Any, sb: Sandbox) -> None:
    response = flask_client.get(f"/check/{NORMAL}")
    assert response.status_code == 200
    assert_normal(response.get_json())
    assert sb.count(NORMAL) == 1

    # Any accepted spelling of the number, URL-encoded.
    response = flask_client.get("/check/" + quote("+86 138-0013-8005"))
    assert response.status_code == 200
    assert response.get_json()["status"] == "SUSPENDED"
    assert sb.count(SUSPENDED) == 1


@pytest.mark.parametrize(
    ("number", "http_status", "error"),
    [
        ("12345", 400, "InvalidNumberError"),
        (SCENARIOS["throttled_user"], 429, "RateLimitError"),
        (SCENARIOS["quota_exhausted"], 502, "QuotaExceededError"),
        (SCENARIOS["internal_error"], 502, "UpstreamError"),
        (SCENARIOS["business_error"], 502, "ApiError"),
    ],
)
def test_flask_error_mapping(flask_client: Any, sb: Sandbox, number: str,
                             http_status: int, error: str) -> None:
    response = flask_client.get(f"/check/{number}")
    assert response.status_code == http_status
    payload = response.get_json()
    assert payload["error"] == error
    assert sb.appcode not in response.get_data(as_text=True)
    # An invalid number is refused before any call is made (and billed).
    assert sb.total == (0 if http_status == 400 else 1)


def test_flask_rate_limit_passes_retry_after_on(flask_client: Any, sb: Sandbox) -> None:
    response = flask_client.get(f"/check/{SCENARIOS['too_many_requests']}")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_flask_app_shares_one_client_between_threads(flask_client: Any, sb: Sandbox) -> None:
    failures: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(20):
                number = f"1861{t:03d}{i:04d}"
                response = flask_client.get(f"/check/{number}")
                assert response.status_code == 200, response.get_data(as_text=True)
                assert response.get_json()["number"] == number
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures[:3]
    assert sb.total == 8 * 20
    assert sb.connections <= 8


# -- Django --------------------------------------------------------------


@pytest.fixture(scope="module")
def django_client(own_sandbox: Sandbox) -> Iterator[Any]:
    # Django reads settings once per process, when it is set up.
    env = {
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "MOBILESTATUS_APPCODE": own_sandbox.appcode,
        "MOBILESTATUS_BASE_URL": own_sandbox.base_url,
        "MOBILESTATUS_MAX_RETRIES": "0",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        import django
        from django.test import Client

        django.setup()
        from django.conf import settings

        from checks.client import reset_client

        # The settings module read the environment set above.
        assert settings.MOBILESTATUS["BASE_URL"] == own_sandbox.base_url
        yield Client()
        reset_client()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_django_check(django_client: Any, sb: Sandbox) -> None:
    response = django_client.get(f"/check/{NORMAL}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert_normal(response.json())
    assert sb.count(NORMAL) == 1


@pytest.mark.parametrize(
    ("number", "http_status", "error"),
    [
        ("12345", 400, "InvalidNumberError"),
        ("23800138000", 400, "InvalidNumberError"),
        (SCENARIOS["throttled_api"], 429, "RateLimitError"),
        (SCENARIOS["quota_exhausted"], 502, "QuotaExceededError"),
        (SCENARIOS["bad_gateway_html"], 502, "UpstreamError"),
        (SCENARIOS["business_error"], 502, "ApiError"),
    ],
)
def test_django_error_mapping(django_client: Any, sb: Sandbox, number: str,
                              http_status: int, error: str) -> None:
    response = django_client.get(f"/check/{number}")
    assert response.status_code == http_status
    assert response.json()["error"] == error
    assert sb.appcode not in response.content.decode()
    assert sb.total == (0 if http_status == 400 else 1)


def test_django_only_get(django_client: Any, sb: Sandbox) -> None:
    assert django_client.post(f"/check/{NORMAL}").status_code == 405
    assert sb.total == 0


def test_django_override_settings_replaces_the_client(django_client: Any, sb: Sandbox) -> None:
    """A transport failure maps to 502; override_settings swaps the client."""
    from django.conf import settings
    from django.test import override_settings

    broken = {**settings.MOBILESTATUS, "BASE_URL": sb.url(fault="empty_reply")}
    with override_settings(MOBILESTATUS=broken):
        response = django_client.get(f"/check/{NORMAL}")
        assert response.status_code == 502
        assert response.json()["error"] in ("TransportError", "ConnectError")
    response = django_client.get(f"/check/{NORMAL}")
    assert response.status_code == 200
    assert sb.total == 2


# -- FastAPI -------------------------------------------------------------


@pytest.fixture
def fastapi_client(sb: Sandbox) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from examples.fastapi_app.main import app

    # Entering the TestClient runs the lifespan, which reads the environment
    # set by ``sb`` and opens the AsyncClient; leaving it closes the client.
    with TestClient(app) as client:
        yield client


def test_fastapi_check(fastapi_client: Any, sb: Sandbox) -> None:
    response = fastapi_client.get(f"/check/{NORMAL}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert_normal(response.json())
    assert response.json()["status_label"] == Status.NORMAL.label_en
    assert sb.appcode not in response.text
    assert sb.count(NORMAL) == 1

    # Any accepted spelling of the number, URL-encoded; the last digit
    # picks the status (5: suspended, 9: powered off).
    for spelling, number, status in [
        ("+86 138-0013-8005", SUSPENDED, "SUSPENDED"),
        ("008613800138009", SCENARIOS["powered_off"], "POWERED_OFF"),
    ]:
        response = fastapi_client.get("/check/" + quote(spelling))
        assert response.status_code == 200, response.text
        assert response.json()["number"] == number
        assert response.json()["status"] == status
        assert sb.appcode not in response.text
        assert sb.count(number) == 1
    assert sb.total == 3


@pytest.mark.parametrize(
    ("number", "http_status", "error"),
    [
        ("12345", 400, "InvalidNumberError"),
        ("23800138000", 400, "InvalidNumberError"),
        (SCENARIOS["throttled_user"], 429, "RateLimitError"),
        (SCENARIOS["quota_exhausted"], 502, "QuotaExceededError"),
        (SCENARIOS["invalid_appcode"], 502, "AuthenticationError"),
        (SCENARIOS["internal_error"], 502, "UpstreamError"),
        (SCENARIOS["bad_gateway_html"], 502, "UpstreamError"),
        (SCENARIOS["business_error"], 502, "ApiError"),
    ],
)
def test_fastapi_error_mapping(fastapi_client: Any, sb: Sandbox, number: str,
                               http_status: int, error: str) -> None:
    response = fastapi_client.get(f"/check/{number}")
    assert response.status_code == http_status
    payload = response.json()
    assert payload["error"] == error
    assert payload["message"]
    assert sb.appcode not in response.text
    # An invalid number is refused before any call is made (and billed).
    assert sb.total == (0 if http_status == 400 else 1)
    if http_status == 400:
        assert sb.connections == 0


def test_fastapi_rate_limit_passes_retry_after_on(fastapi_client: Any, sb: Sandbox) -> None:
    response = fastapi_client.get(f"/check/{SCENARIOS['too_many_requests']}")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "RateLimitError"
    assert sb.appcode not in response.text


def test_fastapi_requests_share_one_client_on_the_loop(
        sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests from 8 threads run at once on the TestClient's event loop,
    all through the one AsyncClient the lifespan opened."""
    from starlette.testclient import TestClient

    from examples.fastapi_app.main import app

    # 50 ms per answer, so the requests overlap on the loop.
    monkeypatch.setenv("MOBILESTATUS_BASE_URL", sb.url(latency=0.05))
    failures: list[BaseException] = []

    with TestClient(app) as client:
        def worker(t: int) -> None:
            try:
                for i in range(5):
                    number = f"1861{t:03d}{i:04d}"
                    response = client.get(f"/check/{number}")
                    assert response.status_code == 200, response.text
                    assert response.json()["number"] == number
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures[:3]
    assert sb.total == 8 * 5
    assert 1 <= sb.connections <= 8


def test_fastapi_lifespan_closes_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leaving the TestClient ends the lifespan, which closes the AsyncClient
    and with it every connection to the API."""
    from starlette.testclient import TestClient

    from examples.fastapi_app.main import app

    # A sandbox of its own: the shared one still holds the module-scoped
    # Django client's kept-alive connection.
    with Sandbox() as fresh:
        monkeypatch.setenv("MOBILESTATUS_APPCODE", fresh.appcode)
        monkeypatch.setenv("MOBILESTATUS_BASE_URL", fresh.base_url)
        monkeypatch.setenv("MOBILESTATUS_MAX_RETRIES", "0")
        with TestClient(app) as client:
            opened: ms.AsyncClient = app.state.mobilestatus
            for _ in range(3):
                response = client.get(f"/check/{NORMAL}")
                assert response.status_code == 200
                assert fresh.appcode not in response.text
            # One kept-alive connection, reused and still open.
            assert fresh.connections == 1
            assert fresh.open_connections == 1

        deadline = time.monotonic() + 5
        while fresh.open_connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fresh.open_connections == 0
        assert fresh.total == 3
        with pytest.raises(RuntimeError, match="closed"):
            asyncio.run(opened.check(NORMAL))

        # A second start of the app opens a new client (the lifespan runs
        # again) against whatever the environment says now.
        with TestClient(app) as client:
            assert app.state.mobilestatus is not opened
            assert client.get(f"/check/{NORMAL}").status_code == 200
        assert fresh.total == 4


# -- gunicorn --preload -w 3 ----------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"gunicorn did not listen on {port} within {timeout}s")


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


WARMUP_HOOK = """
import os

def when_ready(server):
    # In the master, after --preload imported the app and before the
    # workers are forked: leave a kept-alive connection for them to inherit.
    from examples.gunicorn_app import client
    client.check({number!r})
    server.log.info("master %s holds a warm connection", os.getpid())
"""


def test_gunicorn_preload_workers_share_the_client_safely(sb: Sandbox, tmp_path: Path) -> None:
    port = _free_port()
    warmup = "13812340000"
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(textwrap.dedent(WARMUP_HOOK.format(number=warmup)))
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "MOBILESTATUS_APPCODE": sb.appcode,
        # Each check takes 50 ms, so concurrent requests keep several
        # workers busy at once.
        "MOBILESTATUS_BASE_URL": sb.url(latency=0.05),
        "MOBILESTATUS_MAX_RETRIES": "0",
    }
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--preload", "-w", "3",
             "-b", f"127.0.0.1:{port}", "-c", str(config),
             "--graceful-timeout", "5", "--timeout", "30",
             "examples.gunicorn_app:app"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_listening(port, proc, timeout=30)
        # gunicorn listens before it calls when_ready, so the master's
        # warm-up check may still be on its way when the port answers.
        deadline = time.monotonic() + 10
        while sb.count(warmup) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sb.count(warmup) == 1 and sb.connections == 1  # the master's

        numbers = [f"1381234{i:04d}" for i in range(1, 29)]
        paths = [f"/check/{n}" for n in numbers]
        paths += ["/check/12345", f"/check/{SCENARIOS['quota_exhausted']}"]
        answers: dict[str, tuple[int, dict[str, Any]]] = {}
        failures: list[BaseException] = []

        def client_thread(k: int) -> None:
            try:
                for path in paths[k::6]:
                    answers[path] = _get(port, path)
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=client_thread, args=(k,), daemon=True)
                   for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a request hung"
        assert not failures, failures[:3]

        checking_pids = set()
        for n in numbers:
            status, payload = answers[f"/check/{n}"]
            assert status == 200, payload
            assert payload["number"] == n
            assert payload["order_no"].endswith(n)  # this worker's own answer
            assert payload["pid"] != proc.pid  # answered by a worker, not the master
            checking_pids.add(payload["pid"])
            assert sb.count(n) == 1
        status, payload = answers["/check/12345"]
        assert (status, payload["error"]) == (400, "InvalidNumberError")
        status, payload = answers[f"/check/{SCENARIOS['quota_exhausted']}"]
        assert (status, payload["error"]) == (502, "QuotaExceededError")
        checking_pids.add(payload["pid"])

        print(f"\nworkers that checked: {sorted(checking_pids)}; connections: {sb.connections}")
        assert len(checking_pids) >= 2, checking_pids
        assert sb.total == 1 + len(numbers) + 1
        # The master's connection was never used by a worker: each worker
        # that checked opened exactly one connection of its own.
        assert sb.connections == 1 + len(checking_pids)
    except BaseException:
        sys.stderr.write(log.read_text(errors="replace"))
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful stop
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
                pytest.fail("gunicorn did not stop within 15 s of SIGTERM")
    assert proc.returncode == 0, log.read_text(errors="replace")
