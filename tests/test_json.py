"""The strict JSON parser, through ``mobilestatus._core.loads``.

The C parser (csrc/json.c) and the conversion to Python (csrc/convert.c)
are checked against JSONTestSuite, against ``json.loads`` as a reference,
and on the limits that protect the process: nesting depth, number length,
small thread stacks, leaks and reference counts.
"""

from __future__ import annotations

import gc
import json
import math
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from mobilestatus import _core
from mobilestatus.errors import ParseError

# CI checks the repository out next to ``shared/``, so the data is found
# from the repository's parent, never from the current directory.
SUITE = (
    Path(__file__).resolve().parents[2]
    / "shared/testdata/JSONTestSuite/test_parsing"
)


def _suite(prefix: str) -> list[Path]:
    return sorted(SUITE.glob(f"{prefix}_*.json")) if SUITE.is_dir() else []


Y_FILES = _suite("y")
N_FILES = _suite("n")
I_FILES = _suite("i")

SAMPLE = (
    '{"msg":"成功","success":true,"code":200,"data":{"orderNo":'
    '"202406282055560705659","result":"1","province":"北京","city":"北京",'
    '"channel":"移动","resultMsg":"正常"}}'
).encode("utf-8")

# Generous: each case takes microseconds, but CI machines stall.
FAST = 1.0


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types, float signs, NaN and key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def reference(data: bytes) -> Any:
    """What json.loads makes of data read strictly as UTF-8."""
    return json.loads(data.decode("utf-8"))


def parse_error(data: bytes | bytearray, **kwargs: Any) -> ParseError:
    with pytest.raises(ParseError) as info:
        _core.loads(data, **kwargs)
    exc = info.value
    assert type(exc) is ParseError
    assert isinstance(exc, ValueError)
    assert isinstance(exc.offset, int)
    assert 0 <= exc.offset <= len(data)
    assert str(exc) == exc.message
    assert exc.message.startswith("malformed JSON: ")
    assert exc.message.endswith(f" (byte {exc.offset})")
    return exc


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # returned, so the caller can assert on it
        result = exc
    return result, time.perf_counter() - start


# ---- JSONTestSuite ----


def test_suite_is_complete() -> None:
    # A missing or partial data directory must fail, not skip silently.
    assert SUITE.is_dir(), f"JSONTestSuite not found at {SUITE}"
    assert len(Y_FILES) == 95
    assert len(N_FILES) == 188
    assert len(I_FILES) == 35


@pytest.mark.parametrize("path", Y_FILES, ids=lambda p: p.name)
def test_suite_accepts(path: Path) -> None:
    data = path.read_bytes()
    result, elapsed = timed(_core.loads, data)
    assert not isinstance(result, BaseException), result
    assert same(result, reference(data))
    assert elapsed < FAST


@pytest.mark.parametrize("path", N_FILES, ids=lambda p: p.name)
def test_suite_rejects(path: Path) -> None:
    data = path.read_bytes()
    start = time.perf_counter()
    parse_error(data)
    assert time.perf_counter() - start < FAST


@pytest.mark.parametrize("path", I_FILES, ids=lambda p: p.name)
def test_suite_implementation_defined(path: Path) -> None:
    data = path.read_bytes()
    result, elapsed = timed(_core.loads, data)
    assert elapsed < FAST
    if isinstance(result, BaseException):
        assert type(result) is ParseError, repr(result)
        assert 0 <= result.offset <= len(data)
    else:
        # Whatever we accept, we read as json.loads does.
        assert same(result, reference(data))


# ---- values ----


