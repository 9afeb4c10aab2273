"""Tests for ``enable()``, the one call for services that set up the SDK."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from otel_processors import attributes as attrs
from otel_processors._guard import failure_counts, record_failure, reset_failures
from otel_processors.enable import EnabledPipeline, enable
from otel_processors.errors import ConfigurationError
from otel_processors.exceptions import MissingValueError


@pytest.fixture
def pipeline() -> Iterator[
    tuple[EnabledPipeline, InMemorySpanExporter, InMemoryLogRecordExporter]
]:
    """Real SDK providers handed to ``enable`` with in-memory exporters."""
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # unannotated SDK class
    tracer_provider = TracerProvider()
    logger_provider = LoggerProvider()
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    enabled = enable(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        span_exporters=[spans],
        log_exporters=[logs],
        meter_provider=meter_provider,
        logging_handler=True,
        crash_reporting=False,
    )
    yield enabled, spans, logs
    enabled.disable()
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()


@pytest.mark.parametrize(
    "arguments",
    [
        {"span_exporters": [InMemorySpanExporter()]},
        {"log_exporters": [InMemoryLogRecordExporter()]},  # type: ignore[no-untyped-call]  # unannotated SDK class
    ],
)
def test_exporters_without_their_provider_are_refused(
    arguments: dict[str, object],
) -> None:
    """Exporters without the provider they belong to raise ValueError at once."""
    with pytest.raises(ValueError, match="need a"):
        enable(crash_reporting=False, **arguments)  # type: ignore[arg-type]


def test_logged_and_traced_errors_leave_classified(
    pipeline: tuple[EnabledPipeline, InMemorySpanExporter, InMemoryLogRecordExporter],
) -> None:
    """A span and a logged exception both reach their exporters with the code."""
    enabled, spans, logs = pipeline
    tracer = enabled.tracer_provider.get_tracer("test")  # type: ignore[union-attr]  # set by the fixture
    logger = logging.getLogger("tests.enable")
    try:
        with tracer.start_as_current_span("score"):
            raise MissingValueError("no creatinine in the last 48 hours")
    except MissingValueError:
        logger.exception("Scoring failed")
    enabled.force_flush()

    result = (
        [
            dict(s.attributes or {}).get(attrs.ERROR_CODE)
            for s in spans.get_finished_spans()
        ],
        [
            dict(r.log_record.attributes or {}).get(attrs.ERROR_CODE)
            for r in logs.get_finished_logs()
        ],
    )

    expected = (["HAI-DATA-201"], ["HAI-DATA-201"])
    assert expected == result


def test_disable_removes_the_logging_handler(
    pipeline: tuple[EnabledPipeline, InMemorySpanExporter, InMemoryLogRecordExporter],
) -> None:
    """After ``disable`` the root logger no longer holds the project's handler."""
    enabled, _, _ = pipeline
    handler = enabled.logging_handler
    installed = handler in logging.getLogger().handlers

    enabled.disable()

    result = (installed, handler in logging.getLogger().handlers)
    expected = (True, False)
    assert expected == result


def test_bad_registry_in_the_environment_fails_at_enable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken file named by HEALTHAI_ERROR_REGISTRY stops ``enable`` by name."""
    registry = tmp_path / "codes.yaml"
    registry.write_text(
        "codes:\n  - id: ACME-DATA-015\n    category: DATA_ERROR\n"
        "    subcategory: TIMEOUT\n    severity: warning\n"
    )
    monkeypatch.setenv("HEALTHAI_ERROR_REGISTRY", str(registry))

    with pytest.raises(ConfigurationError) as raised:
        enable(tracer_provider=TracerProvider(), crash_reporting=False)

    assert str(registry) in str(raised.value)
    assert "entry 0, id 'ACME-DATA-015'" in str(raised.value)
    assert "subcategory 'TIMEOUT' is not in category 'DATA_ERROR'" in str(raised.value)


def test_a_repeated_failure_is_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first failure of a step is logged with its traceback; later ones count."""
    reset_failures()
    with caplog.at_level(logging.ERROR, logger="otel_processors._guard"):
        for _ in range(3):
            record_failure("test.step", RuntimeError("broken"))

    result = (
        [r.getMessage() for r in caplog.records if r.name == "otel_processors._guard"],
        failure_counts(),
    )

    expected = (
        ["Failure in test.step; later failures here are counted, not logged"],
        {"test.step": 3},
    )
    assert expected == result
    reset_failures()
