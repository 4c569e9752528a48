"""Tests of the sandbox itself, with stdlib clients only (no mobilestatus.Client).

Every answer is checked on the wire: http.client for well-formed answers,
raw sockets for the transport faults.
"""

from __future__ import annotations

import http.client
import json
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from mobilestatus.sandbox import FAULTS, SCENARIOS, Sandbox

API = "/api-mall/api/mobile_status/check"
FORM = "application/x-www-form-urlencoded; charset=UTF-8"
REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "sandbox.md"


# --------------------------------------------------------------------------
# helpers


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> object:
        return json.loads(self.body.decode("utf-8"))


def split(url: str) -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port, parts.path


def post(
    base_url: str,
    appcode: str | None,
    number: str | None = "13800138000",
    *,
    conn: http.client.HTTPConnection | None = None,
    method: str = "POST",
    path: str = API,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    host, port, prefix = split(base_url)
    own = conn is None
    c = conn or http.client.HTTPConnection(host, port, timeout=5)
    try:
        hdrs = {"Content-Type": FORM}
        if appcode is not None:
            hdrs["Authorization"] = f"APPCODE {appcode}"
        hdrs.update(headers or {})
        if body is None:
            body = b"" if number is None else f"mobile={number}".encode()
        c.request(method, prefix + path, body=body, headers=hdrs)
        r = c.getresponse()
        return Reply(r.status, r.headers, r.read())
    finally:
        if own:
            c.close()


def request_bytes(base_url: str, appcode: str, number: str, *, extra: str = "") -> bytes:
    host, port, prefix = split(base_url)
    body = f"mobile={number}"
    return (
        f"POST {prefix}{API} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: APPCODE {appcode}\r\nContent-Type: {FORM}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n{body}"
    ).encode()


def connect(url: str, timeout: float = 2.0) -> socket.socket:
    host, port, _ = split(url)
    return socket.create_connection((host, port), timeout=timeout)


def read_until_close(sock: socket.socket, limit: int = 1 << 22) -> tuple[bytes, BaseException | None]:
    """Read until EOF, an error, a timeout or ``limit`` bytes."""
    data = bytearray()
    try:
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(data), None
            data += chunk
    except (OSError, socket.timeout) as exc:
        return bytes(data), exc
    return bytes(data), None


def raw_exchange(sb: Sandbox, number: str, timeout: float = 2.0) -> tuple[bytes, BaseException | None]:
    """One request with ``Connection: close``; everything read until the end."""
    with connect(sb.base_url, timeout) as sock:
        sock.sendall(request_bytes(sb.base_url, sb.appcode, number, extra="Connection: close\r\n"))
        return read_until_close(sock)


def head_and_body(data: bytes) -> tuple[list[str], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    return head.decode("latin-1").split("\r\n"), body


def header(lines: list[str], name: str) -> str | None:
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    return None


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.configure(latency=0.0, faults={}, seed=0)
    server.reset()
    return server


# --------------------------------------------------------------------------
# the success answer


def test_success_envelope_is_byte_exact(sb: Sandbox) -> None:
    r = post(sb.base_url, sb.appcode, "13800138000")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert r.headers["Content-Length"] == str(len(r.body))
    assert REQUEST_ID.match(r.headers["X-Ca-Request-Id"])
    assert r.headers["X-Sandbox-Mobile"] == "13800138000"
    assert r.headers.get("X-Ca-Error-Message") is None
    data = r.json()
    assert isinstance(data, dict)
    order_no = data["data"]["orderNo"]
    expected = (
        '{"msg":"成功","success":true,"code":200,"data":{"orderNo":"%s","result":"1",'
        '"province":"北京","city":"北京","channel":"移动","resultMsg":"正常"}}' % order_no
    )
    assert r.body == expected.encode("utf-8")
    assert re.fullmatch(r"\d{10}13800138000", order_no)


def test_order_numbers_and_request_ids_belong_to_their_request(sb: Sandbox) -> None:
    numbers = [f"1380013{i:04d}" for i in range(5)]
    replies = [post(sb.base_url, sb.appcode, n) for n in numbers]
    orders = [r.json()["data"]["orderNo"] for r in replies]  # type: ignore[index]
    assert [o[10:] for o in orders] == numbers
    counters = [int(o[:10]) for o in orders]
    assert counters == sorted(counters) and len(set(counters)) == 5
    ids = {r.headers["X-Ca-Request-Id"] for r in replies}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("last", "result", "message"),
    [
        (0, "1", "正常"), (1, "1", "正常"), (2, "1", "正常"), (3, "1", "正常"),
        (4, "1", "正常"), (5, "2", "停机"), (6, "0", "销号或未启用"),
        (7, "3", "在网但不可用"), (8, "4", "预销号"), (9, "5", "关机"),
    ],
)
def test_status_by_last_digit(sb: Sandbox, last: int, result: str, message: str) -> None:
    data = post(sb.base_url, sb.appcode, f"1860123456{last}").json()
    assert isinstance(data, dict)
    assert data["success"] is True and data["code"] == 200
    assert data["data"]["result"] == result
    assert data["data"]["resultMsg"] == message


def test_named_status_numbers(sb: Sandbox) -> None:
    expected = {
        "normal": "1", "suspended": "2", "cancelled": "0", "unusable": "3",
        "pending_cancellation": "4", "powered_off": "5",
    }
    for name, result in expected.items():
        data = post(sb.base_url, sb.appcode, SCENARIOS[name]).json()
        assert data["data"]["result"] == result, name  # type: ignore[index]


@pytest.mark.parametrize(
    ("number", "channel"),
    [("13800138000", "移动"), ("18600000001", "联通"), ("18912345678", "电信"),
     ("19212345678", "广电"), ("13012345678", "联通"), ("19912345670", "电信")],
)
def test_channel_from_prefix(sb: Sandbox, number: str, channel: str) -> None:
    data = post(sb.base_url, sb.appcode, number).json()
    assert data["data"]["channel"] == channel  # type: ignore[index]


def test_region_is_deterministic_by_digits_4_to_7(sb: Sandbox) -> None:
    a = post(sb.base_url, sb.appcode, "13912340001").json()["data"]  # type: ignore[index]
    b = post(sb.base_url, sb.appcode, "18612349999").json()["data"]  # type: ignore[index]
    assert (a["province"], a["city"]) == (b["province"], b["city"])


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b"", "手机号不能为空"),
        (b"other=1", "手机号不能为空"),
        (b"mobile=12345", "手机号格式错误"),
        (b"mobile=12800138000", "手机号格式错误"),
        (b"mobile=14000138000", "不支持的号段"),
    ],
)
def test_bad_mobile_is_a_business_error(sb: Sandbox, body: bytes, msg: str) -> None:
    r = post(sb.base_url, sb.appcode, None, body=body)
    assert r.status == 200
    assert r.body == ('{"msg":"%s","success":false,"code":400,"data":{}}' % msg).encode()
    assert r.headers["X-Ca-Request-Id"]


