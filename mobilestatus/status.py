"""The line status reported by the upstream API, and the mobile carriers.

:class:`Status` mirrors the integer codes of ``data.result`` in the kuaizheng
``mobile_status/check`` answer (0, 1, 2, 3, 999 in the seed documentation, plus
4 and 5 that the same upstream returns when resold by other marketplaces).
:class:`Carrier` names the four Chinese mobile network operators.

Both enums are deliberately tolerant on input (:meth:`Status.from_raw`,
:meth:`Carrier.from_channel` never raise) because they parse text that comes
from a third-party API: an unexpected value must degrade to ``UNKNOWN``, never
crash a batch of a million numbers half way through.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "Carrier"]


class Status(enum.IntEnum):
    """Status of a mobile number as reported by the carrier.

    The values are the vendor's codes, so ``Status(1) is Status.NORMAL`` and
    ``int(status)`` gives the code back.  Use :meth:`from_raw` on data from the
    API: it never raises.

    ``str()`` gives the member name (``"NORMAL"``); ``format()`` gives the name
    too, except with an integer presentation type (``f"{s:d}"``, ``f"{s:03d}"``)
    which formats the code.  This is pinned here rather than inherited because
    the inherited behaviour of ``IntEnum.__str__``/``__format__`` changed
    between Python 3.8, 3.11 and 3.12.
    """

    #: A code this version does not know; the caller keeps the raw value.
    UNKNOWN = -1
    #: 销号或未启用: cancelled, or never activated.
    CANCELLED = 0
    #: 正常: in service.
    NORMAL = 1
    #: 停机: suspended (arrears, reported lost, ...).
    SUSPENDED = 2
    #: 在网但不可用: in the network but unusable.
    UNAVAILABLE = 3
    #: 预销号: pending cancellation.
    PRE_CANCELLED = 4
    #: 关机: powered off.
    POWERED_OFF = 5
    #: 非本网手机号码: not a mobile number of a Chinese network (per the carrier).
    NOT_THIS_NETWORK = 999

    @property
    def label_zh(self) -> str:
        """The Chinese label, as the upstream documents it (e.g. ``"正常"``)."""
        return _STATUS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        """An English label (e.g. ``"Normal"``)."""
        return _STATUS_LABELS[self][1]

    @classmethod
    def from_raw(cls, raw: str | int | float | bool | None) -> Status:
        """Map a raw ``data.result`` value to a :class:`Status`.

        Accepts the code as an ``int`` or as a string of ASCII digits
        (surrounding whitespace allowed): ``"1"``, ``1``, ``" 1 "``, ``"999"``.
        Everything else -- ``None``, ``""``, ``"abc"``, an unknown code such as
        ``7``, ``"1.5"``, ``True``, floats, huge integers, other types -- is
        :attr:`UNKNOWN`.  Never raises.

        Floats are refused even when integral (``1.0``): a status code is an
        identifier, not a quantity, so a float means the answer was not what
        this version expects, and UNKNOWN (with the raw value kept by the
        caller) is the safe reading for a lender.
        """
        if raw.__class__ is str:  # the usual answer: "1", exactly
            found = _STATUS_BY_TEXT.get(raw)
            if found is not None:
                return found
        # bool is an int subclass: True would otherwise read as NORMAL.
        if isinstance(raw, bool):
            return cls.UNKNOWN
        if isinstance(raw, int):
            return _STATUS_BY_CODE.get(int(raw), cls.UNKNOWN)
        if isinstance(raw, str):
            text = raw.strip()
            # The length cap keeps int() cheap and away from its
            # digit-count limit; no known code has more than 3 digits.
            # isascii() refuses full-width and other Unicode digits, which
            # int() would accept silently.
            if 0 < len(text) <= 9 and text.isascii() and text.isdigit():
                return _STATUS_BY_CODE.get(int(text), cls.UNKNOWN)
        return cls.UNKNOWN

    def __str__(self) -> str:
        return self.name

    def __format__(self, format_spec: str) -> str:
        if format_spec and format_spec[-1] in _INT_PRESENTATION_TYPES:
            return int.__format__(int(self), format_spec)
        return format(self.name, format_spec)


# Integer presentation types of the format mini-language; any other spec
# (empty, or only fill/align/width) formats the name.
_INT_PRESENTATION_TYPES = frozenset("bcdoxXneEfFgG%")

_STATUS_BY_CODE: dict[int, Status] = {int(member): member for member in Status}
_STATUS_BY_TEXT: dict[str, Status] = {str(int(member)): member for member in Status}

_STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.UNKNOWN: ("未知", "Unknown"),
    Status.CANCELLED: ("销号或未启用", "Cancelled or never activated"),
    Status.NORMAL: ("正常", "Normal"),
    Status.SUSPENDED: ("停机", "Suspended"),
    Status.UNAVAILABLE: ("在网但不可用", "In network but unavailable"),
    Status.PRE_CANCELLED: ("预销号", "Pending cancellation"),
    Status.POWERED_OFF: ("关机", "Powered off"),
    Status.NOT_THIS_NETWORK: ("非本网手机号码", "Not a mobile number of this network"),
}


class Carrier(enum.Enum):
    """A Chinese mobile network operator.

    The values are the operators' usual abbreviations (``"CMCC"``, ``"CUCC"``,
    ``"CTCC"``, ``"CBN"``), as used by Alibaba's 号码百科 and by 数脉.
    ``str()`` and ``format()`` give the member name (``"CHINA_MOBILE"``).
    """

    CHINA_MOBILE = "CMCC"
    CHINA_UNICOM = "CUCC"
    CHINA_TELECOM = "CTCC"
    CHINA_BROADNET = "CBN"
    UNKNOWN = "UNKNOWN"

    @property
    def label_zh(self) -> str:
        """The short Chinese name the API uses in ``channel`` (``"移动"``)."""
        return _CARRIER_LABELS[self][0]

    @property
    def label_en(self) -> str:
        """The English name (``"China Mobile"``)."""
        return _CARRIER_LABELS[self][1]

    @classmethod
    def from_channel(cls, text: str | None) -> Carrier:
        """Map the API's ``channel`` text to a :class:`Carrier`.

        Accepts 移动/中国移动, 联通/中国联通, 电信/中国电信, 广电/中国广电 and
        CMCC/CUCC/CTCC/CBN in any case, with surrounding whitespace.  Anything
        else (including ``None`` and non-strings) is :attr:`UNKNOWN`.  Never
        raises.
        """
        if not isinstance(text, str):
            return cls.UNKNOWN
        # upper() only matters for the ASCII codes; Chinese is unaffected.
        return _CARRIER_BY_CHANNEL.get(text.strip().upper(), cls.UNKNOWN)

    def __str__(self) -> str:
        return self.name

    def __format__(self, format_spec: str) -> str:
        return format(self.name, format_spec)


_CARRIER_LABELS: dict[Carrier, tuple[str, str]] = {
    Carrier.CHINA_MOBILE: ("移动", "China Mobile"),
    Carrier.CHINA_UNICOM: ("联通", "China Unicom"),
    Carrier.CHINA_TELECOM: ("电信", "China Telecom"),
    Carrier.CHINA_BROADNET: ("广电", "China Broadnet"),
    Carrier.UNKNOWN: ("未知", "Unknown"),
}

_CARRIER_BY_CHANNEL: dict[str, Carrier] = {}
for _carrier, (_zh, _en) in _CARRIER_LABELS.items():
    if _carrier is Carrier.UNKNOWN:
        continue
    _CARRIER_BY_CHANNEL[_zh] = _carrier
    _CARRIER_BY_CHANNEL["中国" + _zh] = _carrier
    _CARRIER_BY_CHANNEL[_carrier.value] = _carrier
del _carrier, _zh, _en
