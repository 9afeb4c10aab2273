"""Error taxonomy and PHI scrubbing for log records.

Unlike spans, a log record may be changed in ``LogRecordProcessor.on_emit``. The
batch processor copies a record when it queues it, though, so these processors
must be registered *before* the exporting one::

    provider.add_log_record_processor(TaxonomyLogRecordProcessor())
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))

``on_emit`` runs on the thread that logs. Classification is cached, so the
steady state costs a dictionary look-up; the body and attributes are scrubbed
there too, since nothing later in the SDK pipeline can change them.

``HealthAILoggingHandler`` is the logging handler of
``opentelemetry-instrumentation-logging`` with three corrections:
``exception.type`` is module-qualified, as on spans and as the semantic
conventions ask; the exception object reaches the taxonomy processor (in a
context variable, for the duration of the emit) so that the classifier can
match subclasses through the MRO; and an exception the crash reporter has
already reported (asyncio logs the crashes its loop handler saw) is exported as
a plain log record, without the ``exception.*`` attributes, so that one crash
is not counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar

from opentelemetry._logs import LogRecord
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.util.types import AnyValue

from otel_processors import attributes as attrs
from otel_processors._guard import record_failure
from otel_processors.classifier import Classification, Classifier
from otel_processors.crash.report import reported_as_crash
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.scrubber import Scrubber

__all__ = [
    "HealthAILoggingHandler",
    "ScrubbingLogRecordProcessor",
    "TaxonomyLogRecordProcessor",
]

_SCRUB_FAILED = "[REDACTED:SCRUB_FAILED]"

_logged_exception: ContextVar[BaseException | None] = ContextVar(
    "healthai_logged_exception", default=None
)
"""The exception of the record ``HealthAILoggingHandler`` is emitting, if any."""


class ScrubbingLogRecordProcessor(LogRecordProcessor):
    """Remove patient data from log bodies and attributes as they are emitted.

    Args:
        scrubber: the scrubber to use; one configured from the environment
            when None.
    """

    def __init__(self, *, scrubber: Scrubber | None = None) -> None:
        self._scrubber = scrubber if scrubber is not None else Scrubber.from_env()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Scrub the record in place; never raises."""
        try:
            _scrub_record(log_record.log_record, self._scrubber)
        except Exception as exc:
            record_failure("log.scrub", exc)
            _withhold_record(log_record.log_record)

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


