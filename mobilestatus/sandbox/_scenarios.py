"""The sandbox's own "database": which number gets which answer.

Everything here is pure data and pure functions of the number, so the rules
can be read (and documented in ``docs/sandbox.md``) in one place.  The
server in :mod:`._server` only turns these decisions into bytes.

Rules, in the order they are applied to ``mobile``:

1. missing ``mobile`` → business error ``手机号不能为空``; not ``1[3-9]`` + 9
   digits → business error ``手机号格式错误`` (both HTTP 200, ``code`` 400);
2. a prefix (first 3 digits) not in :data:`CARRIER_BY_PREFIX` → business
   error ``不支持的号段``;
3. a scenario number, ``1390000`` + a 4-digit scenario code → that
   scenario (``5000``–``5999`` are slow answers).  Only prefix 139 makes
   scenario numbers, so that test numbers generated like ``f"138{i:08d}"``
   are all ordinary;
4. otherwise an ordinary number: the last digit gives the status
   (:data:`STATUS_BY_LAST_DIGIT`), digits 4–7 the province and city.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = [
    "API_PATH",
    "CARRIER_BY_PREFIX",
    "FAULTS",
    "REGIONS",
    "SCENARIOS",
    "SCENARIO_CODES",
    "SCENARIO_PREFIX",
    "ORDINARY_NAMES",
    "SLOW_BASE",
    "SLOW_DEFAULT",
    "STATUS_BY_LAST_DIGIT",
    "CONNECTION_FAULTS",
    "GatewayError",
    "GATEWAY_ERRORS",
    "classify",
]

API_PATH: Final = "/api-mall/api/mobile_status/check"

NUMBER_RE: Final = re.compile(r"1[3-9][0-9]{9}")

# --------------------------------------------------------------------------
# Carriers by 3-digit prefix (original carrier only, like the real thing).

_PREFIXES: Final[dict[str, str]] = {
    "移动": "134 135 136 137 138 139 147 150 151 152 157 158 159 165 172 "
    "178 182 183 184 187 188 195 197 198",
    "联通": "130 131 132 145 155 156 166 167 171 175 176 185 186 196",
    "电信": "133 149 153 162 173 174 177 180 181 189 190 191 193 199",
    "广电": "192",
}

CARRIER_BY_PREFIX: Final[dict[str, str]] = {
    prefix: carrier
    for carrier, prefixes in _PREFIXES.items()
    for prefix in prefixes.split()
}

# --------------------------------------------------------------------------
# Province and city: REGIONS[int(digits 4-7) % 32].  Index 13 is 北京 so
# that the seed's sample 13800138000 ("0013") answers 北京/北京.

REGIONS: Final[tuple[tuple[str, str], ...]] = (
    ("上海", "上海"), ("广东", "广州"), ("广东", "深圳"), ("浙江", "杭州"),
    ("江苏", "南京"), ("江苏", "苏州"), ("四川", "成都"), ("湖北", "武汉"),
    ("山东", "济南"), ("山东", "青岛"), ("河南", "郑州"), ("湖南", "长沙"),
    ("福建", "厦门"), ("北京", "北京"), ("天津", "天津"), ("重庆", "重庆"),
    ("陕西", "西安"), ("辽宁", "沈阳"), ("辽宁", "大连"), ("黑龙江", "哈尔滨"),
    ("吉林", "长春"), ("河北", "石家庄"), ("山西", "太原"), ("安徽", "合肥"),
    ("江西", "南昌"), ("广西", "南宁"), ("云南", "昆明"), ("贵州", "贵阳"),
    ("海南", "海口"), ("甘肃", "兰州"), ("新疆", "乌鲁木齐"), ("内蒙古", "呼和浩特"),
)

# --------------------------------------------------------------------------
# Ordinary numbers: status by last digit -> (data.result, data.resultMsg).

STATUS_BY_LAST_DIGIT: Final[tuple[tuple[str, str], ...]] = (
    ("1", "正常"),  # 0
    ("1", "正常"),  # 1
    ("1", "正常"),  # 2
    ("1", "正常"),  # 3
    ("1", "正常"),  # 4
    ("2", "停机"),  # 5
    ("0", "销号或未启用"),  # 6
    ("3", "在网但不可用"),  # 7
    ("4", "预销号"),  # 8
    ("5", "关机"),  # 9
)

# --------------------------------------------------------------------------
# Gateway errors: the marketplace gateway's own answers (empty body, reason
# in headers).


class GatewayError(NamedTuple):
    status: int
    message: str
    code: str | None = None
    retry_after: str | None = None


GATEWAY_ERRORS: Final[dict[str, GatewayError]] = {
    "invalid_appcode": GatewayError(400, "Invalid AppCode `not exists`", "A400AC"),
    "unauthorized": GatewayError(403, "Unauthorized"),
    "quota_exhausted": GatewayError(403, "Quota Exhausted"),
    "quota_expired": GatewayError(403, "Quota Expired"),
    "user_arrears": GatewayError(403, "User Arrears"),
    "authorization_expired": GatewayError(403, "Expiry of Authorization"),
    "throttled_user": GatewayError(403, "Throttled by USER Flow Control"),
    "throttled_api": GatewayError(403, "Throttled by API Flow Control"),
    "invalid_url": GatewayError(400, "Invalid Url"),
    "internal_error": GatewayError(500, "Internal Error"),
    "backend_failed": GatewayError(500, "Failed To Invoke Backend Service"),
    "service_unavailable": GatewayError(503, "Service Unavailable", None, "1"),
    "async_service": GatewayError(504, "Async Service"),
    # F14: a throttle that also carries X-Ca-Error-Code.  No public copy of
    # the VPC-instance code for flow control was found, so the sandbox sends
    # a placeholder of the right shape: clients must not depend on knowing
    # every code and must fall back to the message.
    "throttled": GatewayError(403, "Throttled by USER Flow Control", "S403FC"),
    # Request shape problems found by the sandbox's own parser.
    "body_too_large": GatewayError(413, "Request body too Large", "I413RL"),
    "bad_request": GatewayError(400, "Invalid Request"),
}

# --------------------------------------------------------------------------
# Scenario codes: the last 4 digits of a scenario number 1390000xxxx.

SCENARIO_CODES: Final[dict[int, str]] = {
    # 0xxx: data answers (HTTP 200)
    999: "not_this_network",
    7: "unknown_code",
    1: "numeric_result",
    400: "business_error",
    3: "data_null",
    4: "extra_fields",
    # 1xxx: gateway errors
    1400: "invalid_appcode",
    1403: "unauthorized",
    1410: "quota_exhausted",
    1411: "quota_expired",
    1412: "user_arrears",
    1413: "authorization_expired",
    1420: "throttled_user",
    1421: "throttled_api",
    1440: "invalid_url",
    1500: "internal_error",
    1501: "backend_failed",
    1503: "service_unavailable",
    1504: "async_service",
    # 2xxx: odd HTTP answers
    2000: "malformed_json",
    2001: "oversized",
    2502: "bad_gateway_html",
    2429: "too_many_requests",
    2302: "redirect_same",
    2303: "redirect_other",
    2304: "redirect_scheme",
    # 3xxx: transport faults, the F-set of reliability-anchors §6
    3001: "refused",
    3002: "tarpit",
    3003: "no_response",
    3004: "stall_body",
    3005: "short_body",
    3006: "reset_body",
    3007: "chunked_eof",
    3008: "bad_chunk",
    3009: "empty_reply",
    3010: "garbage_status",
    3011: "huge_headers",
    3012: "endless_body",
    3013: "html_5xx",
    3014: "throttled",
    3016: "keepalive_close",
    3017: "keepalive_race",
    3018: "bad_header",
}

SLOW_BASE: Final = 5000
"""Codes 5000-5999: the last digit's ordinary answer after (code-5000)*10 ms."""

