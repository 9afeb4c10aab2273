"""Keep failures inside instrumentation away from the host service.

A processor that fails must not raise into the application, and must not flood
its logs either: the first failure of each kind is logged with its traceback,
later ones are only counted. ``failure_counts()`` exposes the counts so tests
and the demo can show them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

__all__ = ["failure_counts", "record_failure", "reset_failures"]

_logger = logging.getLogger(__name__)

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def record_failure(where: str, exc: BaseException) -> None:
    """Count a failure at ``where``; log it the first time only.

    Args:
        where: a short, stable name for the failing step, e.g. ``"span.classify"``.
        exc: the exception that was caught.
    """
    with _lock:
        _counts[where] += 1
        first = _counts[where] == 1

    if first:
        _logger.error(
            "Failure in %s; later failures here are counted, not logged",
            where,
            exc_info=(type(exc), exc, exc.__traceback__),
        )


def failure_counts() -> dict[str, int]:
    """Return a snapshot of the failure counts by step."""
    with _lock:
        return dict(_counts)


def reset_failures() -> None:
    """Forget all counts (for tests)."""
    with _lock:
        _counts.clear()
