"""Unit tests of mobilestatus.numbers (pure Python, no network)."""

from __future__ import annotations

import decimal
import fractions
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilestatus.errors import InvalidNumberError
from mobilestatus.numbers import guess_carrier, is_valid, mask, normalize
from mobilestatus.status import Carrier

NUMBER = "13800138000"
CLEAN = re.compile(r"1[3-9][0-9]{9}")

# ------------------------------------------------------------ normalize: ok


@pytest.mark.parametrize(
    "value",
    [
        "13800138000",
        "+86 138-0013-8000",
        "+8613800138000",
        "+86-13800138000",
        "+86-138-0013-8000",
        "0086 13800138000",
        "008613800138000",
        "00 86 138 0013 8000",
        "8613800138000",
        "86 138 0013 8000",
        "(+86) 138 0013 8000",
        "（+86）138 0013 8000",
        "+86 (138) 0013 8000",
        "138 0013 8000",
        "138-0013-8000",
        "138.0013.8000",
        "138．0013．8000",
        " 13800138000 ",
        "13800138000\n",
        "13800138000\r\n",
        "\t138\t0013\t8000\t",
        "138\u30000013\u30008000",  # ideographic space
        "138\u00a00013\u00a08000",  # NBSP
        "138\u202f0013\u20098000",  # narrow NBSP, thin space
        "\ufeff13800138000",  # BOM from a CSV export
        "138\u200b0013\u200b8000",  # zero-width space
        "\u202a+86 138 0013 8000\u202c",  # bidi embedding from phone contacts
        "\u2066+86 138 0013 8000\u2069",
        "138\u20100013\u20118000",  # hyphen, non-breaking hyphen
        "138\u20120013\u20138000",  # figure dash, en dash
        "138\u20140013\u20158000",  # em dash, horizontal bar
        "138\u22120013\u22128000",  # minus sign
        "138－0013－8000",  # full-width hyphen-minus
        "138\ufe630013\ufe588000",  # small hyphen-minus, small em dash
        "１３８００１３８０００",  # full-width digits
        "＋８６ １３８ ００１３ ８０００",
        "＋86 138 0013 8000",
        "+８６１３８００１３８０００",
        "１３８-0013-８０００",
    ],
)
def test_normalize_accepts(value: str) -> None:
    result = normalize(value)
    assert result == NUMBER
    assert type(result) is str


def test_normalize_clean_str_fast_path_returns_input() -> None:
    value = "19912345678"
    assert normalize(value) is value


def test_normalize_str_subclass_gives_plain_str() -> None:
    class Sub(str):
        def __str__(self) -> str:
            return "not a number"

    result = normalize(Sub(NUMBER))
    assert result == NUMBER
    assert type(result) is str
    assert normalize(Sub("+86 138 0013 8000")) == NUMBER


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (13800138000, NUMBER),
        (8613800138000, NUMBER),
        (19912345678, "19912345678"),
    ],
)
def test_normalize_accepts_int(value: int, expected: str) -> None:
    assert normalize(value) == expected


def test_normalize_accepts_int_subclass() -> None:
    class MyInt(int):
        def __str__(self) -> str:
            return "garbage"

    assert normalize(MyInt(13800138000)) == NUMBER


def test_normalize_accepts_numpy_integers() -> None:
    np = pytest.importorskip("numpy")
    assert normalize(np.int64(13800138000)) == NUMBER
    assert normalize(np.uint64(8613800138000)) == NUMBER
    with pytest.raises(InvalidNumberError):
        normalize(np.int64(-13800138000))
    with pytest.raises(TypeError):
        normalize(np.bool_(True))
    with pytest.raises(TypeError):
        normalize(np.float64(13800138000))


@pytest.mark.parametrize("prefix", [str(p) for p in range(13, 20)])
def test_normalize_accepts_every_second_digit(prefix: str) -> None:
    number = prefix + "012345678"
    assert normalize(number) == number
    assert normalize("+86 " + number) == number