SLOW_DEFAULT: Final = 1.0
"""Seconds a ``slow`` answer waits when chosen by URL or percentage."""

SCENARIO_PREFIX: Final = "1390000"
"""Scenario numbers are this prefix plus a 4-digit scenario code."""

SCENARIOS: Final[dict[str, str]] = {
    # ordinary numbers, one per status
    "normal": "13800138000",
    "suspended": "13800138005",
    "cancelled": "13800138006",
    "unusable": "13800138007",
    "pending_cancellation": "13800138008",
    "powered_off": "13800138009",
    # a prefix the sandbox's database does not know
    "unsupported_prefix": "14000138000",
    **{
        name: f"{SCENARIO_PREFIX}{code:04d}"
        for code, name in SCENARIO_CODES.items()
    },
    "slow": f"{SCENARIO_PREFIX}{SLOW_BASE + 100:04d}",  # 1 s
}
"""Scenario name → an 11-digit number that triggers it."""

CONNECTION_FAULTS: Final = frozenset({"refused", "tarpit"})
"""Faults that act on a TCP connection before any byte is read."""

FAULTS: Final[frozenset[str]] = frozenset(SCENARIOS) - {"unsupported_prefix"}
"""Names accepted by ``Sandbox(faults=...)`` and ``Sandbox.url(fault=...)``."""


class Decision(NamedTuple):
    """What :func:`classify` found for a ``mobile`` value.

    ``error``: the business error message for a missing, malformed or
    unsupported number; ``scenario``: the scenario of a scenario number
    (None for an ordinary number); ``delay``: extra seconds (slow codes).
    """

    scenario: str | None
    delay: float
    error: str | None  # business error message, if any


ORDINARY_NAMES: Final[tuple[str, ...]] = (
    "normal", "normal", "normal", "normal", "normal",
    "suspended", "cancelled", "unusable", "pending_cancellation", "powered_off",
)


def classify(mobile: str | None) -> Decision:
    """Apply the number rules (module docstring) to a ``mobile`` value."""
    if not mobile:
        return Decision(None, 0.0, "手机号不能为空")
    if NUMBER_RE.fullmatch(mobile) is None:
        return Decision(None, 0.0, "手机号格式错误")
    if mobile[:3] not in CARRIER_BY_PREFIX:
        return Decision(None, 0.0, "不支持的号段")
    if mobile.startswith(SCENARIO_PREFIX):
        code = int(mobile[7:])
        name = SCENARIO_CODES.get(code)
        if name is not None:
            return Decision(name, 0.0, None)
        if SLOW_BASE <= code < SLOW_BASE + 1000:
            return Decision("slow", (code - SLOW_BASE) / 100.0, None)
    return Decision(None, 0.0, None)


def ordinary_name(mobile: str) -> str:
    """The status scenario name of an ordinary, valid number."""
    return ORDINARY_NAMES[ord(mobile[10]) - 48]


def region(mobile: str) -> tuple[str, str]:
    """(province, city) of a valid number, from digits 4-7."""
    return REGIONS[int(mobile[3:7]) % len(REGIONS)]