def test_hostile_mobile_values_are_not_echoed_raw(sb: Sandbox) -> None:
    r = post(sb.base_url, sb.appcode, None, body=b"mobile=%0D%0AX-Injected:%20yes")
    assert r.status == 200 and r.headers.get("X-Injected") is None
    assert r.headers["X-Sandbox-Mobile"] == "%0D%0AX-Injected: yes"
    r = post(sb.base_url, sb.appcode, None, body="mobile=中文".encode())
    assert r.json() == {"msg": "手机号格式错误", "success": False, "code": 400, "data": {}}
    assert r.headers["X-Sandbox-Mobile"] == "%E4%B8%AD%E6%96%87"


def test_mobile_in_query_string_and_percent_encoding(sb: Sandbox) -> None:
    r = post(sb.base_url, sb.appcode, None, path=API + "?mobile=13800138005", body=b"")
    assert r.json()["data"]["result"] == "2"  # type: ignore[index]
    r = post(sb.base_url, sb.appcode, None, body=b"x=1&mobile=1380013800%36")
    assert r.json()["data"]["result"] == "0"  # type: ignore[index]


# --------------------------------------------------------------------------
# scenario numbers


def test_scenario_table_is_well_formed() -> None:
    numbers = list(SCENARIOS.values())
    assert len(set(numbers)) == len(numbers)
    for name, number in SCENARIOS.items():
        assert re.fullmatch(r"1[3-9]\d{9}", number), name
    assert SCENARIOS["not_this_network"] == "13900000999"
    assert set(FAULTS) <= set(SCENARIOS)


def test_docs_list_every_scenario() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, number in SCENARIOS.items():
        assert f"`{name}`" in text, name
        assert number in text, name


def test_only_prefix_139_makes_scenario_numbers(sb: Sandbox) -> None:
    for number in ("13800000999", "18600001419", "13900010999"):
        r = post(sb.base_url, sb.appcode, number)
        assert r.status == 200 and r.json()["data"]["result"] == "5", number  # type: ignore[index]
    # an unassigned code in the scenario range is an ordinary number too
    assert post(sb.base_url, sb.appcode, "13900009877").json()["data"]["result"] == "3"  # type: ignore[index]
    assert sb.scenario_counts == {"powered_off": 3, "unusable": 1}