# -------------------------------------------------------- normalize: refused


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1380013800", "10 digits, expected 11"),
        ("138001380001", "12 digits, expected 11"),
        ("+86 1380013800", "10 digits, expected 11"),
        ("+86 138001380001", "12 digits, expected 11"),
        ("861380013800", "12 digits, expected 11"),  # 86 + 10 digits: not stripped
        ("86138001380001", "14 digits, expected 11"),
        ("00861380013800", "14 digits, expected 11"),
        ("0013800138000", "13 digits, expected 11"),
        ("013800138000", "12 digits, expected 11"),
        ("12800138000", "starts with 13 to 19"),
        ("10800138000", "starts with 13 to 19"),
        ("23800138000", "starts with 13 to 19"),
        ("8623800138000", "starts with 13 to 19"),
        ("+86 12800138000", "starts with 13 to 19"),
        ("+1 138 0013 8000", "country code 86"),
        ("+0086 13800138000", "country code 86"),
        ("+13800138000", "country code 86"),
        ("++8613800138000", "'+'"),
        ("138+00138000", "'+'"),
        ("138a0013800", "unexpected character 'a'"),
        ("138/0013/8000", "unexpected character '/'"),
        ("138_0013_8000", "unexpected character '_'"),
        ("138,0013,8000", "unexpected character ','"),
        ("tel:13800138000", "unexpected character 't'"),
        ("13800138000 ext 12", "unexpected character 'e'"),
        ("138\x000013800", "unexpected character '\\x00'"),
        # Unicode digits other than ASCII and full-width are refused.
        ("١٣٨٠٠١٣٨٠٠٠", "non-ASCII digit U+0661"),  # Arabic-Indic
        ("१३८००१३८०००", "non-ASCII digit U+0967"),  # Devanagari
        ("138\u00b20013800", "non-ASCII digit U+00B2"),  # superscript two
        ("138\u24600138000", "non-ASCII digit U+2460"),  # circled one
        ("𝟏𝟑𝟖𝟎𝟎𝟏𝟑𝟖𝟎𝟎𝟎", "non-ASCII digit U+1D7CF"),  # mathematical bold
        ("", "no digits"),
        ("   ", "no digits"),
        ("\u3000-().", "no digits"),
        ("+", "no digits"),
        ("+86", "0 digits, expected 11"),
        (-13800138000, "negative integer"),
        (-1, "negative integer"),
        (0, "1 digits, expected 11"),
        (1380013800, "10 digits, expected 11"),
        (138001380001, "12 digits, expected 11"),
        (12800138000, "starts with 13 to 19"),
        (861380013800, "12 digits, expected 11"),
        (10**40, "more than 30 digits"),
    ],
)
def test_normalize_refuses(value: str | int, reason: str) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize(value)
    message = str(info.value)
    assert message.startswith("not a Chinese mobile number")
    assert reason in message
    assert info.value.request_id is None
    # Neither the input nor any 11-digit run in it may leak into the message.
    text = str(value)
    if len(text) >= 5:
        assert text not in message
    for run in re.findall(r"\d{8,}", str(value).translate(_FULL_WIDTH)):
        assert run not in message


_FULL_WIDTH = {0xFF10 + i: str(i) for i in range(10)}


def test_normalize_refuses_huge_int_without_converting_it() -> None:
    # str() of this int raises ValueError (4300-digit limit) and is slow.
    with pytest.raises(InvalidNumberError, match="more than 30 digits"):
        normalize(10**5000)
    assert is_valid(10**5000) is False


def test_invalid_number_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        normalize("123")


def test_refused_message_shows_masked_input() -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize("+86 138 0013 800")
    assert str(info.value) == (
        "not a Chinese mobile number: '+86********* 800' (10 digits, expected 11)"
    )
    with pytest.raises(InvalidNumberError) as info:
        normalize("12800138000")
    assert "'128****8000'" in str(info.value)
    assert "12800138000" not in str(info.value)


def test_refused_message_stays_short_for_huge_input() -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize("1" * 1_000_000 + "x")
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        13800138000.0,
        1.38e10,
        float("nan"),
        b"13800138000",
        bytearray(b"13800138000"),
        memoryview(b"13800138000"),
        None,
        [NUMBER],
        (NUMBER,),
        {NUMBER: 1},
        decimal.Decimal("13800138000"),
        fractions.Fraction(13800138000),
        complex(13800138000, 0),
        object(),
    ],
)
def test_normalize_type_errors(value: Any) -> None:
    with pytest.raises(TypeError) as info:
        normalize(value)
    assert not isinstance(info.value, ValueError)
    # The message names the type, never the value.
    assert "138" not in str(info.value)


def test_bool_is_not_an_int_here() -> None:
    with pytest.raises(TypeError, match="bool"):
        normalize(True)
    assert is_valid(True) is False
    assert is_valid(False) is False


# ------------------------------------------------------------------ is_valid


