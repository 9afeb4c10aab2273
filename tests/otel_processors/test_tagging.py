"""Tests for tagging spans and log records with an error code by hand."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

from otel_processors import attributes as attrs
from otel_processors._guard import failure_counts, reset_failures
from otel_processors.classifier import Classifier
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.logs import HealthAILoggingHandler, TaxonomyLogRecordProcessor
from otel_processors.registry import Registry
from otel_processors.scrubber import Scrubber
from otel_processors.spans import TaxonomySpanExporter
from otel_processors.tagging import log_extra, tag_error


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A real SDK tracer provider exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_tags_the_current_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Without ``span=``, the current span gets ``healthai.error.code``."""
    provider, exporter = spans
    with provider.get_tracer("test").start_as_current_span("score"):
        tag_error("HAI-PRED-201")

    result = exporter.get_finished_spans()[0].attributes

    assert result is not None
    expected = "HAI-PRED-201"
    assert expected == result[attrs.ERROR_CODE]


def test_tags_the_given_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """``span=`` tags that span, not the current one."""
    provider, exporter = spans
    tracer = provider.get_tracer("test")
    target = tracer.start_span("fetch labs")
    with tracer.start_as_current_span("outer"):
        tag_error("HAI-SYS-101", span=target)
    target.end()

    result = {
        span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()
    }

    expected = {"outer": {}, "fetch labs": {attrs.ERROR_CODE: "HAI-SYS-101"}}
    assert expected == result


