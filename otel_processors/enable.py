"""One call that switches the project on in a service that sets up the SDK itself.

::

    from otel_processors import enable

    handle = enable(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        span_exporters=[OTLPSpanExporter()],
        log_exporters=[OTLPLogExporter()],
    )

Give ``enable`` the exporters rather than adding processors for them yourself:
the taxonomy is attached on the export path, by wrapping each exporter, so a
processor already added around a bare exporter cannot be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_processors._guard import record_failure
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.logs import HealthAILoggingHandler, TaxonomyLogRecordProcessor
from otel_processors.pipeline import PipelineSettings
from otel_processors.spans import TaxonomySpanExporter

__all__ = ["EnabledPipeline", "enable", "install_crash_reporting"]

_logger = logging.getLogger(__name__)


@dataclass
class EnabledPipeline:
    """What ``enable`` installed, so that it can be flushed and removed."""

    settings: PipelineSettings
    tracer_provider: TracerProvider | None
    logger_provider: LoggerProvider | None
    logging_handler: logging.Handler | None = None
    crash_reporter: Any = None
    span_exporters: list[TaxonomySpanExporter] = field(default_factory=list)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush both providers; True when both flushed in time."""
        flushed = True
        if self.tracer_provider is not None:
            flushed = self.tracer_provider.force_flush(timeout_millis) and flushed
        if self.logger_provider is not None:
            flushed = self.logger_provider.force_flush(timeout_millis) and flushed
        return flushed

    def disable(self) -> None:
        """Remove the logging handler and crash hooks (providers are left alone)."""
        if self.logging_handler is not None:
            logging.getLogger().removeHandler(self.logging_handler)
            self.logging_handler = None
        if self.crash_reporter is not None:
            from otel_processors import crash

            crash.uninstall()
            self.crash_reporter = None


def enable(
    *,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    span_exporters: Sequence[SpanExporter] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
    settings: PipelineSettings | None = None,
    meter_provider: MeterProvider | None = None,
    logging_handler: bool | None = None,
    crash_reporting: bool | None = None,
) -> EnabledPipeline:
    """Attach the taxonomy and scrubbing to the given providers.

    Args:
        tracer_provider: spans of this provider are classified and scrubbed
            on their way to ``span_exporters``.
        logger_provider: log records of this provider are classified and
            scrubbed, then sent to ``log_exporters``.
        span_exporters: each is wrapped and added behind a batch processor.
        log_exporters: each is added behind a batch processor, after the
            taxonomy processor.
        settings: the classifier and scrubber to use; read from the
            environment when None.
        meter_provider: where classified errors are counted; the global
            provider when None.
        logging_handler: install ``HealthAILoggingHandler`` on the root logger
            (default: the settings' choice; needs ``logger_provider``).
        crash_reporting: install the crash hooks (default: the settings' choice).

    Returns:
        The installed pipeline.

    Raises:
        ValueError: when exporters are given without their provider.
        otel_processors.errors.ConfigurationError: when the environment holds
            an invalid setting or registry file.
    """
    if span_exporters and tracer_provider is None:
        msg = "span_exporters need a tracer_provider"
        raise ValueError(msg)
    if log_exporters and logger_provider is None:
        msg = "log_exporters need a logger_provider"
        raise ValueError(msg)

    settings = settings or PipelineSettings.from_env()
    pipeline = EnabledPipeline(settings, tracer_provider, logger_provider)
    counter = ClassifiedErrorCounter(meter_provider)

    # Spans: the exporter is wrapped, so enrichment runs on the batch thread.
    for exporter in span_exporters:
        wrapped = TaxonomySpanExporter(
            exporter,
            classifier=settings.classifier,
            scrubber=settings.scrubber,
            error_counter=counter,
        )
        pipeline.span_exporters.append(wrapped)
        tracer_provider.add_span_processor(BatchSpanProcessor(wrapped))  # type: ignore[union-attr]  # checked above

    # Logs: the taxonomy processor must come before the exporting ones.
    if logger_provider is not None:
        logger_provider.add_log_record_processor(
            TaxonomyLogRecordProcessor(
                classifier=settings.classifier,
                scrubber=settings.scrubber,
                error_counter=counter,
            )
        )
        for log_exporter in log_exporters:
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(log_exporter)
            )

    use_handler = (
        settings.logging_handler if logging_handler is None else logging_handler
    )
    if use_handler and logger_provider is not None:
        pipeline.logging_handler = HealthAILoggingHandler(
            logger_provider=logger_provider
        )
        logging.getLogger().addHandler(pipeline.logging_handler)

    use_crash = settings.crash_reporting if crash_reporting is None else crash_reporting
    if use_crash:
        pipeline.crash_reporter = install_crash_reporting(
            settings,
            tracer_provider,
            logger_provider,
            spool_exporter=log_exporters[0] if log_exporters else None,
        )
    return pipeline


def install_crash_reporting(
    settings: PipelineSettings,
    tracer_provider: TracerProvider | None,
    logger_provider: LoggerProvider | None,
    *,
    spool_exporter: LogRecordExporter | None = None,
) -> Any:
    """Install the crash hooks; return the reporter, or None when that failed.

    Args:
        settings: the scrubber comes from here.
        tracer_provider: flushed after a fatal crash.
        logger_provider: where crash records go.
        spool_exporter: the exporter that confirms delivery of reports left by
            fatal signals; without it, a report counts as sent when the
            provider's flush returns, even if the export failed.
    """
    try:
        from otel_processors import crash

        return crash.install(
            logger_provider=logger_provider,
            tracer_provider=tracer_provider,
            scrubber=settings.scrubber,
            spool_exporter=spool_exporter,
        )
    except Exception as exc:
        record_failure("crash.install", exc)
        return None
