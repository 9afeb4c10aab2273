"""Tests for the span exporters that attach the taxonomy and scrub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Status, StatusCode

from otel_processors._guard import failure_counts, reset_failures
from otel_processors.classifier import Classifier
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.exceptions import MissingValueError
from otel_processors.registry import Registry
from otel_processors.scrubber import Scrubber
from otel_processors.spans import (
    ScrubbingSpanExporter,
    TaxonomySpanExporter,
    TaxonomySpanProcessor,
)


class _CountingErrorCounter(ClassifiedErrorCounter):
    def __init__(self) -> None:
        super().__init__()
        self.counted: list[tuple[str, str]] = []

    def add(self, classification: object, *, service: str, signal: str) -> None:
        self.counted.append((classification.code.id, signal))  # type: ignore[attr-defined]


@pytest.fixture
def memory() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def counter() -> _CountingErrorCounter:
    return _CountingErrorCounter()


@pytest.fixture
def provider(
    memory: InMemorySpanExporter, counter: _CountingErrorCounter
) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    exporter = TaxonomySpanExporter(
        memory,
        classifier=Classifier(Registry.builtin()),
        scrubber=Scrubber(),
        error_counter=counter,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def test_exception_event_is_classified_on_the_exported_copy(
    provider: TracerProvider, memory: InMemorySpanExporter
) -> None:
    """An exception recorded by start_as_current_span yields the code's attributes."""
    tracer = provider.get_tracer("test")
    with (
        pytest.raises(MissingValueError),
        tracer.start_as_current_span("extract"),
    ):
        raise MissingValueError("no creatinine")

    result = memory.get_finished_spans()[0].attributes

    assert "DATA_ERROR" == result["healthai.error.category"]
    assert "MISSING_VALUE" == result["healthai.error.subcategory"]
    assert result["healthai.error.code"] == result["error.type"]


def test_status_error_without_exception_is_classified(
    provider: TracerProvider, memory: InMemorySpanExporter
) -> None:
    """A span set to ERROR without an exception still gets a code."""
    with provider.get_tracer("test").start_as_current_span("call") as span:
        span.set_status(Status(StatusCode.ERROR, "upstream said no"))

    attributes = memory.get_finished_spans()[0].attributes or {}

    result = {k: v for k, v in attributes.items() if k.startswith("healthai.error")}

    expected = {
        "healthai.error.category": "UNCLASSIFIED",
        "healthai.error.subcategory": "UNKNOWN",
        "healthai.error.code": "HAI-UNCL-000",
        "healthai.error.severity": "error",
        "healthai.error.retryable": False,
        "healthai.error.remediation": Registry.builtin()
        .codes["HAI-UNCL-000"]
        .remediation,
        "healthai.error.runbook_url": (
            "https://runbooks.healthai.example/errors/HAI-UNCL-000"
        ),
        "healthai.error.fallback": True,
    }
    assert expected == result


def test_instrumentation_error_type_is_kept(
    provider: TracerProvider, memory: InMemorySpanExporter
) -> None:
    """An error.type set by an instrumentation is not overwritten."""
    with provider.get_tracer("test").start_as_current_span("GET") as span:
        span.set_attribute("error.type", "503")
        span.set_status(Status(StatusCode.ERROR))

    result = memory.get_finished_spans()[0].attributes["error.type"]

    assert "503" == result


def test_span_without_error_is_not_classified_nor_counted(
    provider: TracerProvider,
    memory: InMemorySpanExporter,
    counter: _CountingErrorCounter,
) -> None:
    """Healthy spans get no taxonomy attributes and are not counted."""
    with provider.get_tracer("test").start_as_current_span("ok") as span:
        span.set_attribute("model.version", "2.3.1")

    result = dict(memory.get_finished_spans()[0].attributes or {})

    assert {"model.version": "2.3.1"} == result
    assert [] == counter.counted


def test_identifiers_are_scrubbed_from_every_part_of_the_span(
    provider: TracerProvider, memory: InMemorySpanExporter
) -> None:
    """Name, attributes, status and exception text leave without the SSN."""
    ssn = "123-45-6789"
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"lookup {ssn}") as span:
        span.set_attribute("note", f"ssn {ssn}")
        span.record_exception(ValueError(f"bad ssn {ssn}"))
        span.set_status(Status(StatusCode.ERROR, f"ssn {ssn}"))

    exported = memory.get_finished_spans()[0]
    texts = [
        exported.name,
        str(exported.status.description),
        *(str(v) for v in (exported.attributes or {}).values()),
        *(str(v) for e in exported.events for v in (e.attributes or {}).values()),
    ]

    result = [text for text in texts if ssn in text]

    assert [] == result