@pytest.mark.parametrize(
    "value", [NUMBER, "+86 138-0013-8000", "１３８００１３８０００", 13800138000, 8613800138000]
)
def test_is_valid_true(value: object) -> None:
    assert is_valid(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "",
        "123",
        "12800138000",
        "١٣٨٠٠١٣٨٠٠٠",
        -13800138000,
        None,
        True,
        13800138000.0,
        b"13800138000",
        object(),
    ],
)
def test_is_valid_false(value: object) -> None:
    assert is_valid(value) is False


# ---------------------------------------------------------------------- mask


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13800138000", "138****8000"),
        ("8613800138000", "861******8000"),
        ("+86 138 0013 8000", "+86**********8000"),
        ("138001380001", "138*****0001"),
        ("1380013800", "1*******00"),
        ("123456789", "1******89"),
        ("12345678", "1******8"),
        ("1234567", "1*****7"),
        ("123456", "1****6"),
        ("12345", "****5"),
        ("1234", "****"),
        ("123", "***"),
        ("1", "*"),
        ("", ""),
        ("x" * 100, "xxx" + "*" * 16 + "xxxx"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert mask(value) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="*")))
def test_mask_reveals_at_most_three_leading_and_four_trailing(value: str) -> None:
    masked = mask(value)
    shown = len(masked) - masked.count("*")
    assert shown <= 7
    assert masked.count("*") <= 16
    if len(value) < 11:
        # Short strings are mostly hidden.
        assert masked.count("*") > len(value) / 2 or not value
    else:
        assert masked[:3] == value[:3] and masked[-4:] == value[-4:]


def test_mask_refuses_non_str() -> None:
    with pytest.raises(TypeError):
        mask(13800138000)  # type: ignore[arg-type]


# ------------------------------------------------------------- guess_carrier

MOBILE = Carrier.CHINA_MOBILE
UNICOM = Carrier.CHINA_UNICOM
TELECOM = Carrier.CHINA_TELECOM
BROADNET = Carrier.CHINA_BROADNET
UNKNOWN = Carrier.UNKNOWN

# An independent copy of api-landscape.md section 4.2, so that a typo in the
# module's table shows up as a failure here.
PREFIX_TABLE: dict[str, Carrier] = {
    **{f"134{d}": MOBILE for d in "012345678"},
    "1349": TELECOM,
    **{p: MOBILE for p in ("135", "136", "137", "138", "139")},
    **{p: UNICOM for p in ("130", "131", "132")},
    "133": TELECOM,
    "1410": TELECOM,
    "1440": MOBILE,
    "145": UNICOM,
    "146": UNICOM,
    "147": MOBILE,
    "148": MOBILE,
    "149": TELECOM,
    **{p: MOBILE for p in ("150", "151", "152", "157", "158", "159")},
    "153": TELECOM,
    "155": UNICOM,
    "156": UNICOM,
    "162": TELECOM,
    "165": MOBILE,
    "166": UNICOM,
    "167": UNICOM,
    **{f"170{d}": TELECOM for d in "012"},
    **{f"170{d}": MOBILE for d in "356"},
    **{f"170{d}": UNICOM for d in "4789"},
    "171": UNICOM,
    "172": MOBILE,
    "173": TELECOM,
    "174": TELECOM,
    "175": UNICOM,
    "176": UNICOM,
    "177": TELECOM,
    "178": MOBILE,
    "180": TELECOM,
    "181": TELECOM,
    **{p: MOBILE for p in ("182", "183", "184", "187", "188")},
    "185": UNICOM,
    "186": UNICOM,
    "189": TELECOM,
    "190": TELECOM,
    "191": TELECOM,
    "192": BROADNET,
    "193": TELECOM,
    "195": MOBILE,
    "196": UNICOM,
    "197": MOBILE,
    "198": MOBILE,
    "199": TELECOM,
}


@pytest.mark.parametrize(("prefix", "expected"), sorted(PREFIX_TABLE.items()))
def test_guess_carrier_table(prefix: str, expected: Carrier) -> None:
    for tail in ("0" * 11, "9" * 11, "5" * 11):
        number = (prefix + tail)[:11]
        assert guess_carrier(number) is expected, number


def test_guess_carrier_covers_every_valid_four_digit_prefix() -> None:
    # Every 4-digit start of a valid number gets the table's answer or
    # UNKNOWN, never an error.
    for first4 in range(1300, 2000):
        number = f"{first4}1234567"
        expected = PREFIX_TABLE.get(number[:4], PREFIX_TABLE.get(number[:3], UNKNOWN))
        assert guess_carrier(number) is expected, number


