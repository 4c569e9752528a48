"""The sandbox server: an asyncio HTTP/1.1 emulator of the upstream API.

One daemon thread runs its own event loop.  Each TCP connection is a
:class:`_Connection` (an :class:`asyncio.Protocol` with a small hand-written
HTTP/1.1 parser): ordinary answers are written synchronously from
``data_received``; anything that waits (latency, slow answers, stalls,
endless bodies) runs as a task of that connection, so waits never block
other connections and requests on one connection stay in order.

Nothing here logs or prints what a client sent; the AppCode is compared,
never recorded outside :class:`RecordedRequest` (whose repr hides it).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
import select
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Coroutine, Iterator, Mapping
from email.utils import formatdate
from types import TracebackType
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qsl, quote

from . import _scenarios as sc

__all__ = ["RecordedRequest", "Sandbox", "serve"]

_log = logging.getLogger("mobilestatus.sandbox")

ROUTE_PREFIX: Final = "/_sandbox/"
MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 64 * 1024
MAX_BUFFERED: Final = 1024 * 1024
HUGE_HEADER_LINES: Final = 400  # x ~1 KiB = 400 KiB of headers
OVERSIZED_BYTES: Final = 2 * 1024 * 1024
ENDLESS_CHUNK: Final = 64 * 1024
STOP_GRACE: Final = 1.0
MAX_ARRIVALS: Final = 100_000

_REASONS: Final[dict[int, str]] = {
    100: "Continue", 200: "OK", 302: "Found", 400: "Bad Request",
    403: "Forbidden", 404: "Not Found", 413: "Payload Too Large",
    429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

_JSON: Final = "application/json;charset=UTF-8"
_TEXT: Final = "text/plain;charset=UTF-8"
_HTML: Final = "text/html"

_GARBAGE_STATUS: Final = b"HTTP/1.1 2OO 0K\r\nContent-Length: 0\r\n\r\n"
_BAD_HEADER: Final = b"This header line has no colon"
_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n"
    b"<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_503: Final = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title>"
    b"</head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable"
    b"</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)
_LINGER_RST: Final = struct.pack("ii", 1, 0)


def _check_appcode(appcode: str) -> str:
    if not appcode or not appcode.isascii() or not appcode.isprintable() \
            or " " in appcode:
        raise ValueError("appcode must be printable ASCII without spaces")
    return appcode


def _parse_faults(
    faults: Mapping[str, float] | None,
) -> tuple[tuple[tuple[float, str], ...], tuple[tuple[float, str], ...]]:
    """Validate ``faults`` and split it into cumulative tables.

    Returns (request-level, connection-level) tables of (upper bound,
    name), sorted by name so the draw does not depend on dict order.
    """
    if not faults:
        return (), ()
    request: list[tuple[float, str]] = []
    connection: list[tuple[float, str]] = []
    total_r = total_c = 0.0
    for name in sorted(faults):
        share = float(faults[name])
        if name not in sc.FAULTS:
            raise ValueError(f"unknown fault {name!r}; see SCENARIOS")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"fault share for {name!r} must be in [0, 1]")
        if share == 0.0:
            continue
        if name in sc.CONNECTION_FAULTS:
            total_c += share
            connection.append((total_c, name))
        else:
            total_r += share
            request.append((total_r, name))
    if total_r > 1.0 + 1e-9 or total_c > 1.0 + 1e-9:
        raise ValueError("fault shares add up to more than 1")
    return tuple(request), tuple(connection)


def _uniform(seed: int, key: str, k: int) -> float:
    """A number in [0, 1) fixed by (seed, key, k)."""
    digest = hashlib.blake2b(
        f"{seed}\x00{key}\x00{k}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _pick(table: tuple[tuple[float, str], ...], u: float) -> str | None:
    for bound, name in table:
        if u < bound:
            return name
    return None


class _Settings(NamedTuple):
    latency: float
    request_faults: tuple[tuple[float, str], ...]
    connection_faults: tuple[tuple[float, str], ...]
    seed: int


class _Route(NamedTuple):
    latency: float | None
    fault: str | None
    error: str | None


def _parse_route(path: str) -> tuple[str, _Route]:
    """Split ``/_sandbox/k=v/.../rest`` into (rest, options)."""
    if not path.startswith(ROUTE_PREFIX):
        return path, _Route(None, None, None)
    latency: float | None = None
    fault: str | None = None
    segments = path[len(ROUTE_PREFIX):].split("/")
    i = 0
    while i < len(segments) and "=" in segments[i]:
        key, _, value = segments[i].partition("=")
        i += 1
        if key == "latency":
            try:
                if value.endswith("ms"):
                    latency = float(value[:-2]) / 1000.0
                elif value.endswith("s"):
                    latency = float(value[:-1])
                else:
                    latency = float(value)
            except ValueError:
                return "", _Route(None, None, f"bad latency {value!r}")
            if not 0.0 <= latency <= 3600.0:
                return "", _Route(None, None, f"bad latency {value!r}")
        elif key == "fault":
            if value not in sc.FAULTS:
                return "", _Route(None, None, f"unknown fault {value!r}")
            fault = value
        else:
            return "", _Route(None, None, f"unknown option {key!r}")
    return "/" + "/".join(segments[i:]), _Route(latency, fault, None)


# --------------------------------------------------------------------------
# What the sandbox remembers of a request.


class _Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers; repr hides credentials."""

    __slots__ = ("_items", "_map")

    def __init__(self, items: tuple[tuple[str, str], ...]) -> None:
        self._items = items
        self._map = {name.lower(): value for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    @property
    def raw(self) -> tuple[tuple[str, str], ...]:
        """The header lines as received: (name, value) in order."""
        return self._items

    def __repr__(self) -> str:
        shown = {
            name: ("<hidden>" if name in ("authorization", "x-ca-signature")
                   else value)
            for name, value in self._map.items()
        }
        return f"Headers({shown!r})"


class RecordedRequest:
    """One request as the sandbox received it (for assertions in tests).

    ``headers`` keeps the ``Authorization`` value so a test can check its
    exact format, but neither this object's repr nor the headers' repr
    shows it.
    """

    __slots__ = ("method", "target", "version", "headers", "body",
                 "peer_port")

    method: str
    target: str
    version: str
    headers: _Headers
    body: bytes
    peer_port: int

    def __init__(self, method: str, target: str, version: str,
                 headers: tuple[tuple[str, str], ...], body: bytes,
                 peer_port: int) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = _Headers(headers)
        self.body = body
        self.peer_port = peer_port

    @property
    def form(self) -> dict[str, str]:
        """The body decoded as ``application/x-www-form-urlencoded``."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace")))

    def __repr__(self) -> str:
        return (f"RecordedRequest({self.method} {self.target} {self.version}, "
                f"peer_port={self.peer_port}, headers={self.headers!r}, "
                f"body={self.body!r})")


# --------------------------------------------------------------------------
# Counters.


class _Stats:
    """Every counter of one sandbox; all access under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.total = 0
        self.per_number: Counter[str] = Counter()
        self.per_scenario: Counter[str] = Counter()
        self.draws: Counter[str] = Counter()
        self.connections = 0
        self.peer_ports: list[int] = []
        self.arrivals: deque[float] = deque(maxlen=MAX_ARRIVALS)
        self.discarded = 0
        self.auth_failures = 0
        self.other_connections = 0
        self.other_requests = 0
        self.appcode_leaks = 0
        self.last_raw: tuple[str, str, str, tuple[tuple[str, str], ...],
                             bytes, int] | None = None


# --------------------------------------------------------------------------
# One TCP connection.


class _Request(NamedTuple):
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    lookup: dict[str, str]
    body: bytes
    keep_alive: bool


class _BadRequest(Exception):
    pass


def _decode_chunked(data: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body at ``data[start:]``.

    Returns (body, end offset) or None if incomplete; raises _BadRequest.
    """
    body = bytearray()
    pos = start
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            if len(data) - pos > 1024:
                raise _BadRequest("chunk size line too long")
            return None
        size_text = bytes(data[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY:
            raise _BadRequest("chunked body too large")
        if size == 0:
            # Trailers, then an empty line.
            end = data.find(b"\r\n\r\n", eol)
            if end == eol:
                return bytes(body), eol + 4
            if data[eol + 2:eol + 4] == b"\r\n":
                return bytes(body), eol + 4
            if end < 0:
                return None
            return bytes(body), end + 4
        if len(data) < eol + 2 + size + 2:
            return None
        body += data[eol + 2:eol + 2 + size]
        if data[eol + 2 + size:eol + 4 + size] != b"\r\n":
            raise _BadRequest("chunk not followed by CRLF")
        pos = eol + 4 + size


class _Connection(asyncio.Protocol):
    """One accepted TCP connection of the main or the 'other' listener."""

    def __init__(self, engine: _Engine, role: str) -> None:
        self.engine = engine
        self.role = role
        self.transport: asyncio.Transport | None = None
        self.peer_port = 0
        self.buf = bytearray()
        self.busy = False
        self.closing = False
        self.silent = False  # discard everything the peer sends
        self.doomed = False  # keepalive_race: drop the next request
        self.eof = False
        self.continue_sent = False
        self.reading_paused = False
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer_port = int(peer[1]) if peer else 0
        self.engine.conns.add(self)
        self.engine.on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self.closing or self.silent:
            return
        self.buf += data
        if self.busy:
            if len(self.buf) > MAX_BUFFERED and not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self.process()

    def eof_received(self) -> bool | None:
        self.eof = True
        # Keep the write side open while an answer is still on its way,
        # but not for a stall: a client that gave up frees the connection.
        return True if self.busy and not self.silent else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.engine.conns.discard(self)
        if self.task is not None:
            self.task.cancel()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- output helpers ----

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its high-water mark."""
        if self.closing:
            raise ConnectionResetError("connection lost")
        if not self._write_paused:
            return
        loop = asyncio.get_running_loop()
        self._drain_waiter = loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None

    async def flushed(self) -> None:
        """Wait until every written byte has left for the kernel."""
        assert self.transport is not None
        while not self.closing and self.transport.get_write_buffer_size():
            await asyncio.sleep(0.005)

    def send(self, data: bytes, close: bool = False) -> None:
        if self.closing:
            return
        assert self.transport is not None
        self.transport.write(data)
        if close:
            self.close()

    def close(self) -> None:
        """Close after flushing (FIN)."""
        if not self.closing:
            self.closing = True
            assert self.transport is not None
            self.transport.close()

    def reset(self) -> None:
        """Close now with an RST (SO_LINGER 0), dropping unsent data."""
        if self.transport is None or self.transport.is_closing():
            return
        self.closing = True
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                _LINGER_RST)
            except OSError:
                pass
        self.transport.abort()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    # ---- request handling ----

    def run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run an answer that waits; later requests queue behind it."""
        self.busy = True
        self.task = self.engine.loop.create_task(coro)
        self.task.add_done_callback(self._task_done)

    def send_later(self, delay: float, data: bytes, close: bool) -> None:
        """Write ``data`` after ``delay`` s; later requests queue behind it.

        A timer, not a task: the common delayed answer stays cheap.
        """
        self.busy = True
        self.timer = self.engine.loop.call_later(delay, self._timer_done,
                                                 data, close)

    def _timer_done(self, data: bytes, close: bool) -> None:
        self.timer = None
        self.busy = False
        self.send(data, close)
        self._resume()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.task = None
        self.busy = False
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, ConnectionError):
                _log.error("sandbox answer failed", exc_info=exc)
                self.abort()
        self._resume()

    def _resume(self) -> None:
        """Go on with queued requests once an answer has been written."""
        if self.closing:
            return
        if self.reading_paused:
            self.reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        if self.buf:
            self.process()
        if self.eof and not self.busy and not self.closing:
            self.close()

    def process(self) -> None:
        """Parse and answer every complete request in the buffer."""
        while not self.busy and not self.closing:
            try:
                request = self._parse_one()
            except _BadRequest as exc:
                self.engine.on_bad_request(self, str(exc))
                return
            if request is None:
                return
            if self.doomed:
                # keepalive_race: the server "had closed" this connection.
                self.engine.on_discard()
                self.close()
                return
            self.engine.dispatch(self, request)

    def _parse_one(self) -> _Request | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise _BadRequest("request head too large")
            # Tolerate stray CRLFs between requests (RFC 9112 §2.2).
            while buf[:2] == b"\r\n":
                del buf[:2]
            return None
        start = 0
        while buf[start:start + 2] == b"\r\n":
            start += 2
        if end > MAX_HEAD:
            raise _BadRequest("request head too large")
        lines = bytes(buf[start:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest("bad request line")
        method, target, version = parts
        headers: list[tuple[str, str]] = []
        lookup: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest("bad header line")
            value = value.strip(" \t")
            headers.append((name, value))
            key = name.lower()
            if key == "content-length" and key in lookup \
                    and lookup[key] != value:
                raise _BadRequest("conflicting Content-Length")
            lookup[key] = value
        body_start = end + 4
        if "chunked" in lookup.get("transfer-encoding", "").lower():
            decoded = _decode_chunked(buf, body_start)
            if decoded is None:
                self._maybe_continue(lookup)
                return None
            body, total = decoded
        else:
            text = lookup.get("content-length", "0")
            if not text.isdigit():
                raise _BadRequest("bad Content-Length")
            length = int(text)
            if length > MAX_BODY:
                raise _BadRequest("body too large")
            total = body_start + length
            if len(buf) < total:
                self._maybe_continue(lookup)
                return None
            body = bytes(buf[body_start:total])
        del buf[:total]
        self.continue_sent = False
        tokens = {t.strip().lower()
                  for t in lookup.get("connection", "").split(",")}
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in tokens
        else:
            keep_alive = "close" not in tokens
        return _Request(method, target, version, tuple(headers), lookup,
                        body, keep_alive)

    def _maybe_continue(self, lookup: dict[str, str]) -> None:
        if not self.continue_sent and \
                lookup.get("expect", "").lower() == "100-continue":
            self.continue_sent = True
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")


# --------------------------------------------------------------------------
# The engine: decides and writes answers (runs in the loop thread).


class _Context(NamedTuple):
    conn: _Connection
    request: _Request
    mobile: str
    seq: int
    request_id: str


class _Engine:
    """State shared by all connections of one sandbox (loop thread only)."""

    def __init__(self, appcode: str, settings: _Settings) -> None:
        self.appcode = appcode
        self.auth_value = "APPCODE " + appcode
        self.settings = settings
        self.stats = _Stats()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.conns: set[_Connection] = set()
        self.base_url = ""
        self.other_url = ""
        self._seq = 0
        self._conn_seq = 0
        self._rid_prefix = "%08X-%04X-4%03X-%04X-" % (
            secrets.randbits(32), secrets.randbits(16), secrets.randbits(12),
            0x8000 | secrets.randbits(14))
        self._date_at = 0
        self._date = ""
        self._behaviours = self._behaviour_table()

    # ---- connection events ----

    def on_connect(self, conn: _Connection) -> None:
        stats = self.stats
        if conn.role != "main":
            with stats.lock:
                stats.other_connections += 1
            return
        self._conn_seq += 1
        settings = self.settings
        fault = None
        if settings.connection_faults:
            fault = _pick(settings.connection_faults,
                          _uniform(settings.seed, "\x00conn", self._conn_seq))
        with stats.lock:
            stats.connections += 1
            stats.peer_ports.append(conn.peer_port)
            if fault is not None:
                stats.per_scenario[fault] += 1
        if fault == "refused":
            conn.reset()
        elif fault == "tarpit":
            conn.silent = True

    def on_discard(self) -> None:
        with self.stats.lock:
            self.stats.discarded += 1

    def on_bad_request(self, conn: _Connection, reason: str) -> None:
        seq = self._next_seq()
        with self.stats.lock:
            self.stats.total += 1
        name = "body_too_large" if "too large" in reason else "bad_request"
        conn.buf.clear()
        conn.send(self._gateway(name, self._rid(seq), "", close=True,
                                detail=reason), close=True)

    # ---- helpers ----

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _rid(self, seq: int) -> str:
        return f"{self._rid_prefix}{seq:012X}"

    def _date_header(self) -> str:
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = formatdate(now, usegmt=True)
        return self._date

    def response(self, status: int, body: bytes, *, ctx: _Context | None,
                 content_type: str = _JSON, close: bool = False,
                 extra: tuple[tuple[str, str], ...] = (),
                 request_id: str | None = None, mobile: str = "",
                 content_length: int | None = None,
                 chunked: bool = False) -> bytes:
        """Bytes of a response head (and body, unless chunked)."""
        if ctx is not None:
            request_id = ctx.request_id
            mobile = ctx.mobile
            close = close or not ctx.request.keep_alive
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Date: {self._date_header()}",
            f"Content-Type: {content_type}",
        ]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            length = len(body) if content_length is None else content_length
            lines.append(f"Content-Length: {length}")
        lines.append("Connection: close" if close else "Connection: keep-alive")
        lines.append(f"X-Ca-Request-Id: {request_id}")
        if mobile:
            lines.append(f"X-Sandbox-Mobile: {_header_safe(mobile)}")
        for name, value in extra:
            lines.append(f"{name}: {_header_safe(value)}")
        lines.append("Server: mobilestatus-sandbox")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if chunked:
            return head
        return head + body

    def _gateway(self, name: str, request_id: str, mobile: str, *,
                 close: bool = False, detail: str = "",
                 ctx: _Context | None = None) -> bytes:
        err = sc.GATEWAY_ERRORS[name]
        extra = [("X-Ca-Error-Message", err.message)]
        if err.code is not None:
            extra.append(("X-Ca-Error-Code", err.code))
        if err.retry_after is not None:
            extra.append(("Retry-After", err.retry_after))
        if detail:
            extra.append(("X-Sandbox-Detail", detail))
        return self.response(err.status, b"", ctx=ctx, content_type=_TEXT,
                             close=close, extra=tuple(extra),
                             request_id=request_id, mobile=mobile)

    # ---- dispatch ----

    def dispatch(self, conn: _Connection, request: _Request) -> None:
        """Decide the answer to one request and write it (or start it)."""
        settings = self.settings
        seq = self._next_seq()
        rid = self._rid(seq)
        path, _, query = request.target.partition("?")
        mobile = ""
        ctype = request.lookup.get("content-type", "").lower()
        if request.body and ctype.startswith(
                "application/x-www-form-urlencoded"):
            mobile = _form_value(request.body, "mobile")
        if not mobile and query:
            mobile = _form_value(query.encode("latin-1"), "mobile")
        if len(mobile) > 32:
            mobile = mobile[:32]
        auth = request.lookup.get("authorization")
        auth_ok = auth == self.auth_value
        stats = self.stats
        raw = (request.method, request.target, request.version,
               request.headers, request.body, conn.peer_port)

        if conn.role != "main":
            leaked = self.appcode in request.target or any(
                self.appcode in value for _, value in request.headers
            ) or self.appcode.encode() in request.body
            with stats.lock:
                stats.other_requests += 1
                if leaked:
                    stats.appcode_leaks += 1
            valid = sc.NUMBER_RE.fullmatch(mobile) is not None
            ctx = _Context(conn, request, mobile, seq, rid)
            body = self._success_body(ctx, "1", "正常") if valid else \
                self._business_body("手机号格式错误")
            conn.send(self.response(200, body, ctx=ctx),
                      close=not request.keep_alive)
            return

        with stats.lock:
            stats.total += 1
            stats.per_number[mobile] += 1
            stats.arrivals.append(time.monotonic())
            stats.last_raw = raw
            if not auth_ok:
                stats.auth_failures += 1

        rest, route = _parse_route(path)
        ctx = _Context(conn, request, mobile, seq, rid)
        delay = settings.latency if route.latency is None else route.latency

        # 1. the gateway: API lookup, then the AppCode.
        if route.error is not None or rest != sc.API_PATH \
                or request.method != "POST":
            self._answer(ctx, self._gateway("invalid_url", rid, mobile,
                                            ctx=ctx,
                                            detail=route.error or ""), delay)
            return
        if not auth_ok:
            self._answer(ctx, self._gateway("invalid_appcode", rid, mobile,
                                            ctx=ctx), delay)
            return

        # 2. the number.
        decision = sc.classify(mobile)
        if decision.error is not None:
            self._answer(ctx, self.response(
                200, self._business_body(decision.error), ctx=ctx), delay)
            return

        # 3. the behaviour: route > percentage > scenario number > status.
        name = route.fault
        if name is None and settings.request_faults:
            with stats.lock:
                stats.draws[mobile] += 1
                k = stats.draws[mobile]
            name = _pick(settings.request_faults,
                         _uniform(settings.seed, mobile, k))
        if name is None:
            name = decision.scenario
            delay += decision.delay
        elif name == "slow":
            delay += sc.SLOW_DEFAULT
        if name is None:
            name = sc.ordinary_name(mobile)
        with stats.lock:
            stats.per_scenario[name] += 1
        self._behaviours[name](ctx, delay)

    def _answer(self, ctx: _Context, data: bytes, delay: float,
                close: bool = False) -> None:
        close = close or not ctx.request.keep_alive
        if delay <= 0.0:
            ctx.conn.send(data, close)
        else:
            ctx.conn.send_later(delay, data, close)

    # ---- bodies ----

    def _success_body(self, ctx: _Context, result: str, message: str,
                      *, raw_result: str | None = None,
                      extra: str = "") -> bytes:
        number = ctx.mobile
        province, city = sc.region(number)
        channel = sc.CARRIER_BY_PREFIX.get(number[:3], "移动")
        value = raw_result if raw_result is not None else f'"{result}"'
        return (
            '{"msg":"成功","success":true,"code":200,"data":{"orderNo":"'
            f'{ctx.seq % 10**10:010d}{number}","result":{value},'
            f'"province":"{province}","city":"{city}","channel":"{channel}",'
            f'"resultMsg":"{message}"{extra}}}}}'
        ).encode()

    @staticmethod
    def _business_body(message: str, code: int = 400) -> bytes:
        return (f'{{"msg":"{message}","success":false,"code":{code},'
                '"data":{}}').encode()

    # ---- behaviours ----

    def _behaviour_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {}
        for name, (result, message) in zip(sc.ORDINARY_NAMES,
                                           sc.STATUS_BY_LAST_DIGIT):
            table.setdefault(name, self._status(result, message))
        for name in sc.GATEWAY_ERRORS:
            table[name] = self._gateway_behaviour(name)
        table.update({
            "slow": self._status_of_number,
            "not_this_network": self._status("999", "非本网手机号码"),
            "unknown_code": self._status("7", "未知状态"),
            "numeric_result": self._numeric_result,
            "business_error": self._business_error,
            "data_null": self._data_null,
            "extra_fields": self._extra_fields,
            "malformed_json": self._malformed_json,
            "oversized": self._oversized,
            "bad_gateway_html": self._bad_gateway_html,
            "too_many_requests": self._too_many_requests,
            "redirect_same": self._redirect_same,
            "redirect_other": self._redirect_other,
            "redirect_scheme": self._redirect_scheme,
            "refused": self._refused,
            "tarpit": self._no_response,
            "no_response": self._no_response,
            "stall_body": self._stall_body,
            "short_body": self._short_body,
            "reset_body": self._reset_body,
            "chunked_eof": self._chunked_eof,
            "bad_chunk": self._bad_chunk,
            "empty_reply": self._empty_reply,
            "garbage_status": self._garbage_status,
            "bad_header": self._bad_header,
            "huge_headers": self._huge_headers,
            "endless_body": self._endless_body,
            "html_5xx": self._html_5xx,
            "keepalive_close": self._keepalive_close,
            "keepalive_race": self._keepalive_race,
        })
        missing = sc.FAULTS - table.keys()
        assert not missing, missing
        return table

    def _status(self, result: str, message: str) -> Any:
        def behaviour(ctx: _Context, delay: float) -> None:
            body = self._success_body(ctx, result, message)
            self._answer(ctx, self.response(200, body, ctx=ctx), delay)
        return behaviour

    def _status_of_number(self, ctx: _Context, delay: float) -> None:
        result, message = sc.STATUS_BY_LAST_DIGIT[ord(ctx.mobile[10]) - 48]
        self._status(result, message)(ctx, delay)

    def _gateway_behaviour(self, name: str) -> Any:
        def behaviour(ctx: _Context, delay: float) -> None:
            self._answer(ctx, self._gateway(name, ctx.request_id, ctx.mobile,
                                            ctx=ctx), delay)
        return behaviour

    def _numeric_result(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常", raw_result="1")
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _business_error(self, ctx: _Context, delay: float) -> None:
        body = self._business_body("不支持的号段")
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _data_null(self, ctx: _Context, delay: float) -> None:
        body = b'{"msg":"\xe6\x88\x90\xe5\x8a\x9f","success":true,"code":200,' \
            b'"data":null}'
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _extra_fields(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(
            ctx, "1", "正常",
            extra=',"transferStatus":0,"tags":["sandbox"],'
                  '"extra":{"nested":{"deep":[1,2.5,null,true]}}')
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _malformed_json(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常")
        body = body[: body.index(b'"province"')] + b'"province":'
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _oversized(self, ctx: _Context, delay: float) -> None:
        base = self._success_body(ctx, "1", "正常")
        pad = OVERSIZED_BYTES - len(base) - len(',"padding":""')
        body = base[:-2] + b',"padding":"' + b"x" * pad + b'"}}'
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _bad_gateway_html(self, ctx: _Context, delay: float) -> None:
        self._answer(ctx, self.response(502, _HTML_502, ctx=ctx,
                                        content_type=_HTML), delay)

    def _html_5xx(self, ctx: _Context, delay: float) -> None:
        self._answer(ctx, self.response(503, _HTML_503, ctx=ctx,
                                        content_type=_HTML,
                                        extra=(("Retry-After", "1"),)), delay)

    def _too_many_requests(self, ctx: _Context, delay: float) -> None:
        self._answer(ctx, self.response(429, b"", ctx=ctx, content_type=_TEXT,
                                        extra=(("Retry-After", "1"),)), delay)

    def _redirect(self, ctx: _Context, delay: float, location: str) -> None:
        self._answer(ctx, self.response(302, b"", ctx=ctx, content_type=_TEXT,
                                        extra=(("Location", location),)),
                     delay)

    def _redirect_same(self, ctx: _Context, delay: float) -> None:
        self._redirect(ctx, delay, self.base_url + sc.API_PATH)

    def _redirect_other(self, ctx: _Context, delay: float) -> None:
        self._redirect(ctx, delay, self.other_url + sc.API_PATH)

    def _redirect_scheme(self, ctx: _Context, delay: float) -> None:
        self._redirect(ctx, delay, "file:///etc/passwd")

    def _keepalive_close(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常")
        # The head says keep-alive; the connection closes right after.
        data = self.response(200, body, ctx=ctx)
        self._answer(ctx, data, delay, close=True)

    def _keepalive_race(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常")
        ctx.conn.doomed = True
        self._answer(ctx, self.response(200, body, ctx=ctx), delay)

    def _garbage_status(self, ctx: _Context, delay: float) -> None:
        self._answer(ctx, _GARBAGE_STATUS, delay, close=True)

    def _bad_header(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常")
        data = self.response(200, body, ctx=ctx)
        cut = data.index(b"\r\n") + 2
        self._answer(ctx, data[:cut] + _BAD_HEADER + b"\r\n" + data[cut:],
                     delay, close=True)

    def _huge_headers(self, ctx: _Context, delay: float) -> None:
        filler = "f" * 1000
        extra = tuple((f"X-Sandbox-Filler-{i:03d}", filler)
                      for i in range(HUGE_HEADER_LINES))
        body = self._success_body(ctx, "1", "正常")
        self._answer(ctx, self.response(200, body, ctx=ctx, extra=extra),
                     delay)

    # Raw faults: always a task of the connection.

    def _refused(self, ctx: _Context, delay: float) -> None:
        ctx.conn.run(_raw_refused(ctx.conn, delay))

    def _empty_reply(self, ctx: _Context, delay: float) -> None:
        ctx.conn.run(_raw_close(ctx.conn, delay))

    def _no_response(self, ctx: _Context, delay: float) -> None:
        ctx.conn.silent = True
        ctx.conn.buf.clear()
        ctx.conn.run(_forever())

    def _partial(self, ctx: _Context) -> tuple[bytes, bytes]:
        """(head declaring the full length, the full body)."""
        body = self._success_body(ctx, "1", "正常")
        return self.response(200, b"", ctx=ctx,
                             content_length=len(body)), body

    def _stall_body(self, ctx: _Context, delay: float) -> None:
        head, body = self._partial(ctx)
        ctx.conn.silent = True
        ctx.conn.run(_raw_stall(ctx.conn, delay, head + body[:10]))

    def _short_body(self, ctx: _Context, delay: float) -> None:
        head, body = self._partial(ctx)
        ctx.conn.run(_delayed_send(ctx.conn, head + body[: len(body) // 2],
                                   delay, True))

    def _reset_body(self, ctx: _Context, delay: float) -> None:
        head, body = self._partial(ctx)
        ctx.conn.run(_raw_reset(ctx.conn, delay, head + body[: len(body) // 2]))

    def _chunked_eof(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常")
        head = self.response(200, b"", ctx=ctx, chunked=True)
        half = body[: len(body) // 2]
        data = head + b"%x\r\n" % len(half) + half + b"\r\n"
        ctx.conn.run(_delayed_send(ctx.conn, data, delay, True))

    def _bad_chunk(self, ctx: _Context, delay: float) -> None:
        body = self._success_body(ctx, "1", "正常")
        head = self.response(200, b"", ctx=ctx, chunked=True)
        half = body[: len(body) // 2]
        data = (head + b"%x\r\n" % len(half) + half + b"\r\n"
                + b"zz\r\n" + body[len(body) // 2:] + b"\r\n")
        ctx.conn.silent = True
        ctx.conn.run(_raw_then_close(ctx.conn, delay, data, linger=10.0))

    def _endless_body(self, ctx: _Context, delay: float) -> None:
        head = self.response(200, b"", ctx=ctx, chunked=True)
        start = self._success_body(ctx, "1", "正常")[:-2] + b',"padding":"'
        ctx.conn.silent = True
        ctx.conn.run(_raw_endless(ctx.conn, delay, head, start))


def _header_safe(value: str) -> str:
    """``value`` as a header value: client-supplied text is percent-encoded
    unless it is printable ASCII, so it can never split the head."""
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe=" !\"#$&'()*+,/:;<=>?@[\\]^`{|}~")


def _form_value(data: bytes, key: str) -> str:
    """The first ``key`` of a urlencoded string ('' when absent)."""
    if data.startswith(key.encode() + b"=") and data.isascii() \
            and b"&" not in data and b"%" not in data and b"+" not in data:
        return data[len(key) + 1:].decode("ascii")  # fast path
    for name, value in parse_qsl(data.decode("utf-8", "replace"),
                                 keep_blank_values=True):
        if name == key:
            return value
    return ""


# --------------------------------------------------------------------------
# Coroutines of the waiting answers.  Each ends when the connection is lost
# (connection_lost cancels the task) or when the sandbox stops.


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


def _is_accept_task(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is asyncio's own set-up of an accepted socket."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_name == "_accept_connection2"


async def _delayed_send(conn: _Connection, data: bytes, delay: float,
                        close: bool) -> None:
    if delay > 0.0:
        await asyncio.sleep(delay)
    conn.send(data, close)


async def _raw_refused(conn: _Connection, delay: float) -> None:
    if delay > 0.0:
        await asyncio.sleep(delay)
    conn.reset()


async def _raw_close(conn: _Connection, delay: float) -> None:
    if delay > 0.0:
        await asyncio.sleep(delay)
    conn.close()


async def _raw_stall(conn: _Connection, delay: float, data: bytes) -> None:
    await _delayed_send(conn, data, delay, False)
    await _forever()


async def _raw_reset(conn: _Connection, delay: float, data: bytes) -> None:
    await _delayed_send(conn, data, delay, False)
    await conn.flushed()
    # Give the peer a moment to read what was sent before the RST.
    await asyncio.sleep(0.05)
    conn.reset()


async def _raw_then_close(conn: _Connection, delay: float, data: bytes,
                          linger: float) -> None:
    await _delayed_send(conn, data, delay, False)
    # A client that notices the damage closes first; close after linger.
    await asyncio.sleep(linger)
    conn.close()


async def _raw_endless(conn: _Connection, delay: float, head: bytes,
                       start: bytes) -> None:
    await _delayed_send(conn, head, delay, False)
    chunk = b"x" * ENDLESS_CHUNK
    frame = b"%x\r\n" % ENDLESS_CHUNK + chunk + b"\r\n"
    conn.send(b"%x\r\n" % len(start) + start + b"\r\n")
    while not conn.closing:
        conn.send(frame)
        await conn.drain()
        await asyncio.sleep(0)  # let the other connections run


# --------------------------------------------------------------------------
# Listening sockets that are not HTTP servers.


def _listen_socket(host: str, port: int, reuse: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _make_tarpit(host: str) -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full, so SYNs go unanswered.

    ``listen(0)`` plus connections that are never accepted: once the queue
    is full, Linux drops further SYNs and the client's connect times out.
    Fillers are added until one of them cannot connect.
    """
    listener = _listen_socket(host, 0, reuse=False)
    listener.listen(0)
    addr = listener.getsockname()
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket(listener.family, socket.SOCK_STREAM)
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(addr)
            # On loopback a handshake that is not dropped completes at once.
            _, writable, _ = select.select([], [filler], [], 0.05)
            if not writable:
                break  # this SYN was dropped: the queue is full
    except BaseException:
        for filler in fillers:
            filler.close()
        listener.close()
        raise
    return listener, fillers


# --------------------------------------------------------------------------
# The public object.


class Sandbox:
    """A local emulator of the mobile status API, on 127.0.0.1.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with Sandbox() as sb:
            client = Client(appcode=sb.appcode, base_url=sb.base_url)

    Args:
        appcode: the AppCode clients must send (``Authorization: APPCODE
            <appcode>``); random (32 hex digits) when None.
        port: TCP port of the API; 0 picks a free one.
        latency: seconds added before every answer.
        faults: fault name → share of requests (0..1), e.g.
            ``{"empty_reply": 0.05}``; any name of :data:`SCENARIOS`
            except ``unsupported_prefix``.  ``refused`` and ``tarpit`` are
            drawn per accepted connection, every other name per request.
        seed: makes the fault draws reproducible.  The n-th request for a
            given number gets the same draw for the same seed, whatever the
            order in which numbers arrive.
        host: address to bind; keep the default loopback address.
    """

    def __init__(self, appcode: str | None = None, port: int = 0,
                 latency: float = 0.0,
                 faults: Mapping[str, float] | None = None, seed: int = 0,
                 *, host: str = "127.0.0.1") -> None:
        self._appcode = _check_appcode(
            secrets.token_hex(16) if appcode is None else appcode)
        self._host = host
        self._port = port
        self._engine = _Engine(self._appcode,
                               self._make_settings(latency, faults, seed))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._sockets: list[socket.socket] = []
        self._refused_sock: socket.socket | None = None
        self._tarpit: tuple[socket.socket, list[socket.socket]] | None = None
        self._tarpit_lock = threading.Lock()
        self.base_url = ""
        """The API's base URL, ``http://127.0.0.1:PORT`` (set by start())."""
        self.refused_url = ""
        """A URL where every connect is refused (nothing listens)."""
        self.other_url = ""
        """The redirect target of ``redirect_other`` (another port)."""

    @staticmethod
    def _make_settings(latency: float, faults: Mapping[str, float] | None,
                       seed: int) -> _Settings:
        if not 0.0 <= latency <= 3600.0:
            raise ValueError("latency must be between 0 and 3600 seconds")
        request, connection = _parse_faults(faults)
        return _Settings(float(latency), request, connection, int(seed))

    # ---- lifecycle ----

    def start(self) -> Sandbox:
        """Bind the listeners and start serving; returns self.

        A stopped sandbox can be started again: it comes back on the same
        API port (a way to emulate an upstream restart), with its counters
        kept.
        """
        if self._thread is not None:
            raise RuntimeError("this Sandbox is already running")
        main = other = refused = None
        try:
            main = _listen_socket(self._host, self._port)
            other = _listen_socket(self._host, 0)
            refused = _listen_socket(self._host, 0, reuse=False)
        except BaseException:
            for sock in (main, other, refused):
                if sock is not None:
                    sock.close()
            raise
        self._port = main.getsockname()[1]
        self._sockets = [main, other]
        self._refused_sock = refused
        self.base_url = self._engine.base_url = _url(main)
        self.other_url = self._engine.other_url = _url(other)
        self.refused_url = _url(refused)
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(
            target=self._thread_main, daemon=True,
            name=f"mobilestatus-sandbox:{self._port}")
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            error = self._start_error
            self.stop()
            raise error
        return self

    def _thread_main(self) -> None:
        try:
            loop = asyncio.new_event_loop()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            raise
        self._loop = self._engine.loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._ready.set()  # never leave start() waiting

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        engine = self._engine
        servers: list[asyncio.Server] = []
        try:
            self._stopping = asyncio.Event()
            for sock, role in zip(self._sockets, ("main", "other")):
                factory = functools.partial(_Connection, engine, role)
                servers.append(await loop.create_server(
                    factory, sock=sock, backlog=1024))
        except BaseException as exc:  # reported to start()
            self._start_error = exc
            for server in servers:
                server.close()
            self._ready.set()
            return
        self._ready.set()
        await self._stopping.wait()
        # A connection accepted just before is an asyncio task that has yet
        # to wrap its socket in a transport.  Cancelled, or run after
        # server.close() (asyncio 3.11's Server._attach asserts it is still
        # serving), it never closes that socket: a ResourceWarning wherever
        # the garbage collector then runs.  So: stop accepting, let those
        # tasks finish, and only then close the servers.
        for server in servers:
            for listener in server.sockets:
                loop.remove_reader(listener.fileno())
        accepting = [t for t in asyncio.all_tasks() if _is_accept_task(t)]
        if accepting:
            await asyncio.wait(accepting, timeout=STOP_GRACE)
        for server in servers:
            server.close()
        for conn in list(engine.conns):
            conn.abort()
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE)
        for server in servers:
            try:
                await asyncio.wait_for(server.wait_closed(), STOP_GRACE / 4)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        """Close every connection and listener; returns within ~1 s.

        Stalled, hung and endless-body connections are aborted.  Calling
        stop() twice is harmless.
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            loop, stopping = self._loop, self._stopping
            if loop is not None and stopping is not None:
                try:
                    loop.call_soon_threadsafe(stopping.set)
                except RuntimeError:  # the loop is already closed
                    pass
            thread.join(timeout=STOP_GRACE + 1.0)
        self._loop = self._stopping = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        if self._refused_sock is not None:
            self._refused_sock.close()
            self._refused_sock = None
        with self._tarpit_lock:
            if self._tarpit is not None:
                listener, fillers = self._tarpit
                for filler in fillers:
                    filler.close()
                listener.close()
                self._tarpit = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self.base_url or f"{self._host}:{self._port}"
        return f"<Sandbox {where} {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("a Sandbox cannot be pickled")

    @property
    def tarpit_url(self) -> str:
        """A URL where a TCP connect never completes (made on first use)."""
        self._require_started()
        with self._tarpit_lock:
            if self._tarpit is None:
                self._tarpit = _make_tarpit(self._host)
            return _url(self._tarpit[0])

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        thread, stopping = self._thread, self._stopping
        return thread is not None and thread.is_alive() and \
            stopping is not None and not stopping.is_set()

    # ---- configuration ----

    @property
    def appcode(self) -> str:
        """The AppCode this sandbox accepts."""
        return self._appcode

    def configure(self, *, latency: float | None = None,
                  faults: Mapping[str, float] | None = None,
                  seed: int | None = None) -> None:
        """Change latency, faults or seed while running (None = keep).

        Pass ``faults={}`` to turn percentage faults off.
        """
        old = self._engine.settings
        new = self._make_settings(
            old.latency if latency is None else latency,
            faults, old.seed if seed is None else seed)
        if faults is None:
            new = new._replace(request_faults=old.request_faults,
                               connection_faults=old.connection_faults)
        self._engine.settings = new

    def url(self, latency: float | None = None,
            fault: str | None = None) -> str:
        """A base_url whose requests all wait ``latency`` s and/or get ``fault``.

        The path prefix is ``/_sandbox/latency=<ms>ms/fault=<name>``; the
        client appends the API path to it as to any base_url.  For
        ``fault="refused"`` and ``fault="tarpit"`` it returns
        :attr:`refused_url` / :attr:`tarpit_url`, where the fault happens
        at TCP connect time.
        """
        self._require_started()
        if fault is not None and fault not in sc.FAULTS:
            raise ValueError(f"unknown fault {fault!r}; see SCENARIOS")
        if fault == "refused":
            return self.refused_url
        if fault == "tarpit":
            return self.tarpit_url
        options = []
        if latency is not None:
            if not 0.0 <= latency <= 3600.0:
                raise ValueError("latency must be between 0 and 3600 seconds")
            options.append(f"latency={latency * 1000.0:g}ms")
        if fault is not None:
            options.append(f"fault={fault}")
        if not options:
            return self.base_url
        return self.base_url + ROUTE_PREFIX + "/".join(options)

    def _require_started(self) -> None:
        if self._thread is None:
            raise RuntimeError("the Sandbox is not running")

    # ---- counters ----

    def reset(self) -> None:
        """Zero every counter and forget recorded requests."""
        with self._engine.stats.lock:
            self._engine.stats.clear()

    @property
    def total(self) -> int:
        """Requests that reached the API handler (errors and faults too)."""
        return self._engine.stats.total

    def count(self, number: str) -> int:
        """Requests whose ``mobile`` field was exactly ``number``."""
        with self._engine.stats.lock:
            return self._engine.stats.per_number[number]

    def count_scenario(self, name: str) -> int:
        """How many times the behaviour ``name`` was served."""
        with self._engine.stats.lock:
            return self._engine.stats.per_scenario[name]

    @property
    def scenario_counts(self) -> dict[str, int]:
        """Behaviour name → times served (a snapshot)."""
        with self._engine.stats.lock:
            return dict(self._engine.stats.per_scenario)

    def arrivals(self) -> list[float]:
        """``time.monotonic()`` of each request counted in :attr:`total`.

        In arrival order; the last 100,000 since :meth:`reset`.
        """
        with self._engine.stats.lock:
            return list(self._engine.stats.arrivals)

    @property
    def connections(self) -> int:
        """TCP connections accepted on :attr:`base_url`."""
        return self._engine.stats.connections

    @property
    def peer_ports(self) -> list[int]:
        """Client port of each accepted connection, in accept order."""
        with self._engine.stats.lock:
            return list(self._engine.stats.peer_ports)

    @property
    def open_connections(self) -> int:
        """Connections (both listeners) open right now."""
        return len(self._engine.conns)

    @property
    def auth_failures(self) -> int:
        """Requests rejected for a missing or wrong AppCode."""
        return self._engine.stats.auth_failures

    @property
    def discarded(self) -> int:
        """Requests dropped unanswered by ``keepalive_race`` (not in total)."""
        return self._engine.stats.discarded

    @property
    def other_connections(self) -> int:
        """Connections accepted on :attr:`other_url` (redirect target)."""
        return self._engine.stats.other_connections

    @property
    def other_requests(self) -> int:
        """Requests received on :attr:`other_url`."""
        return self._engine.stats.other_requests

    @property
    def appcode_leaks(self) -> int:
        """Requests on :attr:`other_url` that carried this AppCode."""
        return self._engine.stats.appcode_leaks

    @property
    def last_request(self) -> RecordedRequest | None:
        """The last request on :attr:`base_url`, or None."""
        with self._engine.stats.lock:
            raw = self._engine.stats.last_raw
        return None if raw is None else RecordedRequest(*raw)

    @property
    def last_headers(self) -> Mapping[str, str]:
        """Headers of the last request (case-insensitive; empty if none)."""
        last = self.last_request
        return last.headers if last is not None else _Headers(())


def serve(host: str = "127.0.0.1", port: int = 8080, *,
          appcode: str | None = None, latency: float = 0.0,
          faults: Mapping[str, float] | None = None, seed: int = 0) -> None:
    """Run a sandbox in the foreground until Ctrl-C.

    Prints the base_url and the AppCode to use, then blocks.  The arguments
    are those of :class:`Sandbox`; ``port=0`` picks a free port.
    """
    sandbox = Sandbox(appcode=appcode, port=port, latency=latency,
                      faults=faults, seed=seed, host=host)
    sandbox.start()
    try:
        print(f"mobilestatus sandbox: {sandbox.base_url}", flush=True)
        print(f"  AppCode:     {sandbox.appcode}")
        print(f"  refused URL: {sandbox.refused_url}   (connection refused)")
        print(f"  tarpit URL:  {sandbox.tarpit_url}   (connect never completes)")
        print("  numbers: last digit 0-4 正常, 5 停机, 6 销号或未启用, "
              "7 在网但不可用, 8 预销号, 9 关机;")
        print("  scenario numbers 1390000xxxx: see docs/sandbox.md")
        print("Ctrl-C to stop.", flush=True)
        while sandbox.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
