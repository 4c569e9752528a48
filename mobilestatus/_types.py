"""Result types: one checked number, and the outcomes of a batch."""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING, Any, Iterator, Sequence, Union, overload

from .errors import MobileStatusError
from .status import Carrier, Status

if TYPE_CHECKING:
    import pandas

__all__ = ["CheckResult", "Outcome", "BatchResult"]


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    """The upstream's answer for one number.

    ``raw_status`` is ``data.result`` exactly as sent (a string), kept so
    that an UNKNOWN status can still be read; ``order_no`` stays a string
    (21 digits do not survive a float).
    """

    number: str
    status: Status
    raw_status: str
    carrier: Carrier
    province: str | None = None
    city: str | None = None
    order_no: str | None = None
    request_id: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        """Always True: a result is never an error (see :class:`BatchResult`)."""
        return True


Outcome = Union[CheckResult, MobileStatusError]


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