class TaxonomyLogRecordProcessor(ScrubbingLogRecordProcessor):
    """Classify log records that carry an exception, then scrub every record.

    A record carries an exception when it was emitted with one (the Logs API's
    ``exception=`` argument, or ``HealthAILoggingHandler``) or when it has an
    ``exception.type`` attribute (the SDK's logging handler writes the bare class
    name there). An explicit ``healthai.error.code`` attribute, e.g. from
    ``logger.error(..., extra=log_extra("HAI-..."))``, takes precedence.

    Args:
        classifier: the classifier to use; one over the default registry when
            None.
        scrubber: the scrubber to use; one configured from the environment
            when None.
        error_counter: where classified errors are counted; a counter on the
            global meter provider when None.
    """

    def __init__(
        self,
        *,
        classifier: Classifier | None = None,
        scrubber: Scrubber | None = None,
        error_counter: ClassifiedErrorCounter | None = None,
    ) -> None:
        super().__init__(scrubber=scrubber)
        self._classifier = classifier if classifier is not None else Classifier()
        self._counter = error_counter or ClassifiedErrorCounter()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Classify (when there is an error) and scrub, in place; never raises."""
        try:
            self._classify_into(log_record)
        except Exception as exc:
            record_failure("log.classify", exc)
        super().on_emit(log_record)

    def _classify_into(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        attributes = record.attributes or {}
        exception = getattr(record, "exception", None) or _logged_exception.get()
        tagged = attrs.ERROR_CODE in attributes
        if exception is None and attrs.EXCEPTION_TYPE not in attributes and not tagged:
            return

        classification = self._classify(record, attributes, exception, log_record)
        for key, value in classification.attributes().items():
            if key == attrs.ERROR_TYPE and key in attributes:
                continue
            record.attributes[key] = value  # type: ignore[index]  # ReadWriteLogRecord attributes are mutable

        service = ""
        if log_record.resource is not None:
            service = str(log_record.resource.attributes.get(attrs.SERVICE_NAME, ""))
        self._counter.add(classification, service=service, signal="log")

    def _classify(
        self,
        record: LogRecord,
        attributes: Mapping[str, AnyValue],
        exception: BaseException | None,
        log_record: ReadWriteLogRecord,
    ) -> Classification:
        scope = log_record.instrumentation_scope
        scope_name = scope.name if scope is not None else None
        if isinstance(exception, BaseException):
            return self._classifier.classify_exception(
                exception, attributes=attributes, scope=scope_name
            )

        exception_type = attributes.get(attrs.EXCEPTION_TYPE)
        message = attributes.get(attrs.EXCEPTION_MESSAGE)
        if not isinstance(message, str):
            message = record.body if isinstance(record.body, str) else None
        return self._classifier.classify(
            exception_type if isinstance(exception_type, str) else None,
            message,
            attributes=attributes,
            scope=scope_name,
        )


class HealthAILoggingHandler(LoggingHandler):
    """The OpenTelemetry logging handler, with qualified types and the exception.

    Install it on the root logger (``opentelemetry-instrument`` does so through
    the project's configurator), at the level the service logs at.
    """

    def _get_attributes(
        self, record: logging.LogRecord
    ) -> tuple[dict[str, AnyValue], str | None]:
        attributes, event_name = super()._get_attributes(record)
        if not record.exc_info or record.exc_info[0] is None:
            return attributes, event_name

        if _is_reported_crash(record):
            for key in [k for k in attributes if k.startswith("exception.")]:
                del attributes[key]
            return attributes, event_name
        attributes[attrs.EXCEPTION_TYPE] = _qualified_name(record.exc_info[0])
        return attributes, event_name

    def emit(self, record: logging.LogRecord) -> None:
        """Emit the record; a failure is counted, never raised into the caller."""
        # The exception reaches the processors beside the record, not on it:
        # the SDK formats an exception attached to a record a second time,
        # which would double the cost of every logged exception.
        exception = record.exc_info[1] if record.exc_info else None
        if not isinstance(exception, BaseException) or _is_reported_crash(record):
            exception = None
        token = _logged_exception.set(exception)
        try:
            super().emit(record)
        except Exception as exc:
            record_failure("log.handler", exc)
        finally:
            _logged_exception.reset(token)


def _is_reported_crash(record: logging.LogRecord) -> bool:
    exception = record.exc_info[1] if record.exc_info else None
    return isinstance(exception, BaseException) and reported_as_crash(exception)


def _qualified_name(cls: type) -> str:
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if not module or module == "builtins":
        return str(qualname)
    return f"{module}.{qualname}"


def _scrub_record(record: LogRecord, scrubber: Scrubber) -> None:
    if isinstance(record.body, str):
        record.body = scrubber.scrub(record.body)
    elif record.body is not None:
        record.body = scrubber.scrub_value(record.body)

    if record.attributes:
        original = record.attributes
        scrubbed = scrubber.scrub_attributes(original)
        for key, value in scrubbed.items():
            # Writing to the SDK's bounded attributes costs a lock and a
            # validation each: only what scrubbing changed is written back.
            if value is not original.get(key):
                record.attributes[key] = value  # type: ignore[index]  # mutable on emit


def _withhold_record(record: LogRecord) -> None:
    if record.body is not None:
        record.body = _SCRUB_FAILED
    for key, value in list((record.attributes or {}).items()):
        if not isinstance(value, (bool, int, float)):
            record.attributes[key] = _SCRUB_FAILED  # type: ignore[index]  # mutable on emit