def test_data_scenarios(sb: Sandbox) -> None:
    def data(name: str) -> dict[str, object]:
        r = post(sb.base_url, sb.appcode, SCENARIOS[name])
        assert r.status == 200, name
        value = r.json()
        assert isinstance(value, dict)
        return value

    d = data("not_this_network")["data"]
    assert d["result"] == "999" and d["resultMsg"] == "非本网手机号码"  # type: ignore[index]
    assert data("unknown_code")["data"]["result"] == "7"  # type: ignore[index]
    assert data("numeric_result")["data"]["result"] == 1  # type: ignore[index]
    assert data("business_error") == {"msg": "不支持的号段", "success": False, "code": 400, "data": {}}
    assert data("data_null") == {"msg": "成功", "success": True, "code": 200, "data": None}
    extra = data("extra_fields")["data"]
    assert extra["result"] == "1" and "transferStatus" in extra  # type: ignore[operator,index]


def test_malformed_and_oversized_bodies(sb: Sandbox) -> None:
    r = post(sb.base_url, sb.appcode, SCENARIOS["malformed_json"])
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.body)
    r = post(sb.base_url, sb.appcode, SCENARIOS["oversized"])
    assert r.status == 200 and len(r.body) == 2 * 1024 * 1024
    assert r.json()["data"]["result"] == "1"  # type: ignore[index]


GATEWAY = {
    "invalid_appcode": (400, "Invalid AppCode `not exists`", "A400AC", None),
    "unauthorized": (403, "Unauthorized", None, None),
    "quota_exhausted": (403, "Quota Exhausted", None, None),
    "quota_expired": (403, "Quota Expired", None, None),
    "user_arrears": (403, "User Arrears", None, None),
    "authorization_expired": (403, "Expiry of Authorization", None, None),
    "throttled_user": (403, "Throttled by USER Flow Control", None, None),
    "throttled_api": (403, "Throttled by API Flow Control", None, None),
    "throttled": (403, "Throttled by USER Flow Control", "S403FC", None),
    "invalid_url": (400, "Invalid Url", None, None),
    "internal_error": (500, "Internal Error", None, None),
    "backend_failed": (500, "Failed To Invoke Backend Service", None, None),
    "service_unavailable": (503, "Service Unavailable", None, "1"),
    "async_service": (504, "Async Service", None, None),
}


@pytest.mark.parametrize("name", sorted(GATEWAY))
def test_gateway_error_scenarios(sb: Sandbox, name: str) -> None:
    status, message, code, retry_after = GATEWAY[name]
    r = post(sb.base_url, sb.appcode, SCENARIOS[name])
    assert r.status == status
    assert r.headers["X-Ca-Error-Message"] == message
    assert r.headers.get("X-Ca-Error-Code") == code
    assert r.headers.get("Retry-After") == retry_after
    assert REQUEST_ID.match(r.headers["X-Ca-Request-Id"])
    assert r.body == b""
    assert sb.count_scenario(name) == 1


def test_html_and_backend_errors(sb: Sandbox) -> None:
    r = post(sb.base_url, sb.appcode, SCENARIOS["bad_gateway_html"])
    assert r.status == 502 and r.headers["Content-Type"] == "text/html"
    assert b"<html>" in r.body and r.headers.get("X-Ca-Error-Code") is None
    r = post(sb.base_url, sb.appcode, SCENARIOS["html_5xx"])
    assert r.status == 503 and r.headers["Retry-After"] == "1" and b"<html>" in r.body
    assert r.headers.get("X-Ca-Error-Message") is None
    r = post(sb.base_url, sb.appcode, SCENARIOS["too_many_requests"])
    assert r.status == 429 and r.headers["Retry-After"] == "1"
    assert r.headers["X-Ca-Request-Id"]


