"""Client.check end to end: real HTTP to the sandbox on 127.0.0.1, no
mocked transport.  Every Status, every gateway error class, business
errors, malformed and oversized bodies, redirects, timeouts, refused
connections, local validation (zero calls), and the AppCode's absence
from every repr, log line and error."""

from __future__ import annotations

import io
import logging
import pickle
import threading
import time
from collections.abc import Callable
import traceback

import pytest

import mobilestatus as ms
from mobilestatus import _core
from mobilestatus.sandbox import SCENARIOS, Sandbox


def test_seed_sample_is_normal(client: ms.Client, sandbox: Sandbox) -> None:
    result = client.check("13800138000")
    assert result == ms.CheckResult(
        number="13800138000",
        status=ms.Status.NORMAL,
        raw_status="1",
        carrier=ms.Carrier.CHINA_MOBILE,
        province="北京",
        city="北京",
        order_no=result.order_no,
        request_id=result.request_id,
        message="正常",
    )
    assert result.order_no is not None and len(result.order_no) == 21
    assert result.order_no.endswith("13800138000")
    assert result.request_id
    headers = sandbox.last_headers
    assert headers["authorization"] == f"APPCODE {sandbox.appcode}"
    assert headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert sandbox.count("13800138000") == 1


@pytest.mark.parametrize(
    ("scenario", "status", "raw"),
    [
        ("normal", ms.Status.NORMAL, "1"),
        ("suspended", ms.Status.SUSPENDED, "2"),
        ("cancelled", ms.Status.CANCELLED, "0"),
        ("unusable", ms.Status.UNAVAILABLE, "3"),
        ("pending_cancellation", ms.Status.PRE_CANCELLED, "4"),
        ("powered_off", ms.Status.POWERED_OFF, "5"),
        ("not_this_network", ms.Status.NOT_THIS_NETWORK, "999"),
        ("unknown_code", ms.Status.UNKNOWN, "7"),
        ("numeric_result", ms.Status.NORMAL, "1"),
    ],
)
def test_every_status(client: ms.Client, scenario: str, status: ms.Status, raw: str) -> None:
    result = client.check(SCENARIOS[scenario])
    assert result.status is status
    assert result.raw_status == raw


def test_input_forms_reach_the_same_number(client: ms.Client, sandbox: Sandbox) -> None:
    for form in ("+86 138-0013-8000", "008613800138000", "8613800138000",
                 "(+86) 138 0013 8000", "１３８００１３８０００", 13800138000):
        assert client.check(form).number == "13800138000"
    assert sandbox.count("13800138000") == 6


@pytest.mark.parametrize(
    "value", ["12345", "23800138000", "1380013800", "138001380001", "abc", "", "+1 415 555 0100"]
)
def test_invalid_numbers_cost_nothing(client: ms.Client, sandbox: Sandbox, value: str) -> None:
    with pytest.raises(ms.InvalidNumberError) as info:
        client.check(value)
    assert isinstance(info.value, ValueError)
    assert sandbox.total == 0


@pytest.mark.parametrize("value", [13800138000.0, True, b"13800138000", None, [13800138000]])
def test_wrong_types_raise_type_error(client: ms.Client, sandbox: Sandbox, value: object) -> None:
    with pytest.raises(TypeError):
        client.check(value)
    assert sandbox.total == 0


@pytest.mark.parametrize(
    ("scenario", "error_class", "http_status"),
    [
        ("invalid_appcode", ms.AuthenticationError, 400),
        ("unauthorized", ms.AuthenticationError, 403),
        ("quota_exhausted", ms.QuotaExceededError, 403),
        ("quota_expired", ms.QuotaExceededError, 403),
        ("user_arrears", ms.QuotaExceededError, 403),
        ("authorization_expired", ms.QuotaExceededError, 403),
        ("throttled_user", ms.RateLimitError, 403),
        ("throttled_api", ms.RateLimitError, 403),
        ("throttled", ms.RateLimitError, 403),
        ("too_many_requests", ms.RateLimitError, 429),
        ("internal_error", ms.UpstreamError, 500),
        ("backend_failed", ms.UpstreamError, 500),
        ("service_unavailable", ms.UpstreamError, 503),
        ("async_service", ms.UpstreamError, 504),
        ("bad_gateway_html", ms.UpstreamError, 502),
        ("invalid_url", ms.GatewayError, 400),
    ],
)
def test_gateway_errors(
    client: ms.Client, sandbox: Sandbox, scenario: str, error_class: type, http_status: int
) -> None:
    client.retry = ms.RetryPolicy(0)
    with pytest.raises(error_class) as info:
        client.check(SCENARIOS[scenario])
    error = info.value
    assert type(error) is error_class
    assert isinstance(error, ms.GatewayError)
    assert error.http_status == http_status
    assert error.request_id
    assert sandbox.count(SCENARIOS[scenario]) == 1


