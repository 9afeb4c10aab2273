"""The crash record: trace context, span event, scrubbing, classification."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from otel_processors.crash import CrashReporter
from otel_processors.crash.fingerprint import InAppPolicy
from otel_processors.crash.report import default_crash_classification


def _providers() -> tuple[
    LoggerProvider, InMemoryLogRecordExporter, TracerProvider, InMemorySpanExporter
]:
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return logger_provider, log_exporter, tracer_provider, span_exporter


def _raised(message: str) -> BaseException:
    try:
        raise LookupError(message)
    except LookupError as exc:
        return exc


def test_crash_in_a_span_carries_its_trace_and_a_scrubbed_span_event() -> None:
    """The record has the active span's trace id; the span event is scrubbed."""
    logger_provider, log_exporter, tracer_provider, span_exporter = _providers()
    reporter = CrashReporter(
        logger_provider=logger_provider,
        tracer_provider=tracer_provider,
        scrubber=lambda text: text.replace("MRN-4711", "<mrn>"),
        classifier=lambda kind: {"healthai.error.code": "TEST-CRASH"},
    )
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("score") as span:
        trace_id = span.get_span_context().trace_id
        reporter.report(_raised("patient MRN-4711"), kind="executor")

    record = log_exporter.get_finished_logs()[0].log_record
    event = span_exporter.get_finished_spans()[0].events[0]
    result = (
        record.trace_id == trace_id,
        record.attributes["healthai.error.code"],
        event.name,
        event.attributes["exception.message"],
        "MRN-4711" in event.attributes["exception.stacktrace"],
        event.attributes["exception.escaped"],
    )

    expected = (True, "TEST-CRASH", "exception", "patient <mrn>", False, "True")
    assert expected == result


def test_manual_fatal_report_is_fatal_and_flushed() -> None:
    """``report(..., fatal=True)`` emits FATAL and flushes within the bound."""
    logger_provider, log_exporter, tracer_provider, _ = _providers()
    reporter = CrashReporter(
        logger_provider=logger_provider,
        tracer_provider=tracer_provider,
        scrubber=lambda text: text,
        classifier=lambda kind: {},
        flush_timeout_seconds=0.5,
    )

    emitted = reporter.report(_raised("x"), kind="main_thread", fatal=True)

    result = (
        emitted,
        [r.log_record.severity_text for r in log_exporter.get_finished_logs()],
    )
    expected = (True, ["FATAL"])
    assert expected == result


def test_failing_scrubber_never_raises_into_the_host() -> None:
    """A scrubber that raises makes report() return False and count a failure."""
    logger_provider, _, _, _ = _providers()

    def broken(text: str) -> str:
        raise RuntimeError("scrubber down")

    reporter = CrashReporter(
        logger_provider=logger_provider, scrubber=broken, classifier=lambda kind: {}
    )

    emitted = reporter.report(_raised("x"), kind="thread")

    result = (emitted, reporter.stats().failed)
    expected = (False, 1)
    assert expected == result


def test_default_classification_uses_the_builtin_crash_codes() -> None:
    """Exceptions and fatal signals get the registry's SYSTEM_ERROR / CRASH codes."""
    exception_attributes = default_crash_classification("thread")
    signal_attributes = default_crash_classification("signal")

    result = [
        (
            attributes["healthai.error.category"],
            attributes["healthai.error.subcategory"],
        )
        for attributes in (exception_attributes, signal_attributes)
    ]

    expected = [("SYSTEM_ERROR", "CRASH"), ("SYSTEM_ERROR", "CRASH")]
    assert expected == result


class _StuckLogRecordExporter(LogRecordExporter):
    """An exporter whose export hangs for 30 s, or until released."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.released.wait(30)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self.released.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_fatal_report_returns_within_the_flush_timeout_when_export_hangs() -> None:
    """A FATAL report waits for a hung exporter no longer than the flush bound."""
    exporter = _StuckLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    reporter = CrashReporter(
        logger_provider=provider, scrubber=str, flush_timeout_seconds=0.5
    )

    started = time.monotonic()
    emitted = reporter.report(_raised("bed 12"), kind="main_thread", fatal=True)
    elapsed = time.monotonic() - started
    exporter.released.set()
    provider.shutdown()

    result = (emitted, 0.4 < elapsed < 1.5)

    expected = (True, True)
    assert expected == result, f"report took {elapsed:.2f} s"


def _recurse(depth: int) -> None:
    if depth == 0:
        raise RecursionError("too deep")
    _recurse(depth - 1)


def test_frames_are_bounded_keeping_the_innermost() -> None:
    """A crash 100 calls deep carries the 64 innermost frames, the raise last."""
    logger_provider, log_exporter, _, _ = _providers()
    reporter = CrashReporter(logger_provider=logger_provider, scrubber=str)
    try:
        _recurse(100)
    except RecursionError as exc:
        reporter.report(exc, kind="thread")
    (record,) = log_exporter.get_finished_logs()
    frames = json.loads(
        str((record.log_record.attributes or {})["healthai.crash.frames"])
    )

    result = (
        len(frames),
        {frame["function"] for frame in frames},
        frames[-1]["context_line"],
    )

    expected = (64, {"_recurse"}, 'raise RecursionError("too deep")')
    assert expected == result


def test_frames_name_modules_as_the_fingerprint_does() -> None:
    """With in-app prefixes, a frame's module comes from its path's segments."""
    logger_provider, log_exporter, _, _ = _providers()
    reporter = CrashReporter(
        logger_provider=logger_provider,
        scrubber=str,
        in_app=InAppPolicy(include=["readmit"]),
    )
    namespace: dict[str, object] = {}
    exec(  # a module of the service, kept outside this process's sys.path
        compile(
            "def score():\n    raise ValueError('no weights')\n",
            "/srv/build-7/src/readmit/api.py",
            "exec",
        ),
        namespace,
    )
    try:
        namespace["score"]()  # type: ignore[operator]  # defined by the exec above
    except ValueError as exc:
        reporter.report(exc, kind="thread")
    (record,) = log_exporter.get_finished_logs()
    frames = json.loads(
        str((record.log_record.attributes or {})["healthai.crash.frames"])
    )

    result = (frames[-1]["module"], frames[-1]["in_app"])

    expected = ("readmit.api", True)
    assert expected == result