def test_redirects_and_the_other_listener(sb: Sandbox) -> None:
    r = post(sb.base_url, sb.appcode, SCENARIOS["redirect_same"])
    assert r.status == 302 and r.headers["Location"] == sb.base_url + API
    r = post(sb.base_url, sb.appcode, SCENARIOS["redirect_other"])
    assert r.status == 302 and r.headers["Location"] == sb.other_url + API
    assert split(sb.other_url)[1] != split(sb.base_url)[1]
    r = post(sb.base_url, sb.appcode, SCENARIOS["redirect_scheme"])
    assert r.status == 302 and r.headers["Location"].startswith("file://")
    assert (sb.other_connections, sb.other_requests, sb.appcode_leaks) == (0, 0, 0)
    # A client that follows the redirect with its credentials is caught.
    r = post(sb.other_url, sb.appcode, "13800138000")
    assert r.status == 200
    r = post(sb.other_url, None, "13800138000")
    assert (sb.other_connections, sb.other_requests, sb.appcode_leaks) == (2, 2, 1)
    assert sb.total == 3  # the other listener's requests are not counted here


# --------------------------------------------------------------------------
# the gateway's checks


@pytest.mark.parametrize(
    "authorization",
    [None, "APPCODE wrong", "APPCODE  {appcode}", "appcode {appcode}", "APPCODE:{appcode}", "{appcode}"],
)
def test_bad_authorization(sb: Sandbox, authorization: str | None) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(appcode=sb.appcode)
    r = post(sb.base_url, None, "13800138000", headers=headers)
    assert r.status == 400
    assert r.headers["X-Ca-Error-Message"] == "Invalid AppCode `not exists`"
    assert r.headers["X-Ca-Error-Code"] == "A400AC"
    assert r.headers["X-Ca-Request-Id"]
    assert sb.auth_failures == 1 and sb.total == 1
    assert sb.appcode not in str(r.headers) and sb.appcode.encode() not in r.body


def test_authorization_is_recorded_exactly(sb: Sandbox) -> None:
    post(sb.base_url, sb.appcode, "13800138000")
    assert sb.last_headers["authorization"] == "APPCODE " + sb.appcode
    assert sb.last_headers["Content-Type"] == FORM
    last = sb.last_request
    assert last is not None and last.method == "POST" and last.target == API
    assert last.form == {"mobile": "13800138000"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", API), ("PUT", API), ("POST", "/api-mall/api/mobile_status/query"), ("POST", "/"),
     ("POST", "/_sandbox/nosuch=1" + API), ("POST", "/_sandbox/fault=nosuch" + API),
     ("POST", "/_sandbox/latency=abc" + API)],
)
def test_invalid_url(sb: Sandbox, method: str, path: str) -> None:
    r = post(sb.base_url, sb.appcode, "13800138000", method=method, path=path)
    assert r.status == 400
    assert r.headers["X-Ca-Error-Message"] == "Invalid Url"
    assert r.headers["X-Ca-Request-Id"]


def test_bad_request_line_and_oversized_request(sb: Sandbox) -> None:
    with connect(sb.base_url) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data, _ = read_until_close(sock)
    lines, _ = head_and_body(data)
    assert lines[0].startswith("HTTP/1.1 400") and header(lines, "X-Ca-Request-Id")
    with connect(sb.base_url) as sock:
        sock.sendall(f"POST {API} HTTP/1.1\r\nContent-Length: 999999\r\n\r\n".encode())
        data, _ = read_until_close(sock)
    lines, _ = head_and_body(data)
    assert lines[0].startswith("HTTP/1.1 413") and header(lines, "X-Ca-Error-Code") == "I413RL"


# --------------------------------------------------------------------------
# HTTP/1.1 mechanics


def test_keep_alive_reuses_one_connection(sb: Sandbox) -> None:
    host, port, _ = split(sb.base_url)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        for i in range(5):
            r = post(sb.base_url, sb.appcode, f"1380013800{i}", conn=conn)
            assert r.status == 200 and r.headers["Connection"] == "keep-alive"
    finally:
        conn.close()
    assert sb.connections == 1 and sb.total == 5
    assert len(sb.peer_ports) == 1 and sb.peer_ports[0] == sb.last_request.peer_port  # type: ignore[union-attr]


