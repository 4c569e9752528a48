"""Start and stop a private nginx that plays the upstream for benchmarks.

A real nginx (Debian's ``nginx`` plus ``libnginx-mod-http-echo``) runs as a
subprocess with ``daemon off``, its own prefix and config in a temporary
directory, on a free port of 127.0.0.1.  It answers the upstream path

    POST /api-mall/api/mobile_status/check        at once
    POST /d20/api-mall/api/mobile_status/check    after 20 ms (echo_sleep)

with the sample success JSON of the marketplace product, ``Content-Type:
application/json;charset=UTF-8`` and an ``X-Ca-Request-Id`` header.  Both
routes send a ``Content-Length`` answer: the delayed route sleeps with
``echo_sleep`` and then hands over (``echo_exec``) to the same named
location as the immediate one, so the two differ only by the delay.

Usage::

    with Nginx() as server:
        server.url("")       # http://127.0.0.1:PORT
        server.url("/d20")   # http://127.0.0.1:PORT/d20 (a Client base_url)

``python benchmarks/nginx.py`` starts one and waits for Ctrl-C, for poking
at it with curl.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATH = "/api-mall/api/mobile_status/check"
SAMPLE_JSON = (
    '{"msg":"成功","success":true,"code":200,"data":{"orderNo":'
    '"202406282055560705659","result":"1","province":"北京","city":"北京",'
    '"channel":"移动","resultMsg":"正常"}}'
)
CONTENT_TYPE = "application/json;charset=UTF-8"
DELAYS_MS = (20,)

_PACKAGES = ("nginx", "libnginx-mod-http-echo")
_NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
_ECHO_CANDIDATES = (
    "/usr/lib/nginx/modules/ngx_http_echo_module.so",
    "/usr/lib64/nginx/modules/ngx_http_echo_module.so",
    "/usr/share/nginx/modules/ngx_http_echo_module.so",
)


def _find(candidates: tuple[str, ...]) -> str | None:
    for path in candidates:
        if os.path.exists(path):
            return path
    return None


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or _find(_NGINX_CANDIDATES)


def ensure_installed() -> tuple[str, str]:
    """Paths of the nginx binary and the echo module, installing the two
    Debian packages with apt-get when either is missing (as root, or
    through a password-less sudo)."""
    binary, module = _nginx_binary(), _find(_ECHO_CANDIDATES)
    if binary and module:
        return binary, module
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo"):
        prefix = ["sudo", "-n"]
    else:
        raise RuntimeError(
            "nginx and libnginx-mod-http-echo are needed: run as root, or "
            "apt-get install -y " + " ".join(_PACKAGES)
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing " + " ".join(_PACKAGES) + " (apt-get)", file=sys.stderr)
    subprocess.run(prefix + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        prefix + ["apt-get", "install", "-y", "-qq", *_PACKAGES], check=True, env=env
    )
    binary, module = _nginx_binary(), _find(_ECHO_CANDIDATES)
    if not (binary and module):
        raise RuntimeError("apt-get ran but nginx or its echo module is still missing")
    return binary, module


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark process
    dies, however it dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _sigterm_to_exit() -> None:
    """Turn SIGTERM (timeout(1), kill) into SystemExit so the context
    managers stop nginx and remove its directory."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def handler(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread
            pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(prefix: Path, port: int, module: str, workers: int, access_log: bool) -> str:
    body = SAMPLE_JSON.replace("\\", "\\\\").replace("'", "\\'")
    user = ""
    if os.geteuid() == 0:
        # The master would otherwise hand the workers to "nobody", who
        # cannot write the temp paths below.
        user = "user root root;"
    delayed = "\n".join(
        f"""
        location = /d{ms}{PATH} {{
            echo_sleep {ms / 1000:.3f};
            echo_exec @reply;
        }}"""
        for ms in DELAYS_MS
    )
    log_format = "access_log off;"
    if access_log:
        # For diagnosis only (profile_batch.py): when each request ended
        # and how long nginx held it, per connection.
        log_format = (
            "log_format timing '$msec $request_time $connection $connection_requests';\n"
            f"    access_log {prefix}/access.log timing buffer=256k flush=1s;"
        )
    return f"""
load_module {module};
{user}
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 16384;
    multi_accept on;
}}

http {{
    {log_format}
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_body_buffer_size 16k;
    server_tokens off;
    default_type "{CONTENT_TYPE}";

    server {{
        listen 127.0.0.1:{port} backlog=4096;

        location = {PATH} {{
            echo_exec @reply;
        }}
{delayed}
        location @reply {{
            add_header X-Ca-Request-Id $request_id always;
            return 200 '{body}';
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


class Nginx:
    """A private nginx on 127.0.0.1; a context manager."""

    def __init__(self, workers: int = 1, access_log: bool = False) -> None:
        self.workers = workers
        self.access_log = access_log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{prefix}"

    @property
    def version(self) -> str:
        binary = _nginx_binary() or "nginx"
        out = subprocess.run([binary, "-v"], capture_output=True, text=True)
        return (out.stderr or out.stdout).strip().split("/")[-1]

    def start(self, timeout: float = 10.0) -> Nginx:
        binary, module = ensure_installed()
        _sigterm_to_exit()
        atexit.register(self.stop)
        self._dir = tempfile.TemporaryDirectory(prefix="ms-bench-nginx-")
        prefix = Path(self._dir.name)
        conf = prefix / "nginx.conf"
        for attempt in range(5):
            self.port = free_port()
            conf.write_text(_config(prefix, self.port, module, self.workers, self.access_log), "utf-8")
            self.process = subprocess.Popen(
                [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it
                preexec_fn=_die_with_parent,
            )
            if self._wait_ready(timeout):
                return self
            err = self._stop_process()
            if "Address already in use" not in err:
                break
        self.stop()
        raise RuntimeError(f"nginx did not start:\n{err}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _stop_process(self) -> str:
        process, self.process = self.process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if self._dir is not None:
            log = Path(self._dir.name) / "error.log"
            if log.exists():
                err += log.read_text(errors="replace")
        return err

    def stop(self) -> None:
        self._stop_process()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def read_access_log(self) -> list[tuple[float, float, int, int]]:
        """(end time, nginx's request time, connection, request number on
        it) per request, after asking nginx to flush (reopen) its log."""
        if self._dir is None or self.process is None:
            return []
        log = Path(self._dir.name) / "access.log"
        os.kill(self.process.pid, signal.SIGUSR1)  # reopen: flushes the buffer
        time.sleep(0.3)
        rows = []
        for line in log.read_text().splitlines():
            end, took, conn, nreq = line.split()
            rows.append((float(end), float(took), int(conn), int(nreq)))
        return rows

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the master)."""
        if self.process is None:
            return []
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    with Nginx() as server:
        print(f"nginx {server.version} on {server.url()} (routes: {PATH}, "
              + ", ".join(f"/d{ms}{PATH}" for ms in DELAYS_MS) + "); Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