def test_seed_sample() -> None:
    result = _core.loads(SAMPLE)
    assert same(result, reference(SAMPLE))
    assert result["data"]["orderNo"] == "202406282055560705659"
    assert result["data"]["province"] == "北京"


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "7",
        "999999999999999999",  # 18 characters: the long long fast path
        "-99999999999999999",
        "1000000000000000000",  # 19: PyLong_FromString
        "-999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "202406282055560705659",  # a 21-digit orderNo
        str(10**30),
        str(-(10**30)),
        "9" * 4300,
    ],
)
def test_integers_are_exact(text: str) -> None:
    result = _core.loads(text.encode())
    assert type(result) is int
    assert result == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "0.0",
        "-0.0",
        "0.1",
        "1e2",
        "1E+2",
        "-1.5e-3",
        "1E400",
        "-1e400",
        "1e-400",
        "4.9e-324",
        "1.7976931348623157e308",
        "123456789012345678901234567890.5",
        "0." + "1" * 4000,
    ],
)
def test_floats_match_json_loads(text: str) -> None:
    assert same(_core.loads(text.encode()), json.loads(text))


def test_special_floats() -> None:
    assert _core.loads(b"1E400") == math.inf
    assert _core.loads(b"-1E400") == -math.inf
    assert math.copysign(1.0, _core.loads(b"-0.0")) == -1.0
    assert same(_core.loads(b"-0"), 0)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b'"\\uD834\\uDD1E"', "\U0001d11e"),
        (b'"\\udbff\\udfff"', "\U0010ffff"),
        (b'"a\\u0000b"', "a\x00b"),
        (b'"\\u00e9\\u4e2d"', "é中"),
        (b'"\xf0\x9f\x98\x80"', "\U0001f600"),
        (b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\/\b\f\n\r\t'),
        (b'"\x7f"', "\x7f"),
    ],
)
def test_strings(data: bytes, expected: str) -> None:
    assert _core.loads(data) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "é",
        "ÿ",
        "\x80",
        "Ā",  # U+0100: the narrowest two-byte-wide char
        "\u07ff",
        "\u0800",
        "成功",
        "\uffff",
        "\U00010000",
        "\U0010ffff",
        "aé成\U0001f600",
        "é" * 50 + "x",
    ],
)
def test_strings_have_canonical_width(text: str) -> None:
    # A str built at the wrong width compares unequal to the same text.
    data = json.dumps({text: text}, ensure_ascii=False).encode()
    result = _core.loads(data)
    assert result == {text: text}
    (key,) = result
    assert key == text and hash(key) == hash(text)
    assert result[text] == text


def test_nul_in_keys_and_values() -> None:
    assert _core.loads(b'{"a\\u0000b":"c\\u0000"}') == {"a\x00b": "c\x00"}


@pytest.mark.parametrize(
    "data",
    [
        b'"\\ud800"',
        b'"\\udc00"',
        b'"\\udc00\\ud800"',
        b'"\\ud800\\u0041"',
        b'"\\ud800x"',
        b'"\\ud800\\ud800"',
        b'{"\\udfff":1}',
    ],
)
def test_lone_surrogates_are_rejected(data: bytes) -> None:
    exc = parse_error(data)
    assert "lone surrogate" in exc.message


@pytest.mark.parametrize(
    "data",
    [
        b'"\xc0\x80"',  # overlong NUL
        b'"\xe0\x80\xaf"',  # overlong '/'
        b'"\xed\xa0\x80"',  # encoded U+D800
        b'"\xf4\x90\x80\x80"',  # above U+10FFFF
        b'"\xe6\x88"',  # truncated
        b'"\xff"',
        b'"\x80"',
    ],
)
def test_invalid_utf8_is_rejected(data: bytes) -> None:
    assert parse_error(data).offset == 1


def test_duplicate_keys_last_wins() -> None:
    data = b'{"a":1,"b":2,"a":3}'
    result = _core.loads(data)
    assert result == {"a": 3, "b": 2}
    assert same(result, reference(data))


def test_containers_of_any_length() -> None:
    items = list(range(100_000))
    data = json.dumps({"items": items, "m": {str(i): i for i in items}})
    assert same(_core.loads(data.encode()), json.loads(data))