def test_http10_and_connection_close(sb: Sandbox) -> None:
    for version, extra in (("HTTP/1.0", ""), ("HTTP/1.1", "Connection: close\r\n")):
        req = request_bytes(sb.base_url, sb.appcode, "13800138000", extra=extra)
        req = req.replace(b"HTTP/1.1", version.encode(), 1)
        with connect(sb.base_url) as sock:
            sock.sendall(req)
            data, exc = read_until_close(sock)
        assert exc is None  # the server closed after the answer
        lines, body = head_and_body(data)
        assert lines[0] == "HTTP/1.1 200 OK" and header(lines, "Connection") == "close"
        assert json.loads(body)["data"]["result"] == "1"
    with connect(sb.base_url) as sock:  # HTTP/1.0 keep-alive stays open
        req = request_bytes(sb.base_url, sb.appcode, "13800138000", extra="Connection: keep-alive\r\n")
        sock.sendall(req.replace(b"HTTP/1.1", b"HTTP/1.0", 1) * 2)
        sock.settimeout(0.3)
        data, exc = read_until_close(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 2 and isinstance(exc, socket.timeout)


def test_pipelined_requests_are_answered_in_order(sb: Sandbox) -> None:
    numbers = ["13800138005", "13800138000", "13800138009"]
    with connect(sb.base_url) as sock:
        sock.sendall(b"".join(request_bytes(sb.base_url, sb.appcode, n) for n in numbers))
        sock.settimeout(0.5)
        data, _ = read_until_close(sock)
    mobiles = re.findall(rb"X-Sandbox-Mobile: (\d+)", data)
    assert [m.decode() for m in mobiles] == numbers
    assert sb.connections == 1


def test_expect_100_continue(sb: Sandbox) -> None:
    full = request_bytes(sb.base_url, sb.appcode, "13800138000", extra="Expect: 100-continue\r\n")
    head, _, body = full.partition(b"\r\n\r\n")
    with connect(sb.base_url) as sock:
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200 OK")


def test_chunked_request_body(sb: Sandbox) -> None:
    host, port, _ = split(sb.base_url)
    with connect(sb.base_url) as sock:
        sock.sendall(
            f"POST {API} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: APPCODE {sb.appcode}\r\n"
            f"Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n"
            "7\r\nmobile=\r\nb\r\n13800138007\r\n0\r\n\r\n".encode()
        )
        data = sock.recv(65536)
    assert json.loads(head_and_body(data)[1])["data"]["result"] == "3"


# --------------------------------------------------------------------------
# counters


def test_counters_and_reset(sb: Sandbox) -> None:
    post(sb.base_url, sb.appcode, "13800138000")
    post(sb.base_url, sb.appcode, "13800138000")
    post(sb.base_url, sb.appcode, SCENARIOS["quota_exhausted"])
    post(sb.base_url, "wrong", "13800138001")
    post(sb.base_url, sb.appcode, "13800138000", method="GET")
    assert sb.total == 5
    assert sb.count("13800138000") == 3 and sb.count("13800138001") == 1
    assert sb.count("13999999999") == 0
    assert sb.count_scenario("quota_exhausted") == 1
    assert sb.scenario_counts == {"normal": 2, "quota_exhausted": 1}
    assert sb.connections == 5 and len(set(sb.peer_ports)) == 5
    arrivals = sb.arrivals()
    assert len(arrivals) == 5 and arrivals == sorted(arrivals)
    assert time.monotonic() - 5 < arrivals[0] <= time.monotonic()
    sb.reset()
    assert (sb.total, sb.count("13800138000"), sb.connections, sb.scenario_counts) == (0, 0, 0, {})
    assert sb.last_request is None and dict(sb.last_headers) == {} and sb.arrivals() == []


def test_counters_are_exact_under_concurrency(sb: Sandbox) -> None:
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        host, port, _ = split(sb.base_url)
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            for i in range(40):
                number = f"186{t + 1:04d}{i:04d}"
                data = post(sb.base_url, sb.appcode, number, conn=conn).json()
                assert data["data"]["orderNo"].endswith(number)  # type: ignore[index]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sb.total == 640 and sb.connections == 16
    assert sb.count("18600050039") == 1 and sb.count("18600170000") == 0


# --------------------------------------------------------------------------
# latency


def test_latency_routes_do_not_serialise(sb: Sandbox) -> None:
    url = sb.url(latency=0.2)
    assert url == sb.base_url + "/_sandbox/latency=200ms"
    times: list[float] = []

    def one() -> None:
        t0 = time.monotonic()
        assert post(url, sb.appcode, "13800138000").status == 200
        times.append(time.monotonic() - t0)

    threads = [threading.Thread(target=one) for _ in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert len(times) == 8 and min(times) >= 0.19
    assert elapsed < 0.8


def test_instance_latency_and_route_override(sb: Sandbox) -> None:
    sb.configure(latency=0.15)
    t0 = time.monotonic()
    post(sb.base_url, sb.appcode)
    assert time.monotonic() - t0 >= 0.14
    t0 = time.monotonic()
    post(sb.url(latency=0), sb.appcode)
    assert time.monotonic() - t0 < 0.1


def test_slow_scenario_numbers(sb: Sandbox) -> None:
    assert SCENARIOS["slow"] == "13900005100"
    t0 = time.monotonic()
    data = post(sb.base_url, sb.appcode, "13900005015").json()  # 150 ms
    assert 0.14 <= time.monotonic() - t0 < 1.0
    assert data["data"]["result"] == "2"  # type: ignore[index]  # last digit 5
    assert sb.count_scenario("slow") == 1


def test_url_routes_select_a_fault(sb: Sandbox) -> None:
    r = post(sb.url(fault="quota_exhausted"), sb.appcode, "13800138000")
    assert r.status == 403 and r.headers["X-Ca-Error-Message"] == "Quota Exhausted"
    r = post(sb.url(fault="suspended", latency=0.01), sb.appcode, "13800138000")
    assert r.json()["data"]["result"] == "2"  # type: ignore[index]
    assert sb.url(fault="refused") == sb.refused_url
    assert sb.url(fault="tarpit") == sb.tarpit_url
    with pytest.raises(ValueError):
        sb.url(fault="nosuch")


# --------------------------------------------------------------------------
# percentage faults


def outcomes(sb: Sandbox, numbers: list[str]) -> list[str]:
    """One label per request, reconnecting after faults that close."""
    labels = []
    for number in numbers:
        data, exc = raw_exchange(sb, number)
        if exc is not None:
            labels.append(type(exc).__name__)
        elif not data:
            labels.append("empty")
        else:
            labels.append(head_and_body(data)[0][0])
    return labels


def test_percentage_faults_are_deterministic_with_a_seed() -> None:
    numbers = [f"1380013{i:04d}" for i in range(60)] + ["13800138000"] * 20
    faults = {"empty_reply": 0.25, "quota_exhausted": 0.25}
    runs = []
    for seed in (7, 7, 8):
        with Sandbox(faults=faults, seed=seed) as sb:
            runs.append(outcomes(sb, numbers))
            assert sb.total == len(numbers)
            counts = sb.scenario_counts
            assert counts.get("empty_reply", 0) == runs[-1].count("empty")
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    for labels in runs:
        assert 10 <= labels.count("empty") <= 35
        assert 10 <= labels.count("HTTP/1.1 403 Forbidden") <= 35
        # Retrying the same number draws again: it does not fail forever.
        assert "HTTP/1.1 200 OK" in labels[60:]


def test_faults_can_be_changed_at_run_time(sb: Sandbox) -> None:
    sb.configure(faults={"service_unavailable": 1.0})
    assert post(sb.base_url, sb.appcode).status == 503
    sb.configure(faults={})
    assert post(sb.base_url, sb.appcode).status == 200


def test_refused_as_a_connection_percentage() -> None:
    with Sandbox(faults={"refused": 1.0}) as sb:
        try:
            with connect(sb.base_url) as sock:
                time.sleep(0.05)  # the RST is there before we send anything
                data, exc = read_until_close(sock)
        except ConnectionResetError as early:  # the RST beat connect()'s check
            data, exc = b"", early
        assert data == b"" and isinstance(exc, ConnectionResetError)
        assert sb.connections == 1 and sb.total == 0 and sb.count_scenario("refused") == 1


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Sandbox(faults={"nosuch": 0.1})
    with pytest.raises(ValueError):
        Sandbox(faults={"empty_reply": 1.5})
    with pytest.raises(ValueError):
        Sandbox(faults={"empty_reply": 0.6, "stall_body": 0.6})
    with pytest.raises(ValueError):
        Sandbox(appcode="has space")
    with pytest.raises(ValueError):
        Sandbox(appcode="bad\r\nheader")


# --------------------------------------------------------------------------
# the raw faults (F-set)


def test_f1_refused(sb: Sandbox) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect(sb.refused_url).close()
    data, exc = raw_exchange(sb, SCENARIOS["refused"])
    assert data == b"" and isinstance(exc, ConnectionResetError)


def test_f2_tarpit(sb: Sandbox) -> None:
    t0 = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError)):
        connect(sb.tarpit_url, timeout=0.3).close()
    assert time.monotonic() - t0 >= 0.29
    # As a number (the connection already exists): never answered.
    data, exc = raw_exchange(sb, SCENARIOS["tarpit"], timeout=0.2)
    assert data == b"" and isinstance(exc, socket.timeout)


