"""Chinese mobile numbers: normalisation, validation, masking, carrier guess.

Every API call is billed, so anything that is not an 11-digit Chinese mobile
number (``1[3-9]`` + 9 digits) is refused here, before a request is built.

What :func:`normalize` accepts, and why it stops there:

* ``str``: ASCII digits and full-width digits ``０``-``９`` (IMEs produce
  them); a leading country code ``+86``, ``＋８６``, ``86`` (only when 13
  digits remain) or ``0086`` (only when 15 digits remain); separators anywhere:
  whitespace (incl. NBSP U+00A0, U+2000-U+200A, U+202F, U+205F, ideographic
  space U+3000), invisible characters that copy-paste carries along
  (zero-width U+200B-U+200D, U+2060, BOM U+FEFF, bidi marks U+200E/U+200F,
  U+202A-U+202E, U+2066-U+2069), dashes (``-``, U+2010-U+2015, U+2212,
  U+FE58, U+FE63, full-width ``－``), dots (``.``, ``．``) and parentheses
  (``()``, ``（）``).
* Other Unicode decimal digits (Arabic-Indic ``١``, Devanagari, ...) and
  digit-like characters (``²``, ``①``) are refused although ``int()`` and
  ``str.isdigit()`` accept some of them: they do not occur in genuine Chinese
  numbers and usually mean corrupted data, which should not be billed.
* ``int`` (spreadsheets and CSV readers turn numbers into ints): the same
  digit rules.  Integer types that register as :class:`numbers.Integral`
  (numpy's) are converted with :func:`operator.index`.
* ``bool``, ``float``, ``bytes``, ``None`` and every other type raise
  :class:`TypeError`.  ``bool`` is refused although it is an ``int``;
  ``float`` because a float cannot be trusted to hold a phone number (CSV
  readers give ``1.38e10`` or lose digits) -- read the column as text.

Error messages never contain the number in full: see :func:`mask`.
"""

from __future__ import annotations

import numbers as _numbers
import operator
import re

from mobilestatus.errors import InvalidNumberError
from mobilestatus.status import Carrier

__all__ = ["normalize", "is_valid", "mask", "guess_carrier"]

# The fast path: a plain, already clean number.  A bound fullmatch of a
# precompiled ASCII-only pattern is the cheapest exact test in CPython
# (``[0-9]`` rather than ``\d``, which would match any Unicode digit).
_is_clean = re.compile(r"1[3-9][0-9]{9}").fullmatch

_SEPARATORS = (
    # ASCII whitespace: trailing newlines and tabs come from files and cells.
    " \t\n\r\v\f"
    # Unicode spaces (NBSP from web pages, U+3000 from Chinese IMEs).
    "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000"
    # Invisible characters that phones and spreadsheets add when copying.
    "\u200b\u200c\u200d\u2060\ufeff"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    # Dashes: hyphen-minus, hyphen .. horizontal bar, minus sign, small and
    # full-width hyphen-minus.
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
    # Dots and parentheses, ASCII and full-width: "(+86) 138.0013.8000".
    ".\uff0e()\uff08\uff09"
)

_TRANSLATION: dict[int, str | None] = {ord(ch): None for ch in _SEPARATORS}
_TRANSLATION.update({0xFF10 + i: str(i) for i in range(10)})  # ０-９
_TRANSLATION[0xFF0B] = "+"  # ＋

# An int this large is refused before str() is called on it: str() of a
# huge int is slow and, beyond 4300 digits, raises ValueError.
_INT_LIMIT = 10**30

# mask(): how many asterisks at most replace the middle of a long string, so
# an error message about a megabyte of junk stays short.
_MAX_STARS = 16


def normalize(value: object) -> str:
    """Return the 11-digit national number of a Chinese mobile number.

    ``normalize("+86 138-0013-8000") == "13800138000"``; the accepted forms
    are listed in the module docstring.  An already clean ``str`` is returned
    as is (about a quarter of a microsecond).

    Raises :class:`~mobilestatus.errors.InvalidNumberError` (a
    :class:`ValueError`) when the value is a ``str`` or ``int`` that is not a
    Chinese mobile number -- the message shows the input masked and says why
    -- and :class:`TypeError` for any other type, ``bool`` included.
    """
    if type(value) is str:
        if _is_clean(value) is not None:
            return value
        return _normalize_text(value)
    return _normalize_other(value)


def is_valid(value: object) -> bool:
    """Tell whether :func:`normalize` would accept ``value``.  Never raises."""
    if type(value) is str and _is_clean(value) is not None:
        return True
    try:
        normalize(value)
    except (InvalidNumberError, TypeError):
        return False
    return True


def mask(number: str) -> str:
    """Hide the middle of a number for logs and messages.

    ``mask("13800138000") == "138****8000"``.  Any string is accepted (it is
    also used on invalid input): at most the first 3 and the last 4
    characters are shown, and fewer for strings shorter than 11 so that most
    of them stays hidden; strings shorter than 5 are all asterisks.  A long
    middle is replaced by at most 16 asterisks.
    """
    if not isinstance(number, str):
        raise TypeError(f"mask() expects a str, not {type(number).__name__}")
    length = len(number)
    if length >= 11:
        lead, trail = 3, 4
    elif length >= 5:
        # Show about a third, weighted towards the end (the last digits are
        # what people recognise a number by).
        shown = length // 3
        trail = (shown + 1) // 2
        lead = shown - trail
    else:
        return "*" * length
    stars = min(length - lead - trail, _MAX_STARS)
    return number[:lead] + "*" * stars + number[length - trail :]