def test_collector_never_sees_a_half_built_list() -> None:
    # A gc callback can reach any young tracked object; a list created
    # before its items were converted would hold NULL slots and crash
    # the iteration below.
    lists_seen = 0

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal lists_seen
        if phase != "start":
            return
        for obj in gc.get_objects(generation=0):
            if type(obj) is list:
                lists_seen += 1
                for item in obj:
                    type(item)

    data = json.dumps([[{"k": [i, str(i)]} for i in range(50)]] * 20)
    old_threshold = gc.get_threshold()
    gc.set_threshold(5)
    gc.callbacks.append(callback)
    try:
        for _ in range(5):
            assert _core.loads(data.encode()) == json.loads(data)
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*old_threshold)
    assert lists_seen > 0


# ---- errors ----


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"", "unexpected end of data", 0),
        (b"[1,]", "unexpected character", 3),
        (b'{"a":1,}', "expected string key", 7),
        (b"[1 2]", "expected ',' or ']'", 3),
        (b'{"a" 1}', "expected ':'", 5),
        (b"  [1] x", "trailing data", 6),
        (b"01", "leading zero", 0),
        (b"[-012]", "leading zero", 2),
        (b"1.", "unexpected end of data", 2),
        (b"[1.e1]", "invalid number", 3),
        (b"+1", "unexpected character", 0),
        (b"NaN", "unexpected character", 0),
        (b"[Infinity]", "unexpected character", 1),
        (b"'a'", "unexpected character", 0),
        (b"[1]//", "trailing data", 3),
        (b'["abc', "unterminated string", 1),
        (b'"a\tb"', "control character in string", 2),
        (b'"\\x"', "invalid escape", 1),
        (b'"\\u12"', "invalid \\u escape", 1),
        (b'["ab\\ud800"]', "lone surrogate", 4),
        (b'"\xc3"', "invalid UTF-8", 1),
        (b"\xef\xbb\xbf{}", "byte order mark not allowed", 0),
        (b"\x0c[]", "unexpected character", 0),
        (b"nul", "unexpected end of data", 3),
        (b"[nulL]", "invalid literal", 4),
    ],
)
def test_error_messages_and_offsets(
    data: bytes, message: str, offset: int
) -> None:
    exc = parse_error(data)
    assert exc.offset == offset
    assert exc.message == f"malformed JSON: {message} (byte {offset})"


def test_parse_error_pickles_with_offset() -> None:
    import pickle

    exc = parse_error(b"[1,]")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is ParseError
    assert copy.offset == 3
    assert copy.message == exc.message


# ---- limits ----


def test_number_too_long_is_rejected_fast() -> None:
    for data in (b"1" * 4301, b"-" + b"1" * 4300, b"[" + b"1" * 10_000_000):
        start = time.perf_counter()
        exc = parse_error(data)
        assert time.perf_counter() - start < FAST
        assert "number too long" in exc.message


def test_lowered_int_digit_limit_is_a_parse_error() -> None:
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("no int digit limit on this Python")
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(ParseError) as info:
            _core.loads(b"[" + b"1" * 1000 + b"]")
    finally:
        sys.set_int_max_str_digits(old)
    assert type(info.value) is ParseError
    assert isinstance(info.value.__cause__, ValueError)


def _nested(depth: int) -> bytes:
    # Arrays and objects alternate, so both container paths are measured.
    opening = b"".join(b"[" if i % 2 else b'{"k":' for i in range(depth))
    closing = b"".join(b"]" if i % 2 else b"}" for i in reversed(range(depth)))
    return opening + b"0" + closing


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (list, dict)):
        depth += 1
        if not value:
            break
        value = value[0] if isinstance(value, list) else value["k"]
    return depth


def test_depth_limit_default() -> None:
    assert _depth(_core.loads(_nested(128))) == 128
    assert _depth(_core.loads(b"[" * 128 + b"]" * 128)) == 128
    exc = parse_error(b"[" * 129 + b"]" * 129)
    assert exc.offset == 128
    assert "maximum nesting depth exceeded" in exc.message
    parse_error(_nested(129))