def test_errors_are_counted_once_per_span(
    provider: TracerProvider, counter: _CountingErrorCounter
) -> None:
    """Each error span is counted once, with signal 'span'."""
    tracer = provider.get_tracer("test")
    for _ in range(3):
        with tracer.start_as_current_span("s") as span:
            span.set_status(Status(StatusCode.ERROR))

    result = [signal for _, signal in counter.counted]

    assert ["span", "span", "span"] == result


def test_dropped_attribute_counts_survive_the_copy(
    memory: InMemorySpanExporter,
) -> None:
    """The copy reports as many dropped attributes as the original."""
    from opentelemetry.sdk.trace import SpanLimits

    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=1))
    provider.add_span_processor(
        SimpleSpanProcessor(ScrubbingSpanExporter(memory, scrubber=Scrubber()))
    )
    with provider.get_tracer("test").start_as_current_span("s") as span:
        span.set_attributes({"a": 1, "b": 2, "c": 3})

    result = memory.get_finished_spans()[0].dropped_attributes

    assert 2 == result


class _FailingScrubber(Scrubber):
    def scrub_attributes(self, attributes: object) -> dict[str, object]:  # type: ignore[override]
        raise RuntimeError("scrubber broke")


def test_scrubber_failure_withholds_text_and_keeps_the_span(
    memory: InMemorySpanExporter,
) -> None:
    """When scrubbing fails the span still leaves, with its strings withheld."""
    reset_failures()
    exporter = ScrubbingSpanExporter(memory, scrubber=_FailingScrubber())
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("s") as span:
        span.set_attributes({"note": "ssn 123-45-6789", "attempt": 2})

    result = dict(memory.get_finished_spans()[0].attributes or {})

    assert {"note": "[REDACTED:SCRUB_FAILED]", "attempt": 2} == result
    assert 1 == failure_counts()["span.rewrite"]


def test_batch_processor_exports_enriched_spans(memory: InMemorySpanExporter) -> None:
    """TaxonomySpanProcessor is a batch processor whose exports carry the taxonomy."""
    provider = TracerProvider()
    provider.add_span_processor(
        TaxonomySpanProcessor(
            memory, classifier=Classifier(Registry.builtin()), scrubber=Scrubber()
        )
    )
    with provider.get_tracer("test").start_as_current_span("s") as span:
        span.record_exception(MemoryError("out of memory"))
        span.set_status(Status(StatusCode.ERROR))
    provider.force_flush()

    result = memory.get_finished_spans()[0].attributes["healthai.error.subcategory"]

    assert "RESOURCE_EXHAUSTION" == result
    provider.shutdown()


def test_constructor_rejects_a_non_exporter() -> None:
    """Passing something that is not an exporter fails at once."""
    with pytest.raises(ValueError, match="SpanExporter"):
        TaxonomySpanExporter(object())  # type: ignore[arg-type]


_hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1),
    st.binary().map(lambda b: b.decode("utf-8", errors="surrogateescape")),
    st.integers(min_value=10_000, max_value=300_000).map(lambda n: "9" * n),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=_hostile_text, type_name=_hostile_text)
def test_hostile_exception_events_never_break_the_export(
    message: str, type_name: str
) -> None:
    """Any exception text exports one span and raises nothing."""
    memory = InMemorySpanExporter()
    exporter: SpanExporter = TaxonomySpanExporter(
        memory,
        classifier=Classifier(Registry.builtin()),
        scrubber=Scrubber(),
        error_counter=_CountingErrorCounter(),
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("s") as span:
        span.add_event(
            "exception",
            {"exception.type": type_name, "exception.message": message},
        )
        span.set_status(Status(StatusCode.ERROR, message[:100]))
    provider.force_flush()

    result = memory.get_finished_spans()

    assert 1 == len(result)
    assert "healthai.error.code" in (result[0].attributes or {})
    provider.shutdown()


def test_span_already_known_clean_is_exported_without_a_copy(
    memory: InMemorySpanExporter,
) -> None:
    """The second identical clean span goes out as the SDK's own object."""
    exporter = ScrubbingSpanExporter(memory, scrubber=Scrubber())
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for _ in range(2):
        with tracer.start_as_current_span("GET /v1/predict") as span:
            span.set_attribute("http.route", "/v1/predict")

    first, second = memory.get_finished_spans()

    result = type(second).__name__

    assert "_RewrittenSpan" == type(first).__name__
    assert "ReadableSpan" == result


def test_new_value_of_a_known_clean_key_is_still_scrubbed(
    memory: InMemorySpanExporter,
) -> None:
    """Remembering a clean value of a key does not let other values through."""
    exporter = ScrubbingSpanExporter(memory, scrubber=Scrubber())
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for note in ("all fine", "all fine", "ssn 123-45-6789"):
        with tracer.start_as_current_span("s") as span:
            span.set_attribute("note", note)

    result = memory.get_finished_spans()[-1].attributes["note"]

    assert "ssn [REDACTED:SSN]" == result
