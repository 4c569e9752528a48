"""Result types: one checked number, and the outcomes of a batch.

Written by hand rather than with ``dataclasses`` and ``typing`` at run
time: both cost more to import (~13 ms) than the whole rest of the package,
and ``import mobilestatus`` is paid by every web worker and notebook.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from .errors import MobileStatusError
from .status import Carrier, Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, overload

    import pandas

__all__ = ["CheckResult", "Outcome", "BatchResult"]

_FIELDS = (
    "number",
    "status",
    "raw_status",
    "carrier",
    "province",
    "city",
    "order_no",
    "request_id",
    "message",
)


class CheckResult:
    """The upstream's answer for one number (immutable, hashable).

    ``raw_status`` is ``data.result`` exactly as sent (a string), kept so
    that an UNKNOWN status can still be read; ``order_no`` stays a string
    (21 digits do not survive a float).
    """

    __slots__ = _FIELDS
    __match_args__ = (
        "number",
        "status",
        "raw_status",
        "carrier",
        "province",
        "city",
        "order_no",
        "request_id",
        "message",
    )

    number: str
    status: Status
    raw_status: str
    carrier: Carrier
    province: str | None
    city: str | None
    order_no: str | None
    request_id: str | None
    message: str | None

    def __init__(
        self,
        number: str,
        status: Status,
        raw_status: str,
        carrier: Carrier,
        province: str | None = None,
        city: str | None = None,
        order_no: str | None = None,
        request_id: str | None = None,
        message: str | None = None,
    ) -> None:
        # The slots' own setters (bound below the class): __setattr__
        # refuses, and object.__setattr__ by name costs twice as much on
        # a path every check takes.
        _set_number(self, number)
        _set_status(self, status)
        _set_raw_status(self, raw_status)
        _set_carrier(self, carrier)
        _set_province(self, province)
        _set_city(self, city)
        _set_order_no(self, order_no)
        _set_request_id(self, request_id)
        _set_message(self, message)

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CheckResult is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CheckResult is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckResult):
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"CheckResult({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CheckResult, self._astuple())

    def asdict(self) -> dict[str, Any]:
        """The fields as a dict (enums kept as members)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def ok(self) -> bool:
        """Always True: a result is never an error (see :class:`BatchResult`)."""
        return True


def _slot_setter(name: str) -> Callable[[CheckResult, Any], None]:
    setter: Callable[[CheckResult, Any], None] = CheckResult.__dict__[name].__set__
    return setter


_set_number = _slot_setter("number")
_set_status = _slot_setter("status")
_set_raw_status = _slot_setter("raw_status")
_set_carrier = _slot_setter("carrier")
_set_province = _slot_setter("province")
_set_city = _slot_setter("city")
_set_order_no = _slot_setter("order_no")
_set_request_id = _slot_setter("request_id")
_set_message = _slot_setter("message")


Outcome = CheckResult | MobileStatusError


class BatchResult(Sequence[Outcome]):
    """Exactly one outcome per input, in input order: a :class:`CheckResult`
    or the :class:`~mobilestatus.MobileStatusError` for that input."""

    __slots__ = ("_outcomes", "_inputs", "calls")

    def __init__(
        self, outcomes: list[Outcome], inputs: list[Any], calls: int = 0
    ) -> None:
        self._outcomes = outcomes
        self._inputs = inputs
        #: HTTP requests spent on the batch, retries included.
        self.calls = calls

    if TYPE_CHECKING:

        @overload
        def __getitem__(self, index: int) -> Outcome: ...

        @overload
        def __getitem__(self, index: slice) -> list[Outcome]: ...

    def __getitem__(self, index: int | slice) -> Outcome | list[Outcome]:
        return self._outcomes[index]

    def __len__(self) -> int:
        return len(self._outcomes)

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self._outcomes)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.counts().items()))
        return f"<BatchResult {len(self)} outcomes: {counts}>"

    @property
    def results(self) -> list[CheckResult]:
        """The successful checks, in input order."""
        return [o for o in self._outcomes if isinstance(o, CheckResult)]

    @property
    def errors(self) -> list[tuple[int, MobileStatusError]]:
        """(input position, error) for every failed input."""
        return [
            (i, o) for i, o in enumerate(self._outcomes) if isinstance(o, MobileStatusError)
        ]

    def counts(self) -> collections.Counter[str]:
        """How many outcomes of each status name and error class name."""
        return collections.Counter(
            o.status.name if isinstance(o, CheckResult) else type(o).__name__
            for o in self._outcomes
        )

    def by_status(self) -> collections.Counter[Status]:
        return collections.Counter(
            o.status for o in self._outcomes if isinstance(o, CheckResult)
        )

    def by_error(self) -> collections.Counter[str]:
        return collections.Counter(
            type(o).__name__ for o in self._outcomes if isinstance(o, MobileStatusError)
        )

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame with one row per input: ``input``, ``number``,
        ``status``, ``raw_status``, ``carrier``, ``province``, ``city``,
        ``order_no``, ``request_id``, ``error``."""
        import pandas  # only imported when used: it costs ~300 ms

        rows = [_row(value, outcome) for value, outcome in zip(self._inputs, self._outcomes)]
        return pandas.DataFrame.from_records(rows, columns=list(_COLUMNS))


_COLUMNS = (
    "input",
    "number",
    "status",
    "raw_status",
    "carrier",
    "province",
    "city",
    "order_no",
    "request_id",
    "error",
)


def _row(value: Any, outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, CheckResult):
        return {
            "input": value,
            "number": outcome.number,
            "status": outcome.status.name,
            "raw_status": outcome.raw_status,
            "carrier": outcome.carrier.name,
            "province": outcome.province,
            "city": outcome.city,
            "order_no": outcome.order_no,
            "request_id": outcome.request_id,
            "error": None,
        }
    return {
        "input": value,
        "number": None,
        "status": None,
        "raw_status": None,
        "carrier": None,
        "province": None,
        "city": None,
        "order_no": None,
        "request_id": outcome.request_id,
        "error": f"{type(outcome).__name__}: {outcome.message}",
    }
