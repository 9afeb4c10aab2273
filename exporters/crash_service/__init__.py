"""The crash service: exception log records in over OTLP/HTTP, crash groups out.

Exception records (from the Collector or straight from an SDK exporter) are
scrubbed again, grouped by fingerprint and kept in SQLite; Prometheus metrics
and a small JSON API expose the groups. See docs/crash-service.md.

Example::

    service = CrashService(CrashServiceSettings(db_path="crashes.db", token=token))
    host, port = service.start()
    ...
    open_groups = service.store.list_groups(status="open")
    service.stop()
"""

from __future__ import annotations

from exporters.crash_service.grouping import (
    NATIVE_FRAMES_ATTRIBUTE,
    CrashGrouper,
    CrashReport,
    InvalidRecordError,
    Scrubbing,
    group_id_for,
    is_exception_record,
)
from exporters.crash_service.ingest import CrashIngestor, IngestResult
from exporters.crash_service.metrics import REJECTION_REASONS, CrashMetrics
from exporters.crash_service.otlp import (
    LogEvent,
    PayloadError,
    decode_body,
    decode_logs_request,
    iter_log_events,
)
from exporters.crash_service.server import CrashService
from exporters.crash_service.settings import (
    DEFAULT_MAX_BODY_BYTES,
    CrashServiceSettings,
    read_token_file,
)
from exporters.crash_service.store import STATUSES, CrashGroup, CrashStore, migrate

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "NATIVE_FRAMES_ATTRIBUTE",
    "REJECTION_REASONS",
    "STATUSES",
    "CrashGroup",
    "CrashGrouper",
    "CrashIngestor",
    "CrashMetrics",
    "CrashReport",
    "CrashService",
    "CrashServiceSettings",
    "CrashStore",
    "IngestResult",
    "InvalidRecordError",
    "LogEvent",
    "PayloadError",
    "Scrubbing",
    "decode_body",
    "decode_logs_request",
    "group_id_for",
    "is_exception_record",
    "iter_log_events",
    "migrate",
    "read_token_file",
]
