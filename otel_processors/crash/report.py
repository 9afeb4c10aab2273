"""Turn a crash into one scrubbed, classified, fingerprinted OpenTelemetry log record.

The record follows the semantic conventions for exceptions as logs: event name
``exception``, severity FATAL when the crash ends the process and ERROR
otherwise, ``exception.type`` (module-qualified), ``exception.message`` and
``exception.stacktrace``. It adds the taxonomy attributes (SYSTEM_ERROR /
CRASH), the fingerprint and its version, the kind of crash and the repeats
suppressed since the last record of the same fingerprint.
See https://opentelemetry.io/docs/specs/semconv/exceptions/exceptions-logs/.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import (
    Logger,
    LoggerProvider,
    SeverityNumber,
    get_logger_provider,
)
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from otel_processors import attributes as attrs
from otel_processors._guard import record_failure
from otel_processors.crash.escaped import EscapedExceptionSpanProcessor
from otel_processors.crash.fingerprint import (
    FINGERPRINT_VERSION,
    Fingerprint,
    Frame,
    InAppPolicy,
    ParsedException,
    fingerprint_exception,
    fingerprint_parsed,
    parse_traceback,
)
from otel_processors.crash.ratelimit import FingerprintRateLimiter
from otel_processors.taxonomy import Category, Subcategory

__all__ = [
    "CRASH_KINDS",
    "CrashReporter",
    "CrashStats",
    "ScrubberLike",
    "default_crash_classification",
    "reported_as_crash",
]

_logger = logging.getLogger(__name__)

CRASH_KINDS: Final = frozenset(
    {"main_thread", "thread", "asyncio_task", "unraisable", "signal", "executor"}
)
_SCOPE: Final = "otel_processors.crash"
_EVENT_NAME: Final = "exception"
# Deep recursion must not make a huge record; the innermost frames matter most.
_MAX_FRAMES: Final = 64
_FALLBACK_CODE: Final = "HAI-SYS-000"
# Exceptions take no weak references, so a reported one carries this mark (its
# fingerprint): nothing is kept alive, and the mark dies with the exception.
_REPORTED_MARK: Final = "_healthai_crash_fingerprint"
# Built-in codes of the registry's catalogue (otel_processors/catalogue.yaml).
_EXCEPTION_CODE: Final = "HAI-SYS-601"
_SIGNAL_CODE: Final = "HAI-SYS-602"

Scrub = Callable[[str], str]
Classify = Callable[[str], Mapping[str, AttributeValue]]


class ScrubberLike(Protocol):
    """Anything with ``scrub(text) -> str``, such as ``Scrubber``."""

    def scrub(self, text: str) -> str:
        """Return ``text`` with patient data removed."""
        ...


@dataclass
class CrashStats:
    """Counts kept by a reporter since it was created.

    Attributes:
        reported: records emitted, by kind.
        suppressed: repeats suppressed by the rate limiter.
        failed: crashes that could not be reported (the failure is counted by
            ``otel_processors._guard`` too).
        fingerprints_tracked: fingerprints in the rate limiter's table.
    """

    reported: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0
    failed: int = 0
    fingerprints_tracked: int = 0


def default_crash_classification(kind: str) -> dict[str, AttributeValue]:
    """Return the taxonomy attributes of a crash from the built-in registry.

    A fatal signal gets the built-in code for native crashes, any other kind
    the one for unhandled exceptions; failing those, the first code whose
    subcategory is CRASH, else the registry's SYSTEM_ERROR fallback. Without a
    usable registry, a fixed SYSTEM_ERROR / CRASH classification.

    Args:
        kind: the crash kind (see ``CRASH_KINDS``).

    Returns:
        The ``healthai.error.*`` attributes and ``error.type``.
    """
    try:
        return _classification_from_registry(kind)
    except Exception as exc:  # the registry is optional here
        record_failure("crash.classify", exc)
    return {
        attrs.ERROR_CATEGORY: Category.SYSTEM_ERROR.value,
        attrs.ERROR_SUBCATEGORY: Subcategory.CRASH.value,
        attrs.ERROR_CODE: _FALLBACK_CODE,
        attrs.ERROR_SEVERITY: "critical",
        attrs.ERROR_RETRYABLE: False,
        attrs.ERROR_TYPE: _FALLBACK_CODE,
    }


def _classification_from_registry(kind: str) -> dict[str, AttributeValue]:
    # Imported here: crash capture must install even if the registry is broken.
    from otel_processors.classifier import Classification
    from otel_processors.registry import Registry

    registry = Registry.builtin()
    preferred = _SIGNAL_CODE if kind == "signal" else _EXCEPTION_CODE
    code = registry.codes.get(preferred) or next(
        (c for c in registry.codes.values() if c.subcategory is Subcategory.CRASH),
        None,
    )
    fallback = code is None
    if code is None:
        code = registry.fallback(Category.SYSTEM_ERROR)

    reason = "fatal signal" if kind == "signal" else f"unhandled exception ({kind})"
    classification = Classification(code=code, fallback=fallback, reason=reason)
    return dict(classification.attributes())


def _default_scrub() -> Scrub:
    try:
        scrubber: Any = importlib.import_module("otel_processors.scrubber").Scrubber()
        scrub: Scrub = scrubber.scrub
        return scrub
    except Exception as exc:  # fall back, loudly
        _logger.warning(
            "No PHI scrubber available (%s); crash text is exported unscrubbed", exc
        )
        return _identity


def _identity(text: str) -> str:
    return text


def _as_scrub(scrubber: ScrubberLike | Scrub | None) -> Scrub:
    if scrubber is None:
        return _default_scrub()
    method = getattr(scrubber, "scrub", None)
    if callable(method):
        bound: Scrub = method
        return bound
    if callable(scrubber):
        return scrubber
    msg = f"scrubber must have scrub(text) or be callable, got {scrubber!r}"
    raise ValueError(msg)


def reported_as_crash(exc: BaseException) -> bool:
    """Return whether a crash reporter has reported ``exc`` (or suppressed it).

    A handler that chains to the default one (asyncio's logs the exception)
    would otherwise turn the same crash into a second exception record.

    Args:
        exc: the exception.

    Returns:
        True when a ``CrashReporter`` emitted or rate-limited a record for it.
    """
    try:
        return getattr(exc, _REPORTED_MARK, None) is not None
    except Exception:  # a hostile __getattr__ means: not ours
        return False


def _mark_reported(exc: BaseException, fingerprint: Fingerprint) -> None:
    try:
        setattr(exc, _REPORTED_MARK, fingerprint.value)
    except Exception:  # e.g. a read-only exception; it may be logged twice
        _logger.debug("Could not mark %s as reported", type(exc).__name__)


def _live_frames(exc: BaseException, policy: InAppPolicy) -> list[Frame]:
    # From the traceback itself: its text form folds recursion into one line.
    # Modules are named as the fingerprint names them.
    summaries = traceback.extract_tb(exc.__traceback__, limit=-_MAX_FRAMES)
    return [
        Frame(
            module=policy.module_of(summary.filename),
            function=summary.name,
            context_line=(summary.line or "").strip(),
            filename=summary.filename,
            lineno=summary.lineno,
            in_app=False,
        )
        for summary in summaries
    ]


def qualified_type(exc_type: type[BaseException]) -> str:
    """Name a type as OpenTelemetry does: ``module.Qualname`` but for builtins."""
    module = exc_type.__module__
    if not module or module == "builtins":
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"


class CrashReporter:
    """Report crashes as log records (and span events where a span is active).

    Args:
        logger_provider: where records go; default: the global provider, looked
            up at each report so a provider set later is used.
        tracer_provider: flushed with the logger provider after a fatal crash.
        scrubber: an object with ``scrub(text) -> str`` or such a callable;
            default ``otel_processors.scrubber.Scrubber()``.
        classifier: a callable taking the crash kind and returning the
            taxonomy attributes; default ``default_crash_classification``.
        in_app: which frames belong to the application.
        release: overrides ``service.version`` on the records.
        flush_timeout_seconds: bound on the flush after a fatal crash.
        max_reports_per_fingerprint_per_minute: rate limit per fingerprint.
        max_fingerprints: size of the rate limiter's table.
        rate_limiter: use this limiter instead (the two arguments above are
            then ignored).
        escapes: where to find the span a crash escaped from when no span is
            current, so that the record still carries its trace context.

    Raises:
        ValueError: a numeric argument is out of range.
    """

    def __init__(
        self,
        *,
        logger_provider: LoggerProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        scrubber: ScrubberLike | Scrub | None = None,
        classifier: Classify | None = None,
        in_app: InAppPolicy | None = None,
        release: str | None = None,
        flush_timeout_seconds: float = 2.0,
        max_reports_per_fingerprint_per_minute: float = 10.0,
        max_fingerprints: int = 1024,
        rate_limiter: FingerprintRateLimiter | None = None,
        escapes: EscapedExceptionSpanProcessor | None = None,
    ) -> None:
        if flush_timeout_seconds <= 0:
            msg = (
                f"flush_timeout_seconds must be positive, got {flush_timeout_seconds!r}"
            )
            raise ValueError(msg)
        self._logger_provider = logger_provider
        self._tracer_provider = tracer_provider
        self._scrub = _as_scrub(scrubber)
        self._classify = classifier or default_crash_classification
        self._classifications: dict[str, Mapping[str, AttributeValue]] = {}
        self.in_app = in_app or InAppPolicy()
        self.release = release
        self.flush_timeout_seconds = flush_timeout_seconds
        if rate_limiter is None:
            rate_limiter = FingerprintRateLimiter(
                max_reports_per_fingerprint_per_minute,
                max_fingerprints=max_fingerprints,
            )
        self._limiter = rate_limiter
        self.escapes = escapes
        self._lock = threading.Lock()
        self._reported: Counter[str] = Counter()
        self._failed = 0

    @property
    def logger_provider(self) -> LoggerProvider:
        """The provider records are emitted to."""
        return self._logger_provider or get_logger_provider()

    def _logger(self) -> Logger:
        return self.logger_provider.get_logger(_SCOPE)

    def report(self, exc: BaseException, *, kind: str, fatal: bool = False) -> bool:
        """Report one crash; never raises.

        Args:
            exc: the exception, with its traceback.
            kind: one of ``CRASH_KINDS``.
            fatal: whether it ends the process (FATAL, then a bounded flush).

        Returns:
            Whether a record was emitted (False when rate-limited or failed).
        """
        try:
            emitted = self._report(exc, kind=kind, fatal=fatal)
        except Exception as failure:  # never raise into the host
            self._count_failure("crash.report", failure)
            return False
        if fatal:
            self.flush()
        return emitted

    def _report(self, exc: BaseException, *, kind: str, fatal: bool) -> bool:
        fingerprint = fingerprint_exception(exc, in_app=self.in_app)
        admission = self._limiter.admit(fingerprint.value)
        if not admission.allowed:
            _mark_reported(exc, fingerprint)
            return False

        raw_message = str(exc)
        message = self._scrub(raw_message)
        exception_type = qualified_type(type(exc))
        text = "".join(traceback.format_exception(exc))
        record_attributes = self._attributes(
            fingerprint, kind, exception_type, message, self._scrub(text)
        )
        self._add_frames(record_attributes, _live_frames(exc, self.in_app))
        if admission.repeats:
            record_attributes[attrs.CRASH_REPEATS] = admission.repeats

        context = None
        if not self._record_on_span(exc, record_attributes):
            context = self._escaped_context(exception_type, raw_message)
        self._emit(record_attributes, message, fatal=fatal, context=context)
        _mark_reported(exc, fingerprint)
        self._count(kind)
        return True

    def report_text(
        self,
        text: str,
        *,
        kind: str = "signal",
        fatal: bool = True,
        timestamp_ns: int | None = None,
        extra: Mapping[str, AttributeValue] | None = None,
        logger: Logger | None = None,
    ) -> None:
        """Report a crash known only by its text (a faulthandler crash file).

        Not rate-limited: each text is one dead process. Raises on failure so
        that the caller (the spool) keeps the report for a later attempt.

        Args:
            text: the traceback or faulthandler output.
            kind: the crash kind, ``signal`` for fatal signals.
            fatal: severity FATAL when true.
            timestamp_ns: when the crash happened.
            extra: attributes added to the record (e.g. the release of the
                crashed process, which overrides this reporter's).
            logger: emit through this logger instead of the provider's.

        Raises:
            Exception: whatever scrubbing or emitting raised, so the report
                is retried later.
        """
        # A truncated crash file still makes a report, grouped by its first line.
        chain = parse_traceback(text) or [
            ParsedException("FatalError", text.strip().partition("\n")[0][:200], ())
        ]
        fingerprint = fingerprint_parsed(chain, in_app=self.in_app)
        last = chain[-1]
        message = self._scrub(last.message)
        record_attributes = self._attributes(
            fingerprint, kind, last.type, message, self._scrub(text)
        )
        self._add_frames(record_attributes, chain[-1].frames[-_MAX_FRAMES:])
        record_attributes.update(extra or {})
        self._emit(
            record_attributes,
            message,
            fatal=fatal,
            timestamp_ns=timestamp_ns,
            logger=logger,
        )
        self._count(kind)

    def _attributes(
        self,
        fingerprint: Fingerprint,
        kind: str,
        exc_type: str,
        message: str,
        stacktrace: str,
    ) -> dict[str, AttributeValue]:
        classification = self._classifications.get(kind)
        if classification is None:
            classification = dict(self._classify(kind))
            self._classifications[kind] = classification
        result: dict[str, AttributeValue] = dict(classification)
        result.update(
            {
                attrs.EXCEPTION_TYPE: exc_type,
                attrs.EXCEPTION_MESSAGE: message,
                attrs.EXCEPTION_STACKTRACE: stacktrace,
                attrs.CRASH_FINGERPRINT: fingerprint.value,
                attrs.CRASH_FINGERPRINT_VERSION: fingerprint.version,
                attrs.CRASH_KIND: kind,
            }
        )
        if self.release is not None:
            result[attrs.SERVICE_VERSION] = self.release
        return result

    def _add_frames(
        self, record_attributes: dict[str, AttributeValue], frames: Sequence[Frame]
    ) -> None:
        if frames:
            record_attributes[attrs.CRASH_FRAMES] = json.dumps(
                [self._frame_fields(frame) for frame in frames]
            )

    def _frame_fields(self, frame: Frame) -> dict[str, Any]:
        return {
            "module": frame.module,
            "function": frame.function,
            "filename": self._scrub(frame.filename),
            "lineno": frame.lineno,
            "context_line": self._scrub(frame.context_line),
            "in_app": self.in_app.is_in_app(frame.module, frame.filename),
        }

    def _escaped_context(self, exception_type: str, message: str) -> Context | None:
        if self.escapes is None:
            return None
        try:
            return self.escapes.context_for(exception_type, message)
        except Exception as failure:
            self._count_failure("crash.escaped_context", failure)
            return None

    def _record_on_span(
        self, exc: BaseException, record_attributes: Mapping[str, AttributeValue]
    ) -> bool:
        span = trace.get_current_span()
        if not span.is_recording():
            return False
        # Passed attributes override the SDK's unscrubbed message and stack.
        event_attributes = {
            key: value
            for key, value in record_attributes.items()
            if key.startswith(("exception.", "healthai.crash."))
        }
        span.record_exception(exc, attributes=event_attributes, escaped=True)
        return True

    def _emit(
        self,
        record_attributes: Mapping[str, AttributeValue],
        message: str,
        *,
        fatal: bool,
        timestamp_ns: int | None = None,
        logger: Logger | None = None,
        context: Context | None = None,
    ) -> None:
        severity = SeverityNumber.FATAL if fatal else SeverityNumber.ERROR
        (logger or self._logger()).emit(
            timestamp=timestamp_ns or time.time_ns(),
            observed_timestamp=time.time_ns(),
            context=context or otel_context.get_current(),
            severity_number=severity,
            severity_text=severity.name,
            body=message,
            attributes=dict(record_attributes),
            event_name=_EVENT_NAME,
        )

    def report_suppressed(self) -> dict[str, int]:
        """Emit one WARN record per fingerprint with unreported repeats.

        Called at shutdown so that counts of a storm are not lost. Repeats of
        fingerprints evicted from the rate limiter's table go in one more
        record without a fingerprint.

        Returns:
            The repeats reported, by fingerprint (the evicted total aside).
        """
        pending = self._limiter.drain_suppressed()
        evicted = self._limiter.drain_evicted_suppressed()
        try:
            logger = self._logger()
            for fingerprint, repeats in pending.items():
                logger.emit(
                    timestamp=time.time_ns(),
                    severity_number=SeverityNumber.WARN,
                    severity_text=SeverityNumber.WARN.name,
                    body=f"{repeats} repeats of crash {fingerprint} were suppressed",
                    attributes={
                        attrs.CRASH_FINGERPRINT: fingerprint,
                        attrs.CRASH_FINGERPRINT_VERSION: FINGERPRINT_VERSION,
                        attrs.CRASH_REPEATS: repeats,
                    },
                    event_name="healthai.crash.repeats",
                )
            # Their fingerprints left the limiter's bounded table: one total.
            if evicted:
                logger.emit(
                    timestamp=time.time_ns(),
                    severity_number=SeverityNumber.WARN,
                    severity_text=SeverityNumber.WARN.name,
                    body=f"{evicted} repeats of evicted crash fingerprints "
                    "were suppressed",
                    attributes={attrs.CRASH_REPEATS: evicted},
                    event_name="healthai.crash.repeats",
                )
        except Exception as failure:  # never raise into the host
            self._count_failure("crash.report_suppressed", failure)
        return pending

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Force-flush the providers, within a bounded time; never raises.

        The flush runs in a daemon thread joined with a timeout, so a stuck
        exporter cannot keep a dying process alive.

        Args:
            timeout_seconds: the bound; default ``flush_timeout_seconds``.

        Returns:
            Whether every provider reported a successful flush in time.
        """
        timeout = timeout_seconds or self.flush_timeout_seconds
        flushables: Sequence[Any] = [
            p for p in (self.logger_provider, self._tracer_provider) if p is not None
        ]
        outcome: list[bool] = []

        def run() -> None:
            ok = True
            deadline = time.monotonic() + timeout
            for provider in flushables:
                method = getattr(provider, "force_flush", None)
                if method is None:
                    continue
                remaining_millis = max(1, int((deadline - time.monotonic()) * 1000))
                try:
                    ok = bool(method(remaining_millis)) and ok
                except Exception as failure:  # never raise
                    record_failure("crash.flush", failure)
                    ok = False
            outcome.append(ok)

        worker = threading.Thread(target=run, name="healthai-crash-flush", daemon=True)
        worker.start()
        worker.join(timeout)
        return bool(outcome and outcome[0])

    def stats(self) -> CrashStats:
        """Return the counts kept so far."""
        with self._lock:
            return CrashStats(
                reported=dict(self._reported),
                suppressed=self._limiter.suppressed_total,
                failed=self._failed,
                fingerprints_tracked=len(self._limiter),
            )

    def _count(self, kind: str) -> None:
        with self._lock:
            self._reported[kind] += 1

    def _count_failure(self, where: str, failure: BaseException) -> None:
        with self._lock:
            self._failed += 1
        record_failure(where, failure)
