"""Unit tests of mobilestatus.status (pure Python, no network)."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilestatus.status import Carrier, Status

# ---------------------------------------------------------------- Status

EXPECTED_CODES = {
    Status.UNKNOWN: -1,
    Status.CANCELLED: 0,
    Status.NORMAL: 1,
    Status.SUSPENDED: 2,
    Status.UNAVAILABLE: 3,
    Status.PRE_CANCELLED: 4,
    Status.POWERED_OFF: 5,
    Status.NOT_THIS_NETWORK: 999,
}

EXPECTED_STATUS_LABELS = {
    Status.UNKNOWN: ("未知", "Unknown"),
    Status.CANCELLED: ("销号或未启用", "Cancelled or never activated"),
    Status.NORMAL: ("正常", "Normal"),
    Status.SUSPENDED: ("停机", "Suspended"),
    Status.UNAVAILABLE: ("在网但不可用", "In network but unavailable"),
    Status.PRE_CANCELLED: ("预销号", "Pending cancellation"),
    Status.POWERED_OFF: ("关机", "Powered off"),
    Status.NOT_THIS_NETWORK: ("非本网手机号码", "Not a mobile number of this network"),
}


def test_status_members_and_codes_are_the_contract() -> None:
    assert {member: int(member) for member in Status} == EXPECTED_CODES
    assert len(Status) == len(EXPECTED_CODES)


def test_status_is_an_int() -> None:
    assert Status.NORMAL == int("1")  # a plain int compares equal
    assert Status(999) is Status.NOT_THIS_NETWORK
    assert isinstance(Status.NORMAL, int)


@pytest.mark.parametrize("member", list(Status))
def test_status_labels(member: Status) -> None:
    assert (member.label_zh, member.label_en) == EXPECTED_STATUS_LABELS[member]


@pytest.mark.parametrize("member", [m for m in Status if m is not Status.UNKNOWN])
@pytest.mark.parametrize(
    "spell", [int, str, lambda c: f" {c} ", lambda c: f"\t{c}\n", lambda c: f"0{c}"]
)
def test_from_raw_known_codes(member: Status, spell: Any) -> None:
    assert Status.from_raw(spell(int(member))) is member


@pytest.mark.parametrize(
    "raw",
    [
        "1",
        1,
        " 1 ",
        "\u30001\u3000",  # ideographic spaces are whitespace to str.strip()
        Status.NORMAL,
    ],
)
def test_from_raw_normal(raw: Any) -> None:
    assert Status.from_raw(raw) is Status.NORMAL


@pytest.mark.parametrize("raw", ["999", 999, " 999"])
def test_from_raw_not_this_network(raw: Any) -> None:
    assert Status.from_raw(raw) is Status.NOT_THIS_NETWORK


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "abc",
        "正常",  # a label is not a code
        7,
        6,
        998,
        1000,
        -2,
        "7",
        "1.5",
        "1.0",
        "1e0",
        "+1",
        "1 1",
        "0x1",
        "１",  # full-width digit: not a code the API sends
        "١",  # Arabic-Indic one, which int() would accept
        True,
        False,
        2**70,
        -(2**70),
        "9" * 5000,  # beyond int()'s digit limit: must not raise
        1.0,
        1.5,
        math.nan,
        math.inf,
        -math.inf,
        b"1",
        [1],
        {"result": 1},
        object(),
    ],
)
def test_from_raw_unknown(raw: Any) -> None:
    assert Status.from_raw(raw) is Status.UNKNOWN


def test_from_raw_minus_one_is_unknown_either_way() -> None:
    assert Status.from_raw(-1) is Status.UNKNOWN
    assert Status.from_raw("-1") is Status.UNKNOWN


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(),
        st.binary(),
    )
)
def test_from_raw_never_raises(raw: Any) -> None:
    result = Status.from_raw(raw)
    assert isinstance(result, Status)
    if isinstance(raw, bool) or isinstance(raw, (float, bytes)) or raw is None:
        assert result is Status.UNKNOWN


@given(st.integers())
def test_from_raw_int_matches_known_codes(raw: int) -> None:
    expected = next((m for m in Status if int(m) == raw), Status.UNKNOWN)
    assert Status.from_raw(raw) is expected
    assert Status.from_raw(str(raw)) is (expected if raw >= 0 else Status.UNKNOWN)


def test_status_str_repr_format() -> None:
    assert str(Status.NORMAL) == "NORMAL"
    assert repr(Status.NORMAL) == "<Status.NORMAL: 1>"
    assert f"{Status.SUSPENDED}" == "SUSPENDED"
    assert format(Status.SUSPENDED) == "SUSPENDED"
    assert f"{Status.SUSPENDED:>11}" == "  SUSPENDED"
    assert f"{Status.SUSPENDED:<11}|" == "SUSPENDED  |"
    assert f"{Status.NOT_THIS_NETWORK:d}" == "999"
    assert f"{Status.NORMAL:03d}" == "001"
    assert f"{Status.UNKNOWN:d}" == "-1"
    assert "{:x}".format(Status.NOT_THIS_NETWORK) == "3e7"
    assert "%d" % Status.NORMAL == "1"
    assert "%s" % Status.NORMAL == "NORMAL"


def test_status_pickles() -> None:
    # Results cross process pools.
    for member in Status:
        assert pickle.loads(pickle.dumps(member)) is member


# ---------------------------------------------------------------- Carrier

EXPECTED_CARRIERS = {
    Carrier.CHINA_MOBILE: ("CMCC", "移动", "China Mobile"),
    Carrier.CHINA_UNICOM: ("CUCC", "联通", "China Unicom"),
    Carrier.CHINA_TELECOM: ("CTCC", "电信", "China Telecom"),
    Carrier.CHINA_BROADNET: ("CBN", "广电", "China Broadnet"),
    Carrier.UNKNOWN: ("UNKNOWN", "未知", "Unknown"),
}


@pytest.mark.parametrize("member", list(Carrier))
def test_carrier_value_and_labels(member: Carrier) -> None:
    assert (member.value, member.label_zh, member.label_en) == EXPECTED_CARRIERS[member]


def test_carrier_members_are_the_contract() -> None:
    assert set(Carrier) == set(EXPECTED_CARRIERS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("移动", Carrier.CHINA_MOBILE),
        ("中国移动", Carrier.CHINA_MOBILE),
        ("联通", Carrier.CHINA_UNICOM),
        ("中国联通", Carrier.CHINA_UNICOM),
        ("电信", Carrier.CHINA_TELECOM),
        ("中国电信", Carrier.CHINA_TELECOM),
        ("广电", Carrier.CHINA_BROADNET),
        ("中国广电", Carrier.CHINA_BROADNET),
        ("CMCC", Carrier.CHINA_MOBILE),
        ("cmcc", Carrier.CHINA_MOBILE),
        ("Cmcc", Carrier.CHINA_MOBILE),
        ("CUCC", Carrier.CHINA_UNICOM),
        ("cucc", Carrier.CHINA_UNICOM),
        ("CTCC", Carrier.CHINA_TELECOM),
        ("ctcc", Carrier.CHINA_TELECOM),
        ("CBN", Carrier.CHINA_BROADNET),
        ("cbn", Carrier.CHINA_BROADNET),
        (" 移动 ", Carrier.CHINA_MOBILE),
        ("\u3000联通\n", Carrier.CHINA_UNICOM),
        (" ctcc\t", Carrier.CHINA_TELECOM),
    ],
)
def test_from_channel_known(text: str, expected: Carrier) -> None:
    assert Carrier.from_channel(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "  ",
        "未知",
        "UNKNOWN",
        "移动虚拟",
        "中国移动通信",
        "China Mobile",
        "CMC",
        "CMCC1",
        "中 国移动",
        "移",
        1,
        b"CMCC",
        Carrier.CHINA_MOBILE,
    ],
)
def test_from_channel_unknown(text: Any) -> None:
    assert Carrier.from_channel(text) is Carrier.UNKNOWN


@given(st.text())
def test_from_channel_never_raises(text: str) -> None:
    assert isinstance(Carrier.from_channel(text), Carrier)


def test_carrier_str_repr_format() -> None:
    assert str(Carrier.CHINA_MOBILE) == "CHINA_MOBILE"
    assert repr(Carrier.CHINA_MOBILE) == "<Carrier.CHINA_MOBILE: 'CMCC'>"
    assert f"{Carrier.CHINA_UNICOM}" == "CHINA_UNICOM"
    assert f"{Carrier.CHINA_BROADNET:>15}" == " CHINA_BROADNET"
    assert Carrier("CTCC") is Carrier.CHINA_TELECOM


def test_carrier_pickles() -> None:
    for member in Carrier:
        assert pickle.loads(pickle.dumps(member)) is member
