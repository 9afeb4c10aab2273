"""Prometheus metrics of the crash service, in a registry of its own.

=========================================  =======  ==========================
metric                                     type     labels
=========================================  =======  ==========================
``healthai_crash_reports_total``           counter  ``service``, ``category``
``healthai_crash_groups``                  gauge    ``status`` (read at scrape)
``healthai_crash_new_groups_total``        counter
``healthai_crash_rejected_payloads_total`` counter  ``reason`` (fixed set)
``healthai_crash_ignored_records_total``   counter
=========================================  =======  ==========================

Label values come from clients, so they are bounded: the first
``max_service_labels`` services keep their name, later ones are counted as
``other``; categories outside the taxonomy's top level become ``other`` too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_processors.taxonomy import Category

__all__ = ["REJECTION_REASONS", "CrashMetrics"]

REJECTION_REASONS: Final = (
    "unauthorized",
    "too_large",
    "unsupported_media_type",
    "unsupported_encoding",
    "bad_gzip",
    "bad_protobuf",
    "bad_json",
    "invalid_record",
    "processing_error",
    "bad_request",
)
"""Why a payload, a record or an API request was refused."""

OTHER: Final = "other"
_NONE: Final = "none"


class _GroupStatusCollector(Collector):
    """Report the number of groups by status, read from the store at scrape time."""

    def __init__(self, count_by_status: Callable[[], Mapping[str, int]]) -> None:
        self._count_by_status = count_by_status

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "healthai_crash_groups",
            "Crash groups in the store, by status.",
            labels=["status"],
        )
        for status, count in sorted(self._count_by_status().items()):
            family.add_metric([status], count)
        yield family


class CrashMetrics:
    """The crash service's counters and gauge.

    Args:
        count_by_status: returns the current number of groups by status.
        max_service_labels: distinct service names kept as label values.
        registry: where to register; a new registry by default.
    """

    def __init__(
        self,
        count_by_status: Callable[[], Mapping[str, int]],
        *,
        max_service_labels: int = 50,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._max_service_labels = max_service_labels
        self._services: set[str] = set()
        self._lock = threading.Lock()
        self._categories = {category.value for category in Category}

        self.reports = Counter(
            "healthai_crash_reports",
            "Exception records grouped, with their repeats, by service and category.",
            ["service", "category"],
            registry=self.registry,
        )
        self.new_groups = Counter(
            "healthai_crash_new_groups",
            "Crash groups created.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "healthai_crash_rejected_payloads",
            "Payloads, records and API requests refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "healthai_crash_ignored_records",
            "Log records received that report no exception.",
            registry=self.registry,
        )
        self.unattributed_repeats = Counter(
            "healthai_crash_unattributed_repeats",
            "Suppressed crash repeats reported without a fingerprint: the "
            "reporter's rate limiter had evicted it.",
            registry=self.registry,
        )
        for reason in REJECTION_REASONS:
            self.rejected.labels(reason)
        self.registry.register(_GroupStatusCollector(count_by_status))

    def count_report(
        self, service: str, category: str | None, occurrences: int
    ) -> None:
        """Count one grouped record standing for ``occurrences`` crashes."""
        self.reports.labels(self._service_label(service), self._category(category)).inc(
            occurrences
        )

    def count_rejected(self, reason: str, amount: int = 1) -> None:
        """Count refusals; ``reason`` must be one of ``REJECTION_REASONS``.

        Raises:
            ValueError: an unknown reason (a bug, not a client mistake).
        """
        if reason not in REJECTION_REASONS:
            msg = f"unknown rejection reason {reason!r}"
            raise ValueError(msg)
        self.rejected.labels(reason).inc(amount)

    def _service_label(self, service: str) -> str:
        with self._lock:
            if service in self._services:
                return service
            if len(self._services) < self._max_service_labels:
                self._services.add(service)
                return service
        return OTHER

    def _category(self, category: str | None) -> str:
        if category is None:
            return _NONE
        return category if category in self._categories else OTHER