def guess_carrier(number: str) -> Carrier:
    """Guess the original carrier of a number from its prefix, offline.

    Only the carrier the number was first issued by: since number
    portability (携号转网) a number may have moved to another carrier, which
    only the API's ``channel`` tells.  Prefixes missing from the table give
    :attr:`Carrier.UNKNOWN`.  ``number`` may be in any form :func:`normalize`
    accepts; an invalid one raises like :func:`normalize`.
    """
    if type(number) is not str or _is_clean(number) is None:
        number = normalize(number)
    carrier = _PREFIX4.get(number[:4])
    if carrier is None:
        carrier = _PREFIX3.get(number[:3], Carrier.UNKNOWN)
    return carrier


def _normalize_other(value: object) -> str:
    # bool first: it is an int subclass and True would read as 1.
    if isinstance(value, bool):
        raise TypeError("a phone number must be a str or an int, not bool")
    if isinstance(value, int):
        return _normalize_int(int(value))
    if isinstance(value, str):
        # A str subclass: normalise a plain copy so the result is a plain str
        # whatever the subclass overrides.
        return _normalize_text(str.__str__(value))
    if isinstance(value, _numbers.Integral):
        # numpy integer scalars; numpy.bool_ is not Integral, so stays out.
        return _normalize_int(operator.index(value))
    # The message names the type only: a float or bytes value would show the
    # number in full.
    hint = ""
    if isinstance(value, float):
        hint = " (read the column as text: a float may have lost digits)"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        hint = " (decode bytes first)"
    raise TypeError(
        f"a phone number must be a str or an int, not {type(value).__name__}{hint}"
    )


def _normalize_int(value: int) -> str:
    if value < 0:
        raise _invalid(str(value), "negative integer")
    if value >= _INT_LIMIT:
        raise InvalidNumberError(
            "not a Chinese mobile number: an integer of more than 30 digits"
        )
    text = str(value)
    digits = text
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return _check_national(digits, text)


def _normalize_text(text: str) -> str:
    cleaned = text.translate(_TRANSLATION)
    plus = cleaned.startswith("+")
    digits = cleaned[1:] if plus else cleaned
    if not digits:
        raise _invalid(text, "no digits")
    if not (digits.isascii() and digits.isdigit()):
        raise _invalid(text, _explain_bad_character(digits))
    if plus:
        if not digits.startswith("86"):
            raise _invalid(text, "a leading + must be followed by the country code 86")
        digits = digits[2:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    return _check_national(digits, text)


def _check_national(digits: str, original: str) -> str:
    if len(digits) != 11:
        raise _invalid(original, f"{len(digits)} digits, expected 11")
    if _is_clean(digits) is None:
        raise _invalid(original, "a mobile number starts with 13 to 19")
    return digits


def _explain_bad_character(digits: str) -> str:
    for char in digits:
        if "0" <= char <= "9":
            continue
        if char == "+":
            return "'+' is only allowed before the country code 86"
        if char.isdigit():
            return (
                f"non-ASCII digit U+{ord(char):04X}; "
                "only ASCII and full-width digits are accepted"
            )
        return f"unexpected character {char!r}"
    return "unexpected character"  # unreachable: the caller found one


def _invalid(original: str, reason: str) -> InvalidNumberError:
    return InvalidNumberError(
        f"not a Chinese mobile number: {mask(original)!r} ({reason})"
    )


# Prefix -> original carrier, from libphonenumber's resources/carrier/zh/86.txt
# and the MIIT allocations (2017: 198, 199; 2019: 190, 192, 196, 197), as
# collected in api-landscape.md section 4.2.  4-digit prefixes are looked up
# first, for the 3-digit blocks that are split between carriers (134, 170) or
# only partly allocated (141, 144).  Absent prefixes (140, 142, 143, 154, 160,
# 161, 163, 164, 168, 169, 179, 194, ...) give UNKNOWN rather than an error:
# allocations change faster than this table, and the API answers 999 for
# numbers that really are not on a Chinese network.
_PREFIXES: dict[Carrier, tuple[str, ...]] = {
    Carrier.CHINA_MOBILE: (
        "1340", "1341", "1342", "1343", "1344", "1345", "1346", "1347", "1348",
        "135", "136", "137", "138", "139",
        "1440", "147", "148",
        "150", "151", "152", "157", "158", "159",
        "165",  # MVNO
        "1703", "1705", "1706",  # MVNO
        "172", "178",
        "182", "183", "184", "187", "188",
        "195", "197", "198",
    ),
    Carrier.CHINA_UNICOM: (
        "130", "131", "132",
        "145", "146",
        "155", "156",
        "166", "167",  # 167: MVNO
        "1704", "1707", "1708", "1709", "171",  # MVNO
        "175", "176",
        "185", "186",
        "196",
    ),
    Carrier.CHINA_TELECOM: (
        "133", "1349",  # 1349: satellite phones
        "1410", "149",
        "153",
        "162",  # MVNO
        "1700", "1701", "1702",  # MVNO
        "173", "174", "177",
        "180", "181", "189",
        "190", "191", "193", "199",
    ),
    Carrier.CHINA_BROADNET: ("192",),
}  # fmt: skip

_PREFIX3: dict[str, Carrier] = {}
_PREFIX4: dict[str, Carrier] = {}
for _carrier, _prefixes in _PREFIXES.items():
    for _prefix in _prefixes:
        _table = _PREFIX4 if len(_prefix) == 4 else _PREFIX3
        if _prefix in _table:  # pragma: no cover - guards edits of the table
            raise AssertionError(f"prefix {_prefix} listed twice")
        _table[_prefix] = _carrier
del _carrier, _prefixes, _prefix, _table
