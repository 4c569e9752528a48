"""The package logger, created on first use.

``logging`` costs ~5 ms to import and is only needed when something is
logged (retries and failures at INFO/DEBUG), so it is not paid at
``import mobilestatus``.  Every message passes numbers through
:func:`mobilestatus.numbers.mask` and never holds the AppCode.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

_logger: logging.Logger | None = None


def logger() -> logging.Logger:
    global _logger
    if _logger is None:
        import logging

        _logger = logging.getLogger("mobilestatus")
    return _logger