def test_f3_no_response(sb: Sandbox) -> None:
    data, exc = raw_exchange(sb, SCENARIOS["no_response"], timeout=0.3)
    assert data == b"" and isinstance(exc, socket.timeout)
    assert sb.total == 1 and sb.count_scenario("no_response") == 1


def test_f4_stall_body(sb: Sandbox) -> None:
    data, exc = raw_exchange(sb, SCENARIOS["stall_body"], timeout=0.3)
    lines, body = head_and_body(data)
    assert lines[0] == "HTTP/1.1 200 OK" and isinstance(exc, socket.timeout)
    assert len(body) == 10 < int(header(lines, "Content-Length") or 0)


def test_f5_short_body(sb: Sandbox) -> None:
    data, exc = raw_exchange(sb, SCENARIOS["short_body"])
    lines, body = head_and_body(data)
    assert exc is None  # a clean FIN
    assert 0 < len(body) < int(header(lines, "Content-Length") or 0)


def test_f6_reset_mid_body(sb: Sandbox) -> None:
    with connect(sb.base_url) as sock:
        sock.sendall(request_bytes(sb.base_url, sb.appcode, SCENARIOS["reset_body"]))
        time.sleep(0.15)  # the RST is already there when we read
        data, exc = read_until_close(sock)
    assert isinstance(exc, ConnectionResetError)
    if data:  # Linux keeps bytes received before the RST readable
        lines, body = head_and_body(data)
        assert len(body) < int(header(lines, "Content-Length") or 0)