def test_gateway_error_carries_code_and_message(client: ms.Client) -> None:
    with pytest.raises(ms.AuthenticationError) as info:
        client.check(SCENARIOS["invalid_appcode"])
    assert info.value.error_code == "A400AC"
    assert info.value.error_message == "Invalid AppCode `not exists`"


def test_wrong_appcode_is_an_authentication_error(sandbox: Sandbox) -> None:
    with ms.Client("not-the-right-one", base_url=sandbox.base_url) as client:
        with pytest.raises(ms.AuthenticationError) as info:
            client.check("13800138000")
    assert info.value.error_code == "A400AC"
    assert "not-the-right-one" not in repr(info.value) + str(info.value)


def test_business_error(client: ms.Client, sandbox: Sandbox) -> None:
    with pytest.raises(ms.ApiError) as info:
        client.check(SCENARIOS["business_error"])
    assert info.value.code == 400
    assert info.value.msg == "不支持的号段"
    assert info.value.request_id
    # An HTTP 200 may have been billed: never retried.
    assert sandbox.count(SCENARIOS["business_error"]) == 1


def test_unsupported_prefix_is_a_business_error(client: ms.Client) -> None:
    with pytest.raises(ms.ApiError):
        client.check(SCENARIOS["unsupported_prefix"])


def test_malformed_body(client: ms.Client, sandbox: Sandbox) -> None:
    with pytest.raises(ms.ParseError) as info:
        client.check(SCENARIOS["malformed_json"])
    assert isinstance(info.value, ms.ResponseError)
    assert info.value.request_id
    assert sandbox.count(SCENARIOS["malformed_json"]) == 1


def test_oversized_body(sandbox: Sandbox) -> None:
    with ms.Client(sandbox.appcode, base_url=sandbox.base_url, max_response_size=64 * 1024) as c:
        with pytest.raises(ms.ResponseTooLargeError):
            c.check(SCENARIOS["oversized"])
        # The connection survives for the next call.
        assert c.check("13800138000").status is ms.Status.NORMAL


@pytest.mark.parametrize("scenario", ["redirect_same", "redirect_other", "redirect_scheme"])
def test_redirects_are_not_followed(client: ms.Client, sandbox: Sandbox, scenario: str) -> None:
    with pytest.raises(ms.RedirectError) as info:
        client.check(SCENARIOS[scenario])
    assert info.value.location
    assert sandbox.other_requests == 0
    assert sandbox.appcode_leaks == 0
    assert sandbox.total == 1


def test_stalled_server_times_out(sandbox: Sandbox) -> None:
    with ms.Client(sandbox.appcode, base_url=sandbox.base_url, timeout=0.5) as c:
        started = time.monotonic()
        with pytest.raises(ms.TimeoutError) as info:
            c.check(SCENARIOS["no_response"])
        elapsed = time.monotonic() - started
    assert isinstance(info.value, TimeoutError)  # the builtin too
    assert info.value.phase == "read"
    assert info.value.may_be_billed
    assert elapsed < 0.5 + 0.25
    # Sent and unanswered: may have been billed, so not retried.
    assert sandbox.count(SCENARIOS["no_response"]) == 1


def test_connect_timeout(sandbox: Sandbox) -> None:
    with ms.Client(sandbox.appcode, base_url=sandbox.tarpit_url, connect_timeout=0.3,
                   retry=0) as c:
        started = time.monotonic()
        with pytest.raises(ms.TimeoutError) as info:
            c.check("13800138000")
    assert info.value.phase == "connect"
    assert not info.value.may_be_billed
    assert time.monotonic() - started < 0.3 + 0.25


def test_connection_refused(sandbox: Sandbox) -> None:
    with ms.Client(sandbox.appcode, base_url=sandbox.refused_url, retry=0) as c:
        with pytest.raises(ms.ConnectError) as info:
            c.check("13800138000")
    assert info.value.curl_code == 7
    assert not info.value.may_be_billed
    assert isinstance(info.value, ms.TransportError)


