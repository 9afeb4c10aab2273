"""Install crash reporting in a process, and remove it.

``install`` builds the reporter, installs the interpreter hooks, points
faulthandler at this process's crash file, then starts a daemon thread that
sends the reports of earlier processes that died of a fatal signal, so that a
slow or unreachable endpoint never delays the start of the service. It is
idempotent; ``uninstall`` restores every previous hook.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.util.types import AttributeValue

from otel_processors import attributes as attrs
from otel_processors._guard import record_failure
from otel_processors.crash.escaped import EscapedExceptionSpanProcessor
from otel_processors.crash.fingerprint import InAppPolicy
from otel_processors.crash.hooks import CrashHooks
from otel_processors.crash.native import FatalSignalCapture
from otel_processors.crash.report import (
    Classify,
    CrashReporter,
    Scrub,
    ScrubberLike,
)
from otel_processors.crash.spool import CrashSpool, SpoolReport, default_spool_dir

__all__ = [
    "install",
    "installed_reporter",
    "send_spooled_reports",
    "uninstall",
    "wait_for_spooled_reports",
]

_logger = logging.getLogger(__name__)

_lock = threading.Lock()
_state: _Installation | None = None


class _Installation:
    def __init__(
        self,
        reporter: CrashReporter,
        hooks: CrashHooks,
        capture: FatalSignalCapture | None,
        sender: threading.Thread | None,
    ) -> None:
        self.reporter = reporter
        self.hooks = hooks
        self.capture = capture
        self.sender = sender


def installed_reporter() -> CrashReporter | None:
    """Return the reporter ``install`` created, if crash reporting is on."""
    state = _state
    return state.reporter if state else None


def install(
    *,
    logger_provider: LoggerProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    scrubber: ScrubberLike | Scrub | None = None,
    classifier: Classify | None = None,
    spool_dir: Path | str | None = None,
    in_app_prefixes: Sequence[str] | None = None,
    release: str | None = None,
    flush_timeout_seconds: float = 2.0,
    max_reports_per_fingerprint_per_minute: float = 10.0,
    spool_exporter: LogRecordExporter | None = None,
    capture_fatal_signals: bool = True,
) -> CrashReporter:
    """Turn crash reporting on for this process (idempotent).

    Args:
        logger_provider: where crash records go; default: the global one.
        tracer_provider: flushed too after a fatal crash.
        scrubber: ``Scrubber``-like object or ``scrub(text)`` callable.
        classifier: callable returning the crash's taxonomy attributes.
        spool_dir: the crash spool; default ``$HEALTHAI_CRASH_DIR`` or
            ``~/.cache/healthai-telemetry/crashes/<service.name>``.
        in_app_prefixes: module prefixes of the application, for grouping.
        release: overrides ``service.version`` on crash records.
        flush_timeout_seconds: bound on the flush after a fatal crash, on
            each spooled report's delivery without ``spool_exporter``, and on
            the wait for the spooled reports at ``uninstall`` and at exit.
        max_reports_per_fingerprint_per_minute: rate limit per fingerprint.
        spool_exporter: the log exporter that confirms delivery of spooled
            reports (its ``export`` result); without it, a report counts as
            delivered when the provider's ``force_flush`` returns true.
        capture_fatal_signals: write fatal signals to the spool.

    Returns:
        The installed reporter (the existing one if already installed).

    Raises:
        ValueError: a numeric argument is out of range.
    """
    global _state
    with _lock:
        if _state is not None:
            return _state.reporter

        reporter = CrashReporter(
            logger_provider=logger_provider,
            tracer_provider=tracer_provider,
            scrubber=scrubber,
            classifier=classifier,
            in_app=InAppPolicy(include=in_app_prefixes or ()),
            release=release,
            flush_timeout_seconds=flush_timeout_seconds,
            max_reports_per_fingerprint_per_minute=max_reports_per_fingerprint_per_minute,
            escapes=_watch_escapes(tracer_provider),
        )
        hooks = CrashHooks(reporter)
        hooks.install()

        capture, sender = None, None
        if capture_fatal_signals:
            capture, sender = _start_capture(reporter, spool_dir, spool_exporter)
        _state = _Installation(reporter, hooks, capture, sender)
        # Registered after the SDK provider's own exit hook, so it runs first.
        atexit.register(_report_at_exit)
        return reporter


_escapes_by_provider: weakref.WeakKeyDictionary[
    SdkTracerProvider, EscapedExceptionSpanProcessor
] = weakref.WeakKeyDictionary()


def _watch_escapes(
    tracer_provider: trace.TracerProvider | None,
) -> EscapedExceptionSpanProcessor | None:
    # Only the SDK's provider takes span processors; another one (the API's
    # no-op, say) has no spans to link crashes to.
    provider = tracer_provider or trace.get_tracer_provider()
    if not isinstance(provider, SdkTracerProvider):
        return None
    # The SDK cannot remove a span processor, so a reinstall wakes the one
    # added before rather than stacking another on every span's path.
    escapes = _escapes_by_provider.get(provider)
    if escapes is None:
        escapes = EscapedExceptionSpanProcessor()
        try:
            provider.add_span_processor(escapes)
        except Exception as failure:
            record_failure("crash.escapes", failure)
            return None
        _escapes_by_provider[provider] = escapes
    escapes.enabled = True
    return escapes


def wait_for_spooled_reports(timeout_seconds: float | None = None) -> bool:
    """Wait for the thread sending the spooled reports of earlier processes.

    Args:
        timeout_seconds: the longest wait; default the reporter's
            ``flush_timeout_seconds``.

    Returns:
        Whether the thread has finished (true when there is none). Reports it
        could not deliver stay pending either way.
    """
    state = _state
    if state is None:
        return True
    return _join_sender(state, timeout_seconds)


def _join_sender(state: _Installation, timeout_seconds: float | None) -> bool:
    sender = state.sender
    if sender is None:
        return True
    sender.join(timeout_seconds or state.reporter.flush_timeout_seconds)
    return not sender.is_alive()


def _report_at_exit() -> None:
    state = _state
    if state is None:
        return
    _join_sender(state, None)
    if state.reporter.report_suppressed():
        state.reporter.flush()


def _start_capture(
    reporter: CrashReporter,
    spool_dir: Path | str | None,
    spool_exporter: LogRecordExporter | None,
) -> tuple[FatalSignalCapture | None, threading.Thread | None]:
    try:
        service_name = _service_name(reporter)
        spool = CrashSpool(spool_dir or default_spool_dir(service_name))
        capture = FatalSignalCapture(
            spool, service_name=service_name, release=_release(reporter)
        )
        capture.enable()
    except Exception as failure:  # never raise into the host
        record_failure("crash.spool", failure)
        return None, None

    # Capture is on before sending starts: a crash while sending is not lost.
    sender = threading.Thread(
        target=_send_in_background,
        args=(spool, reporter, spool_exporter, capture),
        name="healthai-crash-spool",
        daemon=True,
    )
    try:
        sender.start()
    except RuntimeError as failure:  # e.g. started during interpreter shutdown
        record_failure("crash.spool_sender", failure)
        return capture, None
    return capture, sender


def _send_in_background(
    spool: CrashSpool,
    reporter: CrashReporter,
    spool_exporter: LogRecordExporter | None,
    capture: FatalSignalCapture,
) -> None:
    try:
        send_spooled_reports(
            spool,
            reporter,
            spool_exporter=spool_exporter,
            own_pid=capture.pid,
            own_start_ns=capture.start_ns,
        )
    except Exception as failure:  # never raise, not even in our own thread
        record_failure("crash.spool", failure)


def uninstall() -> None:
    """Restore the previous hooks, report suppressed repeats, stop capture.

    The thread sending spooled reports is waited for first, at most
    ``flush_timeout_seconds``. At interpreter exit the same wait happens and
    the suppressed repeats are reported too, without ``uninstall``.
    """
    global _state
    with _lock:
        state, _state = _state, None
    if state is None:
        return
    atexit.unregister(_report_at_exit)
    _join_sender(state, None)
    state.hooks.uninstall()
    # The span processor stays on its provider, quiet until a reinstall.
    if state.reporter.escapes is not None:
        state.reporter.escapes.enabled = False
    if state.capture is not None:
        state.capture.disable()
    state.reporter.report_suppressed()


def _resource(reporter: CrashReporter) -> Resource | None:
    resource = getattr(reporter.logger_provider, "resource", None)
    return resource if isinstance(resource, Resource) else None


def _service_name(reporter: CrashReporter) -> str:
    resource = _resource(reporter)
    if resource is not None:
        name = resource.attributes.get(attrs.SERVICE_NAME)
        if name:
            return str(name)
    return os.environ.get("OTEL_SERVICE_NAME", "unknown_service")


def _release(reporter: CrashReporter) -> str | None:
    if reporter.release is not None:
        return reporter.release
    resource = _resource(reporter)
    version = resource.attributes.get(attrs.SERVICE_VERSION) if resource else None
    return str(version) if version else None


class _ResultRecordingExporter(LogRecordExporter):
    """Pass records on, remembering whether every export succeeded."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self._inner = inner
        self.succeeded = True

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            result = self._inner.export(batch)
        except Exception:  # a failed export is a result
            result = LogRecordExportResult.FAILURE
        if result is not LogRecordExportResult.SUCCESS:
            self.succeeded = False
        return result

    def shutdown(self) -> None:
        """Leave the wrapped exporter running: its owner shuts it down."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def send_spooled_reports(
    spool: CrashSpool,
    reporter: CrashReporter,
    *,
    spool_exporter: LogRecordExporter | None = None,
    own_pid: int | None = None,
    own_start_ns: int | None = None,
) -> int:
    """Collect dead processes' crash files and send the pending reports.

    Nothing happens if another process holds the spool lock (it does the
    work). Reports are sent oldest first; a report moves to ``completed/``
    only after its delivery is confirmed. The first failed delivery stops the
    sending: an endpoint that is down would fail the rest too, each after the
    exporter's timeout, so they all stay pending for the next start.

    Args:
        spool: the spool.
        reporter: builds the records.
        spool_exporter: confirms delivery; see ``install``.
        own_pid: the caller's pid (default: this process).
        own_start_ns: the caller's start time (default: now).

    Returns:
        The number of reports delivered.
    """
    delivered = 0
    with spool.locked() as acquired:
        if not acquired:
            _logger.debug("Crash spool %s is busy; another process sends", spool.root)
            return 0
        spool.collect(
            own_pid=own_pid or os.getpid(), own_start_ns=own_start_ns or time.time_ns()
        )
        reports = spool.pending()
        for report in reports:
            if not _deliver(report, reporter, spool_exporter):
                _logger.warning(
                    "Crash report %s not delivered; it and %s more are kept for "
                    "the next start",
                    report.path.name,
                    len(reports) - delivered - 1,
                )
                break
            spool.complete(report)
            delivered += 1
    return delivered


def _deliver(
    report: SpoolReport,
    reporter: CrashReporter,
    spool_exporter: LogRecordExporter | None,
) -> bool:
    # The crashed process may be another service or release than this one.
    crashed: dict[str, AttributeValue] = {}
    service_name = report.metadata.get("service_name")
    if service_name:
        crashed[attrs.SERVICE_NAME] = str(service_name)
    release = report.metadata.get("release")
    if release:
        crashed[attrs.SERVICE_VERSION] = str(release)

    extra: dict[str, AttributeValue] = {
        "process.pid": int(report.metadata.get("pid", 0))
    }
    if attrs.SERVICE_VERSION in crashed:
        extra[attrs.SERVICE_VERSION] = crashed[attrs.SERVICE_VERSION]
    argv0 = report.metadata.get("argv0")
    if argv0:
        extra["process.executable.path"] = str(argv0)

    try:
        if spool_exporter is None:
            # The provider's resource is this process's: name the service on
            # the record when it is another one.
            own_name = _service_name(reporter)
            if crashed.get(attrs.SERVICE_NAME, own_name) != own_name:
                extra[attrs.SERVICE_NAME] = crashed[attrs.SERVICE_NAME]
            reporter.report_text(
                report.text, timestamp_ns=report.crashed_at_ns, extra=extra
            )
            return reporter.flush()

        recorder = _ResultRecordingExporter(spool_exporter)
        resource = (_resource(reporter) or Resource.create()).merge(Resource(crashed))
        provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_log_record_processor(SimpleLogRecordProcessor(recorder))
        reporter.report_text(
            report.text,
            timestamp_ns=report.crashed_at_ns,
            extra=extra,
            logger=provider.get_logger("otel_processors.crash"),
        )
        return recorder.succeeded
    except Exception as failure:  # keep the report for later
        record_failure("crash.spool_deliver", failure)
        return False