def test_f7_chunked_eof(sb: Sandbox) -> None:
    data, exc = raw_exchange(sb, SCENARIOS["chunked_eof"])
    lines, body = head_and_body(data)
    assert exc is None and header(lines, "Transfer-Encoding") == "chunked"
    assert body and not body.endswith(b"0\r\n\r\n")


def test_f8_bad_chunk(sb: Sandbox) -> None:
    with connect(sb.base_url, timeout=0.5) as sock:
        sock.sendall(request_bytes(sb.base_url, sb.appcode, SCENARIOS["bad_chunk"]))
        data = b""
        while b"\r\nzz\r\n" not in data:
            data += sock.recv(65536)
    lines, _ = head_and_body(data)
    assert header(lines, "Transfer-Encoding") == "chunked"


def test_f9_empty_reply(sb: Sandbox) -> None:
    assert raw_exchange(sb, SCENARIOS["empty_reply"]) == (b"", None)


def test_f10_garbage_status_and_bad_header(sb: Sandbox) -> None:
    data, exc = raw_exchange(sb, SCENARIOS["garbage_status"])
    assert data.split(b"\r\n")[0] == b"HTTP/1.1 2OO 0K" and exc is None
    data, exc = raw_exchange(sb, SCENARIOS["bad_header"])
    lines = data.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK" and b":" not in lines[1]


def test_f11_huge_headers(sb: Sandbox) -> None:
    with connect(sb.base_url) as sock:
        sock.sendall(request_bytes(sb.base_url, sb.appcode, SCENARIOS["huge_headers"]))
        sock.settimeout(2)
        data = b""
        while b"}}" not in data:
            data += sock.recv(1 << 20)
    head, _, body = data.partition(b"\r\n\r\n")
    assert len(head) >= 400 * 1024
    assert json.loads(body)["data"]["result"] == "1"


def test_f12_endless_body(sb: Sandbox) -> None:
    with connect(sb.base_url) as sock:
        sock.sendall(request_bytes(sb.base_url, sb.appcode, SCENARIOS["endless_body"]))
        got = 0
        while got < 3 * 1024 * 1024:
            chunk = sock.recv(1 << 20)
            assert chunk
            got += len(chunk)
    # closing our end ends the stream server-side
    deadline = time.monotonic() + 2
    while sb.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sb.open_connections == 0


def test_f16_keepalive_closed_between_requests(sb: Sandbox) -> None:
    with connect(sb.base_url, timeout=1) as sock:
        sock.sendall(request_bytes(sb.base_url, sb.appcode, SCENARIOS["keepalive_close"]))
        data, exc = read_until_close(sock)
    lines, body = head_and_body(data)
    assert exc is None and header(lines, "Connection") == "keep-alive"
    assert json.loads(body)["data"]["result"] == "1"


def test_keepalive_race_drops_the_next_request(sb: Sandbox) -> None:
    host, port, _ = split(sb.base_url)
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        assert post(sb.base_url, sb.appcode, SCENARIOS["keepalive_race"], conn=conn).status == 200
        with pytest.raises(http.client.RemoteDisconnected):
            post(sb.base_url, sb.appcode, "13800138000", conn=conn)
    finally:
        conn.close()
    assert sb.total == 1 and sb.discarded == 1 and sb.count("13800138000") == 0


# --------------------------------------------------------------------------
# lifecycle, secrecy, entry points