@pytest.mark.parametrize(
    "number",
    [
        "14012345678",  # IoT, not in the table
        "14112345678",  # only 1410 is known
        "14212345678",
        "14312345678",
        "14412345678",  # only 1440 is known
        "15412345678",
        "16012345678",
        "16112345678",
        "16312345678",
        "16412345678",
        "16812345678",
        "16912345678",
        "17912345678",
        "19412345678",
    ],
)
def test_guess_carrier_unknown_prefix_is_not_an_error(number: str) -> None:
    assert is_valid(number)
    assert guess_carrier(number) is UNKNOWN


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("13491234567", TELECOM),  # satellite
        ("13481234567", MOBILE),
        ("13401234567", MOBILE),
        ("17001234567", TELECOM),
        ("17031234567", MOBILE),
        ("17041234567", UNICOM),
        ("17091234567", UNICOM),
        ("17112345678", UNICOM),
        ("19212345678", BROADNET),
        ("19812345678", MOBILE),
        ("16212345678", TELECOM),
        ("16512345678", MOBILE),
        ("14101234567", TELECOM),
        ("14401234567", MOBILE),
        ("17401234567", TELECOM),
    ],
)
def test_guess_carrier_spot_checks(number: str, expected: Carrier) -> None:
    assert guess_carrier(number) is expected


def test_guess_carrier_accepts_any_normalisable_form() -> None:
    assert guess_carrier("+86 192 1234 5678") is BROADNET
    assert guess_carrier("１３４９１２３４５６７") is TELECOM
    assert guess_carrier(8613491234567) is TELECOM  # type: ignore[arg-type]


def test_guess_carrier_refuses_invalid_numbers() -> None:
    with pytest.raises(InvalidNumberError):
        guess_carrier("12345678901")
    with pytest.raises(InvalidNumberError):
        guess_carrier("")
    with pytest.raises(TypeError):
        guess_carrier(None)  # type: ignore[arg-type]


# ------------------------------------------------------------ properties

_ASCII_TO_FULL_WIDTH = {ord(str(i)): chr(0xFF10 + i) for i in range(10)}

valid_numbers = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)

separators = st.text(
    alphabet=" \t\u00a0\u3000\u2009\u200b\ufeff-\u2010\u2013\u2014\u2212\uff0d.\uff0e()\uff08\uff09",
    max_size=3,
)

country_codes = st.sampled_from(
    ["", "+86", "86", "0086", "＋８６", "＋86", "(+86)", "+86-", "00 86", "８６", "００８６"]
)


@st.composite
def formatted_numbers(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(valid_numbers)
    out = [draw(separators), draw(country_codes), draw(separators)]
    for digit in number:
        if draw(st.booleans()):
            digit = digit.translate(_ASCII_TO_FULL_WIDTH)
        out.append(digit)
        out.append(draw(separators))
    return number, "".join(out)


@given(formatted_numbers())
def test_formatted_numbers_normalise_back(case: tuple[str, str]) -> None:
    number, formatted = case
    assert normalize(formatted) == number
    assert is_valid(formatted)
    assert guess_carrier(formatted) is guess_carrier(number)


@given(valid_numbers)
def test_valid_int_normalises(number: str) -> None:
    assert normalize(int(number)) == number
    assert normalize(int("86" + number)) == number


_PROBE_ALPHABET = "0123456789０１２３４５６７８９+＋ -()．.\u3000٣x"


@given(st.text(alphabet=_PROBE_ALPHABET, max_size=20))
def test_normalize_result_or_invalid_number_error(text: str) -> None:
    try:
        result = normalize(text)
    except InvalidNumberError as exc:
        assert not is_valid(text)
        message = str(exc)
        if len(text) >= 8:
            assert text not in message
    else:
        assert CLEAN.fullmatch(result)
        assert is_valid(text)


@given(st.text())
def test_normalize_never_raises_anything_else_on_text(text: str) -> None:
    try:
        result = normalize(text)
    except InvalidNumberError:
        pass
    else:
        assert CLEAN.fullmatch(result)


@given(st.integers())
def test_normalize_int_result_or_invalid_number_error(value: int) -> None:
    try:
        result = normalize(value)
    except InvalidNumberError:
        assert not is_valid(value)
    else:
        assert CLEAN.fullmatch(result)
        assert str(value).endswith(result)