def test_ended_span_is_left_alone(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Tagging an ended span does nothing and logs no SDK warning."""
    provider, exporter = spans
    span = provider.get_tracer("test").start_span("done")
    span.end()

    tag_error("HAI-SYS-101", span=span)

    expected: tuple[dict[str, object], list[str]] = ({}, [])
    assert expected == (
        dict(exporter.get_finished_spans()[0].attributes or {}),
        [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING],
    )


def test_unsampled_span_is_a_no_op() -> None:
    """A non-recording span (not sampled) is not tagged and nothing fails."""
    provider = TracerProvider(sampler=ALWAYS_OFF)
    reset_failures()
    with provider.get_tracer("test").start_as_current_span("unsampled") as span:
        tag_error("HAI-SYS-101")

    result = (span.is_recording(), failure_counts())

    expected = (False, {})
    assert expected == result


class _BrokenSpan(NonRecordingSpan):
    """A span that claims to record but fails to, standing in for a broken SDK."""

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: object) -> None:
        raise RuntimeError("broken span")


def test_failure_is_counted_not_raised() -> None:
    """A failing span does not raise into the caller; the failure is counted."""
    reset_failures()

    tag_error("HAI-SYS-101", span=_BrokenSpan(INVALID_SPAN_CONTEXT))

    expected = {"taxonomy.tag_error": 1}
    assert expected == failure_counts()


def test_log_extra_becomes_a_log_record_attribute_the_classifier_uses() -> None:
    """OTel's logging handler turns the extra key into an attribute that wins."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("tests.tagging")
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        try:
            raise TimeoutError("lab service slow")
        except TimeoutError:
            logger.exception("No labs", extra=log_extra("HAI-DATA-401"))
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    record = exporter.get_finished_logs()[0].log_record
    attributes = dict(record.attributes or {})

    result = Classifier(Registry.builtin()).classify(
        str(attributes.get(attrs.EXCEPTION_TYPE)),
        str(attributes.get(attrs.EXCEPTION_MESSAGE)),
        attributes=attributes,
    )

    expected = ("TimeoutError", "HAI-DATA-401")
    assert expected == (attributes[attrs.EXCEPTION_TYPE], result.code.id)


def test_log_extra_is_a_fresh_dict() -> None:
    """Each call returns a new dict the caller may extend."""
    first = log_extra("HAI-SYS-101")
    first["other"] = "x"

    result = log_extra("HAI-SYS-101")

    expected = {attrs.ERROR_CODE: "HAI-SYS-101"}
    assert expected == result


def _data_points(reader: InMemoryMetricReader) -> dict[tuple[str, ...], int]:
    data = reader.get_metrics_data()
    points: dict[tuple[str, ...], int] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    labels = dict(point.attributes or {})
                    key = tuple(str(labels[name]) for name in _COUNTER_LABELS)
                    points[key] = int(point.value)  # type: ignore[union-attr]
    return points


_COUNTER_LABELS = (
    "service.name",
    attrs.ERROR_CATEGORY,
    attrs.ERROR_SUBCATEGORY,
    attrs.ERROR_CODE,
    "healthai.signal",
)


_CLASSIFICATION_KEYS = (
    attrs.ERROR_CATEGORY,
    attrs.ERROR_SUBCATEGORY,
    attrs.ERROR_CODE,
    attrs.ERROR_SEVERITY,
    attrs.ERROR_RETRYABLE,
    attrs.ERROR_RUNBOOK_URL,
    attrs.ERROR_FALLBACK,
    attrs.ERROR_TYPE,
)


@pytest.fixture
def meters() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    """A real meter provider and reader behind the classified-error counter."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield meter_provider, reader
    meter_provider.shutdown()


def _taxonomy_spans(
    meter_provider: MeterProvider,
) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider whose spans pass the taxonomy on their way to memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "risk"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            TaxonomySpanExporter(
                memory,
                classifier=Classifier(Registry.builtin()),
                scrubber=Scrubber(),
                error_counter=ClassifiedErrorCounter(meter_provider),
            )
        )
    )
    return provider, memory


def test_tagged_span_without_error_status_is_classified_and_counted(
    meters: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    """A span tagged by hand gets the whole classification and one count."""
    provider, memory = _taxonomy_spans(meters[0])
    with provider.get_tracer("test").start_as_current_span("fetch labs"):
        tag_error("HAI-SYS-101")
    provider.shutdown()
    exported = dict(memory.get_finished_spans()[0].attributes or {})

    result = (
        {key: exported.get(key) for key in _CLASSIFICATION_KEYS},
        _data_points(meters[1]),
    )

    expected = (
        {
            attrs.ERROR_CATEGORY: "SYSTEM_ERROR",
            attrs.ERROR_SUBCATEGORY: "DEPENDENCY_UNAVAILABLE",
            attrs.ERROR_CODE: "HAI-SYS-101",
            attrs.ERROR_SEVERITY: "error",
            attrs.ERROR_RETRYABLE: True,
            attrs.ERROR_RUNBOOK_URL: (
                "https://runbooks.healthai.example/errors/HAI-SYS-101"
            ),
            attrs.ERROR_FALLBACK: False,
            attrs.ERROR_TYPE: "HAI-SYS-101",
        },
        {
            (
                "risk",
                "SYSTEM_ERROR",
                "DEPENDENCY_UNAVAILABLE",
                "HAI-SYS-101",
                "span",
            ): 1
        },
    )
    assert expected == result


def _log_error(
    meter_provider: MeterProvider, message: str, extra: dict[str, str] | None
) -> dict[str, object]:
    """Log one error through the taxonomy; return the exported attributes."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "risk"}))
    provider.add_log_record_processor(
        TaxonomyLogRecordProcessor(
            classifier=Classifier(Registry.builtin()),
            scrubber=Scrubber(),
            error_counter=ClassifiedErrorCounter(meter_provider),
        )
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger("tests.tagging.logged")
    logger.propagate = False
    handler = HealthAILoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.error(message, extra=extra)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return dict(memory.get_finished_logs()[0].log_record.attributes or {})


def test_tagged_log_record_without_exception_is_classified_and_counted(
    meters: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    """``logger.error(..., extra=log_extra(code))`` is classified by that code."""
    exported = _log_error(meters[0], "No recent vitals", log_extra("HAI-DATA-401"))

    result = (
        exported.get(attrs.ERROR_SUBCATEGORY),
        exported.get(attrs.ERROR_REMEDIATION) is not None,
        _data_points(meters[1]),
    )

    expected = (
        "STALE_INPUT",
        True,
        {("risk", "DATA_ERROR", "STALE_INPUT", "HAI-DATA-401", "log"): 1},
    )
    assert expected == result


def test_untagged_log_record_without_exception_is_not_classified(
    meters: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    """An ordinary error log with no exception and no code stays unclassified."""
    exported = _log_error(meters[0], "Queue is getting long", None)

    result = (attrs.ERROR_CODE in exported, _data_points(meters[1]))

    expected = (False, {})
    assert expected == result


def test_every_tagged_span_is_classified_even_after_clean_ones(
    meters: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    """Spans remembered as clean do not hide a later span tagged with a code."""
    provider, memory = _taxonomy_spans(meters[0])
    tracer = provider.get_tracer("test")
    for tagged in (False, False, True, True):
        with tracer.start_as_current_span("fetch labs") as span:
            span.set_attribute("model.name", "readmission-risk")
            if tagged:
                tag_error("HAI-SYS-101")
    provider.shutdown()

    result = (
        [
            dict(s.attributes or {}).get(attrs.ERROR_CATEGORY)
            for s in memory.get_finished_spans()
        ],
        sum(_data_points(meters[1]).values()),
    )

    expected = ([None, None, "SYSTEM_ERROR", "SYSTEM_ERROR"], 2)
    assert expected == result