def test_stop_is_fast_with_stalled_connections() -> None:
    sb = Sandbox().start()
    socks = []
    try:
        for name in ("no_response", "stall_body", "endless_body", "bad_chunk", "slow"):
            sock = connect(sb.base_url)
            sock.sendall(request_bytes(sb.base_url, sb.appcode, SCENARIOS[name]))
            socks.append(sock)
        socks.append(connect(sb.base_url))  # idle keep-alive
        socks[2].recv(65536)  # the endless body is flowing
        time.sleep(0.1)
        name = f"mobilestatus-sandbox:{split(sb.base_url)[1]}"
        assert name in [t.name for t in threading.enumerate()]
        t0 = time.monotonic()
        sb.stop()
        assert time.monotonic() - t0 < 1.0
        assert not sb.running
        assert name not in [t.name for t in threading.enumerate()]
        for sock in socks:
            sock.settimeout(2)
            _, exc = read_until_close(sock, limit=1 << 30)
            assert exc is None or isinstance(exc, ConnectionResetError)
        with pytest.raises(ConnectionRefusedError):
            connect(sb.base_url).close()
        sb.stop()  # idempotent
    finally:
        for sock in socks:
            sock.close()
        sb.stop()


def test_repr_and_pickle_hide_the_appcode() -> None:
    with Sandbox(appcode="canary-0123456789") as sb:
        post(sb.base_url, sb.appcode)
        texts = [repr(sb), str(sb), repr(sb.last_request), repr(sb.last_headers)]
        assert not [t for t in texts if "canary" in t]
        assert "127.0.0.1" in repr(sb)
        with pytest.raises(TypeError):
            pickle.dumps(sb)


def test_restart_on_the_same_port() -> None:
    with Sandbox() as first:
        port = split(first.base_url)[1]
    with Sandbox(port=port) as second:
        assert second.base_url == first.base_url
        assert post(second.base_url, second.appcode).status == 200
    assert "stopped" in repr(second)
    with pytest.raises(RuntimeError):
        second.url(latency=1)
    # The same object comes back on the same port, counters kept.
    with second:
        assert second.base_url == first.base_url and second.running
        assert post(second.base_url, second.appcode).status == 200
        assert second.total == 2
        with pytest.raises(RuntimeError):
            second.start()


def test_pytest_plugin_fixture(mobilestatus_sandbox: Sandbox) -> None:
    assert mobilestatus_sandbox.running and mobilestatus_sandbox.total == 0
    assert post(mobilestatus_sandbox.base_url, mobilestatus_sandbox.appcode).status == 200
    assert mobilestatus_sandbox.total == 1


@pytest.mark.mobilestatus_sandbox(faults={"quota_exhausted": 1.0})
def test_pytest_plugin_marker(mobilestatus_sandbox: Sandbox) -> None:
    assert mobilestatus_sandbox.total == 0
    assert post(mobilestatus_sandbox.base_url, mobilestatus_sandbox.appcode).status == 403


def test_serve_runs_until_ctrl_c() -> None:
    code = "from mobilestatus.sandbox import serve; serve('127.0.0.1', 0, appcode='cli-code')"
    # SIG_DFL, as in a terminal: a suite started in the background by a
    # non-interactive shell would hand its ignored SIGINT down.
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        base_url = first.split()[-1]
        assert base_url.startswith("http://127.0.0.1:")
        assert "cli-code" in proc.stdout.readline()
        assert post(base_url, "cli-code").status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_stop_while_clients_connect_leaves_no_socket_to_the_gc() -> None:
    """stop() while connections keep arriving: every accepted socket is
    closed by the sandbox, none is left for the garbage collector (whose
    ResourceWarning would fail whatever test of the user's it interrupts).
    asyncio 3.11 leaks a socket whose set-up task is cancelled, or runs
    after Server.close(); the sandbox lets those tasks finish first."""
    import gc
    import warnings

    unraisable: list[str] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda args: unraisable.append(repr(args.exc_value))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for _ in range(10):
                sandbox = Sandbox().start()
                port = int(sandbox.base_url.rsplit(":", 1)[1])
                stop = threading.Event()

                def hammer() -> None:
                    while not stop.is_set():
                        try:
                            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                        except OSError:
                            pass

                threads = [threading.Thread(target=hammer) for _ in range(2)]
                for thread in threads:
                    thread.start()
                time.sleep(0.02)
                sandbox.stop()
                stop.set()
                for thread in threads:
                    thread.join()
                gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    messages = [str(w.message) for w in caught] + unraisable
    assert not [m for m in messages if "unclosed" in m], messages[:3]
