"""The ``opentelemetry_configurator`` entry point: the project without code changes.

Run a service as ``opentelemetry-instrument python app.py`` with this package
installed and ``OTEL_PYTHON_CONFIGURATOR=healthai`` (the project's distro sets
it when it is the distro in use): the SDK is set up from the usual ``OTEL_*``
variables, and in addition

- every span exporter is wrapped by ``TaxonomySpanExporter`` behind the batch
  processor, so error spans are classified and all spans scrubbed off the
  request thread;
- ``TaxonomyLogRecordProcessor`` is registered before the exporting log
  processors, and ``HealthAILoggingHandler`` sends Python logging to them (in
  place of the handlers of the SDK and of opentelemetry-instrumentation-logging,
  which would duplicate every record);
- the crash hooks are installed, and the first log exporter confirms the
  delivery of the reports fatal signals left in the crash spool.

An invalid setting or registry file fails the configuration with a message
naming the file, entry and problem; ``opentelemetry-instrument`` logs it and
the service runs uninstrumented, as it does for any failing configurator.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import get_tracer_provider

from otel_processors.enable import install_crash_reporting
from otel_processors.logs import HealthAILoggingHandler, TaxonomyLogRecordProcessor
from otel_processors.pipeline import PipelineSettings
from otel_processors.spans import TaxonomySpanExporter

__all__ = ["HealthAIConfigurator"]

_logger = logging.getLogger(__name__)

_LOGGING_INSTRUMENTATION_HANDLER = "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"


class HealthAIConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator with the taxonomy, scrubbing and crash hooks added."""

    def _configure(self, **kwargs: Any) -> None:
        settings = PipelineSettings.from_env()

        def export_span_processor(exporter: SpanExporter) -> BatchSpanProcessor:
            return BatchSpanProcessor(
                TaxonomySpanExporter(
                    exporter,
                    classifier=settings.classifier,
                    scrubber=settings.scrubber,
                )
            )

        # Remember the log exporters the SDK builds: the crash spool sends the
        # reports of fatal signals through one and needs its export result.
        log_exporters: list[LogRecordExporter] = []

        def export_log_record_processor(
            exporter: LogRecordExporter,
        ) -> BatchLogRecordProcessor:
            log_exporters.append(exporter)
            return BatchLogRecordProcessor(exporter)

        taxonomy_logs = TaxonomyLogRecordProcessor(
            classifier=settings.classifier, scrubber=settings.scrubber
        )
        kwargs.setdefault("export_span_processor", export_span_processor)
        kwargs.setdefault("export_log_record_processor", export_log_record_processor)
        kwargs["log_record_processors"] = [
            taxonomy_logs,
            *kwargs.get("log_record_processors", ()),
        ]
        # The SDK's own handler writes bare exception class names; ours is
        # installed below instead.
        kwargs["setup_logging_handler"] = False
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]  # the SDK method is unannotated

        logger_provider = get_logger_provider()
        tracer_provider = get_tracer_provider()
        if settings.logging_handler and isinstance(logger_provider, LoggerProvider):
            _install_logging_handler(logger_provider)
            # opentelemetry-instrumentation-logging, loaded after this, would
            # add a second handler and every record would be exported twice.
            os.environ[_LOGGING_INSTRUMENTATION_HANDLER] = "false"
        if settings.crash_reporting:
            install_crash_reporting(
                settings,
                tracer_provider
                if isinstance(tracer_provider, TracerProvider)
                else None,
                logger_provider
                if isinstance(logger_provider, LoggerProvider)
                else None,
                spool_exporter=log_exporters[0] if log_exporters else None,
            )
        _logger.debug("healthai-telemetry configured the OpenTelemetry SDK")


def _install_logging_handler(logger_provider: LoggerProvider) -> None:
    handler = HealthAILoggingHandler(logger_provider=logger_provider)
    logging.getLogger().addHandler(handler)

    # logging.basicConfig() and dictConfig() would otherwise remove the handler;
    # the logging instrumentation guards its own handler the same way.
    from opentelemetry.instrumentation.logging import handler as upstream

    keep_handler = getattr(upstream, "_overwrite_logging_config_fns", None)
    if keep_handler is not None:
        keep_handler(handler)