@pytest.mark.parametrize("limit", [1, 2, 5, 300])
def test_depth_limit_keyword(limit: int) -> None:
    assert _depth(_core.loads(_nested(limit), max_depth=limit)) == limit
    exc = parse_error(_nested(limit + 1), max_depth=limit)
    assert "maximum nesting depth exceeded" in exc.message
    assert _core.loads(b"1", max_depth=1) == 1


def test_huge_max_depth_never_crashes() -> None:
    # The parser keeps its frames on the heap; the conversion recurses and
    # is guarded by Py_EnterRecursiveCall, so the worst case is a clean
    # RecursionError rather than a blown C stack.
    data = b"[" * 100_000 + b"]" * 100_000
    try:
        result = _core.loads(data, max_depth=1_000_000)
    except RecursionError:
        pass
    else:
        assert isinstance(result, list)


@pytest.mark.parametrize("max_depth", [0, -1, -(2**40)])
def test_max_depth_must_be_positive(max_depth: int) -> None:
    with pytest.raises(ValueError, match="max_depth"):
        _core.loads(b"[]", max_depth=max_depth)


def test_ten_megabytes_of_brackets_fail_fast() -> None:
    data = b"[" * 10_000_000
    start = time.perf_counter()
    exc = parse_error(data)
    assert time.perf_counter() - start < FAST
    assert exc.offset == 128
    assert "maximum nesting depth exceeded" in exc.message


def test_small_thread_stack() -> None:
    # musl's default thread stack is 128 KiB; the deepest accepted document
    # must convert, and hostile ones must fail cleanly, on 256 KiB.
    results: dict[str, Any] = {}

    def work() -> None:
        try:
            results["deep"], results["deep_time"] = timed(
                _core.loads, b"[" * 10_000_000
            )
            results["open"] = timed(
                _core.loads, b'[{"":' * 50_000
            )[0]
            results["ok"] = _depth(_core.loads(_nested(128)))
        except BaseException as exc:  # reported to the main thread
            results["error"] = exc

    old = threading.stack_size(256 * 1024)
    try:
        thread = threading.Thread(target=work)
        thread.start()
    finally:
        threading.stack_size(old)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "error" not in results, results.get("error")
    assert type(results["deep"]) is ParseError
    assert results["deep_time"] < FAST
    assert type(results["open"]) is ParseError
    assert results["ok"] == 128


def test_threads_parse_big_documents_concurrently() -> None:
    # Big bytes are parsed with the GIL released: results must not mix.
    docs = [
        json.dumps({"n": n, "items": [n] * 20_000}).encode() for n in range(4)
    ]
    out: list[Any] = [None] * 4

    def work(i: int) -> None:
        for _ in range(5):
            out[i] = _core.loads(docs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        assert out[n] == {"n": n, "items": [n] * 20_000}


# ---- argument handling ----


def test_buffer_inputs() -> None:
    expected = reference(SAMPLE)
    assert same(_core.loads(bytearray(SAMPLE)), expected)
    assert same(_core.loads(memoryview(SAMPLE)), expected)
    assert same(_core.loads(memoryview(b"xx" + SAMPLE)[2:]), expected)
    big = json.dumps(list(range(5000))).encode()
    assert len(big) > 4096
    assert _core.loads(bytearray(big)) == list(range(5000))
    assert _core.loads(memoryview(big)) == list(range(5000))
    parse_error(bytearray(b"[1,]"))


class _Bytes(bytes):
    pass


def test_bytes_subclass() -> None:
    assert _core.loads(_Bytes(b"[1]")) == [1]
    big = _Bytes(json.dumps(list(range(5000))).encode())
    assert _core.loads(big) == list(range(5000))


@pytest.mark.parametrize("data", ["[]", 1, None, ["[]"]])
def test_non_buffers_are_type_errors(data: Any) -> None:
    with pytest.raises(TypeError):
        _core.loads(data)


def test_non_contiguous_buffer_is_refused() -> None:
    with pytest.raises((TypeError, BufferError)):
        _core.loads(memoryview(b"[1, 2, 3]")[::2])


def test_signature() -> None:
    with pytest.raises(TypeError):
        _core.loads(data=b"[]")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _core.loads(b"[]", 5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _core.loads()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _core.loads(b"[]", depth=3)  # type: ignore[call-arg]


# ---- leaks and reference counts ----


def _leak_round(data: bytes, rounds: int) -> tuple[int, int]:
    """(growth of gc-tracked objects, growth of traced bytes)."""
    for _ in range(100):
        try:
            _core.loads(data)
        except ParseError:
            pass
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(rounds):
            try:
                _core.loads(data)
            except ParseError:
                pass
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return len(gc.get_objects()) - objects, grown


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE,
        b'[1, 2.5, "x", null, true, false, {"a": [[]]}, 1234567890123456789]',
        b'{"a": [1, 2, {"b": "\\ud800"}]}',  # fails mid-document
        b'{"a": [1, 2, {"b": 3}]',  # truncated
    ],
    ids=["sample", "mixed", "error", "truncated"],
)
@pytest.mark.slow
def test_no_leaks(data: bytes) -> None:
    objects, grown = _leak_round(data, 20_000)
    assert objects < 50
    # A leaked str per round would be ~1 MB.
    assert grown < 64 * 1024


