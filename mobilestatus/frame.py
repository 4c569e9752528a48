"""pandas integration; pandas is imported only when a frame is checked."""

from __future__ import annotations

from ._types import CheckResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pandas

    from .client import Client, ProgressCallback

__all__ = ["check_frame"]


def check_frame(
    df: pandas.DataFrame,
    column: str = "mobile",
    *,
    client: Client,
    concurrency: int = 16,
    rate_limit: float | None = None,
    progress: bool | ProgressCallback = False,
) -> pandas.DataFrame:
    """Return a copy of ``df`` with every row kept, in order, plus the
    columns ``status``, ``carrier``, ``province``, ``city`` and ``error``.

    Rows whose number is invalid or whose check failed get ``status``
    None and the error's class and message in ``error``.
    """
    if column not in df.columns:
        raise KeyError(f"no column {column!r} in the frame")
    batch = client.check_many(
        df[column].tolist(),
        concurrency=concurrency,
        rate_limit=rate_limit,
        progress=progress,
    )
    status: list[Any] = []
    carrier: list[Any] = []
    province: list[Any] = []
    city: list[Any] = []
    error: list[Any] = []
    for outcome in batch:
        if isinstance(outcome, CheckResult):
            status.append(outcome.status.name)
            carrier.append(outcome.carrier.name)
            province.append(outcome.province)
            city.append(outcome.city)
            error.append(None)
        else:
            status.append(None)
            carrier.append(None)
            province.append(None)
            city.append(None)
            error.append(f"{type(outcome).__name__}: {outcome.message}")
    out = df.copy()
    out["status"] = status
    out["carrier"] = carrier
    out["province"] = province
    out["city"] = city
    out["error"] = error
    return out