def test_base_url_with_path_prefix(sandbox: Sandbox) -> None:
    with ms.Client(sandbox.appcode, base_url=sandbox.url(latency=0.0) + "/") as c:
        assert c.check("13800138001").status is ms.Status.NORMAL
    assert sandbox.count("13800138001") == 1


def test_connection_is_reused(client: ms.Client, sandbox: Sandbox) -> None:
    for _ in range(20):
        client.check("13800138000")
    assert sandbox.connections == 1


def test_gil_is_released_during_the_wait(sandbox: Sandbox) -> None:
    slow = sandbox.url(latency=0.2)
    with ms.Client(sandbox.appcode, base_url=slow) as c:
        c.check("13800138000")  # warm one connection; the rest connect in parallel
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                c.check(f"1380013800{i}")
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        elapsed = time.monotonic() - started
    assert not errors
    # Serial would be 8 x 0.2 s = 1.6 s; parallel is ~0.2 s.
    assert elapsed < 1.6 / 3


def test_client_validates_configuration(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOBILESTATUS_APPCODE", raising=False)
    with pytest.raises(ms.AuthenticationError):
        ms.Client(base_url=sandbox.base_url)
    for bad in ("abc\r\nX-Evil: 1", "abc\n", "abc\0def", " abc"):
        with pytest.raises(ValueError) as info:
            ms.Client(bad, base_url=sandbox.base_url)
        assert "abc" not in str(info.value)
    with pytest.raises(ValueError):
        ms.Client("x", base_url="ftp://127.0.0.1/")
    with pytest.raises(ValueError):
        ms.Client("x", base_url="http://example.com")  # AppCode over plain http
    with pytest.raises(ValueError):
        ms.Client("x", base_url=sandbox.base_url, timeout=0)
    monkeypatch.setenv("MOBILESTATUS_APPCODE", sandbox.appcode)
    with ms.Client(base_url=sandbox.base_url) as c:
        assert c.check("13800138000").status is ms.Status.NORMAL


def test_closed_client_refuses_work(sandbox: Sandbox) -> None:
    c = ms.Client(sandbox.appcode, base_url=sandbox.base_url)
    c.close()
    c.close()
    with pytest.raises(RuntimeError):
        c.check("13800138000")


def test_appcode_never_leaks(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    secret = "canary-" + "7f3a9c1e5b"
    texts: list[str] = []
    caplog.set_level(logging.DEBUG, logger="mobilestatus")
    for base_url in (sandbox.base_url, sandbox.refused_url):
        c = ms.Client(secret, base_url=base_url, retry=ms.RetryPolicy(1, backoff=0.01))
        texts += [repr(c), str(c), repr(c.retry)]
        for number in ("13800138000", SCENARIOS["quota_exhausted"], SCENARIOS["malformed_json"]):
            try:
                c.check(number)
            except ms.MobileStatusError as error:
                texts += [repr(error), str(error), "".join(traceback.format_exception(error))]
                texts.append(repr(pickle.loads(pickle.dumps(error))))
                texts.append(repr(pickle.dumps(error)))
        with pytest.raises(TypeError):
            pickle.dumps(c)
        c.close()
    texts += [record.getMessage() for record in caplog.records]
    session = _core.Session("http://127.0.0.1:1/", [f"Authorization: APPCODE {secret}"])
    texts.append(repr(session))
    assert texts
    assert not [t for t in texts if secret in t]


def test_log_lines_mask_numbers(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mobilestatus")
    with ms.Client(sandbox.appcode, base_url=sandbox.base_url,
                   retry=ms.RetryPolicy(1, backoff=0.01)) as c:
        with pytest.raises(ms.UpstreamError):
            c.check(SCENARIOS["internal_error"])
    lines = [record.getMessage() for record in caplog.records]
    assert lines
    number = SCENARIOS["internal_error"]
    assert all(number not in line for line in lines)
    assert any(ms.mask(number) in line for line in lines)


def test_errors_pickle_with_their_attributes() -> None:
    error = ms.RateLimitError("HTTP 403", retry_after=1.5, http_status=403,
                              error_message="Throttled", request_id="r1")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is ms.RateLimitError
    assert (clone.retry_after, clone.http_status, clone.request_id) == (1.5, 403, "r1")
    timeout = ms.TimeoutError("t", phase="connect", curl_code=28)
    clone_t = pickle.loads(pickle.dumps(timeout))
    assert clone_t.phase == "connect" and isinstance(clone_t, TimeoutError)


def test_cli_prints_a_table(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from mobilestatus import cli

    code = cli.main(["check", "--base-url", sandbox.base_url, "--appcode", sandbox.appcode,
                     "13800138000", "13800138005", "12345"])
    out = capsys.readouterr()
    assert code == cli.EXIT_SOME_FAILED
    assert "NORMAL" in out.out and "SUSPENDED" in out.out and "InvalidNumberError" in out.out
    assert sandbox.appcode not in out.out + out.err


def test_cli_sandbox_demo(capsys: pytest.CaptureFixture[str]) -> None:
    from mobilestatus import cli

    assert cli.main(["check", "--sandbox", "13800138000", "13800138009"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "NORMAL" in out and "POWERED_OFF" in out and "关机" in out


def test_cli_without_appcode_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilestatus import cli

    monkeypatch.delenv("MOBILESTATUS_APPCODE", raising=False)
    assert cli.main(["check", "13800138000"]) == cli.EXIT_CONFIG
    assert "AppCode" in capsys.readouterr().err


def test_module_is_reimportable() -> None:
    import importlib
    import sys

    first = sys.modules["mobilestatus._core"]
    del sys.modules["mobilestatus._core"]
    try:
        second = importlib.import_module("mobilestatus._core")
        assert second is not first
        assert second.Session is not first.Session
        assert second.loads(b'{"a": [1]}') == {"a": [1]}
        session = second.Session("http://127.0.0.1:1/", [])
        batch = second.Batch(session)
        batch.close()
        with pytest.raises(TypeError):
            first.Batch(session)  # each module object has its own types
    finally:
        # The import also rebound the package attribute: restore both.
        sys.modules["mobilestatus._core"] = first
        ms._core = first  # type: ignore[attr-defined]


def test_core_types_refuse_pickling_and_subclassing() -> None:
    session = _core.Session("http://127.0.0.1:1/", [])
    with pytest.raises(TypeError):
        pickle.dumps(session)
    with pytest.raises(TypeError):
        type("Sub", (_core.Session,), {})
    session.close()
    assert session.closed
    with pytest.raises(RuntimeError):
        session.post(b"mobile=13800138000")


def test_core_rejects_header_injection() -> None:
    with pytest.raises(ValueError):
        _core.Session("http://127.0.0.1:1/", ["Authorization: APPCODE a\r\nX: y"])
    with pytest.raises(ValueError):
        _core.Session("http://127.0.0.1:1/\n", [])


def test_stderr_log_output_is_redacted(sandbox: Sandbox) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("mobilestatus")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with ms.Client(sandbox.appcode, base_url=sandbox.base_url,
                       retry=ms.RetryPolicy(1, backoff=0.01)) as c:
            with pytest.raises(ms.RateLimitError):
                c.check(SCENARIOS["throttled_user"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert "retrying" in text
    assert sandbox.appcode not in text
    assert SCENARIOS["throttled_user"] not in text


def test_closed_client_refuses_batches(sandbox: Sandbox) -> None:
    c = ms.Client(sandbox.appcode, base_url=sandbox.base_url)
    c.close()
    with pytest.raises(RuntimeError):
        c.check_many(["13800138000"])
    assert sandbox.total == 0


def test_ctrl_c_interrupts_a_single_check(
    sandbox: Sandbox, ctrl_c_after: Callable[[float], list[float]]
) -> None:
    """A check waiting on a slow answer stops at Ctrl-C, not at its deadline;
    the client stays usable."""
    with ms.Client(sandbox.appcode, base_url=sandbox.url(latency=5.0), timeout=10.0) as slow:
        sent = ctrl_c_after(0.3)
        with pytest.raises(KeyboardInterrupt):
            slow.check("13800138000")
        stopped = time.monotonic()
    # libcurl wakes its wait at least once a second; the answer is 5 s away.
    assert stopped - sent[0] < 1.5
    with ms.Client(sandbox.appcode, base_url=sandbox.base_url) as client:
        assert client.check("13800138000").status is ms.Status.NORMAL