def test_input_refcount_unchanged() -> None:
    data = bytes(SAMPLE)
    big = json.dumps(list(range(5000))).encode()
    bad = b"[1,]" + b" " * 5000
    before = [sys.getrefcount(x) for x in (data, big, bad)]
    for _ in range(1000):
        _core.loads(data)
        _core.loads(big)
        try:
            _core.loads(bad)
        except ParseError:
            pass
    assert [sys.getrefcount(x) for x in (data, big, bad)] == before


# ---- differential tests against json.loads ----

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # only the differential tests need it
    HAVE_HYPOTHESIS = False
else:
    HAVE_HYPOTHESIS = True

if not HAVE_HYPOTHESIS:

    def test_differential() -> None:
        pytest.importorskip("hypothesis")

else:
    # Surrogates are left out: json.dumps escapes a lone one, which we
    # reject on purpose and json.loads accepts.
    _text = st.text(st.characters(codec="utf-8"), max_size=20)
    _json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(min_value=-(10**40), max_value=10**40)
        | st.floats(allow_nan=False, allow_infinity=False)
        | _text,
        lambda children: st.lists(children, max_size=6)
        | st.dictionaries(_text, children, max_size=6),
        max_leaves=30,
    )

    @settings(deadline=None, max_examples=300)
    @given(
        value=_json_values,
        ensure_ascii=st.booleans(),
        indent=st.sampled_from([None, 0, 2, "\t"]),
    )
    def test_differential_dumps(
        value: Any, ensure_ascii: bool, indent: Any
    ) -> None:
        data = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
        assert same(_core.loads(data.encode("utf-8")), json.loads(data))

    # Tokens whose concatenations are mostly almost-JSON.  NaN/Infinity
    # and lone surrogate escapes are left out for the same reason.
    _TOKENS = [
        b"[", b"]", b"{", b"}", b",", b":", b" ", b"\n", b"\t", b"\x0c",
        b"\x00", b'"', b'"a"', b'"\\n"', b'"\\u00e9"',
        b'"\\ud83d\\ude00"', b'"\xc3\xa9"', b'"\xed\xa0\x80"', b"\xff",
        b"\\", b"0", b"1", b"-", b".", b"5", b"e", b"E+", b"00", b"true",
        b"fals", b"null",
    ]

    @settings(deadline=None, max_examples=1000)
    @given(st.lists(st.sampled_from(_TOKENS), max_size=12))
    def test_differential_tokens(tokens: list[bytes]) -> None:
        data = b"".join(tokens)
        try:
            expected = reference(data)
        except ValueError:  # JSONDecodeError or UnicodeDecodeError
            parse_error(data)
        else:
            assert same(_core.loads(data), expected)
