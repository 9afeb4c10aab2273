"""Rate-limit repeats of one crash so a crash storm cannot flood the pipeline.

Each fingerprint has a token bucket holding up to ``per_minute`` tokens and
refilled at ``per_minute / 60`` tokens a second; a report spends one token. A
repeat that finds the bucket empty is suppressed and counted; the count rides
on the next report of that fingerprint that goes through
(``healthai.crash.repeats``). The table of buckets is bounded (least recently
used fingerprints are evicted); counts of evicted buckets are kept as a total,
which the reporter's shutdown summary reports as one aggregate without a
fingerprint.
A storm of more distinct fingerprints than the table holds would defeat the
per-fingerprint buckets, so one more bucket, shared by all, bounds the total.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Admission", "FingerprintRateLimiter"]


@dataclass(frozen=True)
class Admission:
    """The decision for one report.

    Attributes:
        allowed: whether the report may be emitted.
        repeats: suppressed repeats of this fingerprint since its last emitted
            report (to be reported with this one when allowed).
    """

    allowed: bool
    repeats: int


class _Bucket:
    __slots__ = ("suppressed", "tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated
        self.suppressed = 0


class FingerprintRateLimiter:
    """Token bucket per fingerprint, in a bounded LRU table.

    Args:
        per_minute: reports allowed per fingerprint per minute (also the burst).
        max_fingerprints: size of the table; memory is O(max_fingerprints).
        total_per_minute: reports allowed per minute over all fingerprints
            (also the burst); default ``10 * per_minute``.
        clock: monotonic time in seconds (injectable for tests).

    Raises:
        ValueError: ``per_minute`` or ``max_fingerprints`` is not positive.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        max_fingerprints: int = 1024,
        total_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            msg = f"per_minute must be positive, got {per_minute!r}"
            raise ValueError(msg)
        if max_fingerprints <= 0:
            msg = f"max_fingerprints must be positive, got {max_fingerprints!r}"
            raise ValueError(msg)
        total = total_per_minute if total_per_minute is not None else 10 * per_minute
        if total <= 0:
            msg = f"total_per_minute must be positive, got {total_per_minute!r}"
            raise ValueError(msg)
        self._capacity = float(per_minute)
        self._rate_per_second = per_minute / 60.0
        self._total_capacity = float(total)
        self._total_rate_per_second = total / 60.0
        self._total = _Bucket(self._total_capacity, clock())
        self._max_fingerprints = max_fingerprints
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()
        self._suppressed_total = 0
        self._evicted_suppressed = 0

    def admit(self, fingerprint: str) -> Admission:
        """Spend a token of ``fingerprint``'s bucket if there is one.

        Args:
            fingerprint: the fingerprint value.

        Returns:
            Whether to emit, and the repeats to report with it.
        """
        now = self._clock()
        with self._lock:
            bucket = self._bucket(fingerprint, now)
            bucket.tokens = min(
                self._capacity,
                bucket.tokens + (now - bucket.updated) * self._rate_per_second,
            )
            bucket.updated = now
            total = self._total
            total.tokens = min(
                self._total_capacity,
                total.tokens + (now - total.updated) * self._total_rate_per_second,
            )
            total.updated = now

            if bucket.tokens < 1.0 or total.tokens < 1.0:
                bucket.suppressed += 1
                self._suppressed_total += 1
                return Admission(allowed=False, repeats=bucket.suppressed)

            bucket.tokens -= 1.0
            total.tokens -= 1.0
            repeats, bucket.suppressed = bucket.suppressed, 0
            return Admission(allowed=True, repeats=repeats)

    def _bucket(self, fingerprint: str, now: float) -> _Bucket:
        bucket = self._buckets.get(fingerprint)
        if bucket is not None:
            self._buckets.move_to_end(fingerprint)
            return bucket

        bucket = _Bucket(self._capacity, now)
        self._buckets[fingerprint] = bucket
        if len(self._buckets) > self._max_fingerprints:
            _, evicted = self._buckets.popitem(last=False)
            self._evicted_suppressed += evicted.suppressed
        return bucket

    def drain_suppressed(self) -> dict[str, int]:
        """Return and reset the unreported repeats, by fingerprint (for shutdown)."""
        with self._lock:
            pending = {
                fingerprint: bucket.suppressed
                for fingerprint, bucket in self._buckets.items()
                if bucket.suppressed
            }
            for bucket in self._buckets.values():
                bucket.suppressed = 0
            return pending

    def drain_evicted_suppressed(self) -> int:
        """Return and reset the unreported repeats of evicted fingerprints."""
        with self._lock:
            evicted, self._evicted_suppressed = self._evicted_suppressed, 0
            return evicted

    @property
    def suppressed_total(self) -> int:
        """Repeats suppressed since creation."""
        with self._lock:
            return self._suppressed_total

    @property
    def evicted_suppressed(self) -> int:
        """Unreported repeats of evicted buckets, by no fingerprint, not yet drained."""
        with self._lock:
            return self._evicted_suppressed

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)
