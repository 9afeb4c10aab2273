"""From a decoded OTLP log request to stored crash groups and counted metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)

from exporters.crash_service.grouping import (
    CrashGrouper,
    CrashReport,
    InvalidRecordError,
    is_exception_record,
    unattributed_repeats,
)
from exporters.crash_service.metrics import CrashMetrics
from exporters.crash_service.otlp import iter_log_events
from exporters.crash_service.store import CrashStore
from otel_processors._guard import record_failure

__all__ = ["CrashIngestor", "IngestResult"]

_logger = logging.getLogger(__name__)

_MAX_ERROR_MESSAGES = 3


@dataclass
class IngestResult:
    """What became of the records of one request."""

    accepted: int = 0
    ignored: int = 0
    rejected: int = 0
    new_groups: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        """The first few rejection messages, for ``partial_success``."""
        shown = "; ".join(self.errors[:_MAX_ERROR_MESSAGES])
        hidden = len(self.errors) - _MAX_ERROR_MESSAGES
        return f"{shown}; and {hidden} more" if hidden > 0 else shown


class CrashIngestor:
    """Group, scrub, store and count the exception records of a request.

    Args:
        store: where groups are kept.
        grouper: turns records into reports.
        metrics: the counters to update.
    """

    def __init__(
        self, store: CrashStore, grouper: CrashGrouper, metrics: CrashMetrics
    ) -> None:
        self._store = store
        self._grouper = grouper
        self._metrics = metrics

    def ingest(self, request: ExportLogsServiceRequest) -> IngestResult:
        """Keep the exception records of a request; ignore or reject the others.

        Args:
            request: the decoded request.

        Returns:
            The outcome; records that cannot be grouped are rejected, the rest of
            the batch is still kept.

        Raises:
            sqlite3.Error: the store could not be written (nothing was kept).
        """
        result = IngestResult()
        reports: list[CrashReport] = []
        now = time.time()
        detailed: set[str] = set()

        # Only a group's first record is kept for display: scrub only that one.
        def needs_details(group_id: str) -> bool:
            if group_id in detailed:
                return False
            detailed.add(group_id)
            return not self._store.has_group(group_id)

        for index, event in enumerate(iter_log_events(request)):
            if not is_exception_record(event):
                result.ignored += 1
                continue
            try:
                unattributed = unattributed_repeats(event)
                if unattributed:
                    self._metrics.unattributed_repeats.inc(unattributed)
                    result.accepted += 1
                    continue
                report = self._grouper.report(
                    event, now=now, needs_details=needs_details
                )
                reports.append(report)
            except InvalidRecordError as exc:
                self._reject(result, "invalid_record", f"record {index}: {exc}")
            except Exception as exc:  # a scrubber or parser bug must not drop the batch
                record_failure("crash_service.group", exc)
                self._reject(result, "processing_error", f"record {index}: failed")

        result.new_groups = self._store.record(reports)
        result.accepted += len(reports)

        for report in reports:
            self._metrics.count_report(
                report.service, report.category, report.occurrences
            )
        if result.new_groups:
            self._metrics.new_groups.inc(len(result.new_groups))
        if result.ignored:
            self._metrics.ignored.inc(result.ignored)
        return result

    def _reject(self, result: IngestResult, reason: str, message: str) -> None:
        result.rejected += 1
        result.errors.append(message)
        self._metrics.count_rejected(reason)
