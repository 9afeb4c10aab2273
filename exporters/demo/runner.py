"""Run the demo: an instrumented model service meeting errors, drift and a crash.

Everything runs in this process by default: spans, log records and metrics go to
in-memory exporters, from which the summary is drawn. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set they are also sent over OTLP/HTTP, so the
demo can feed a real Collector.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from exporters.demo.model import PatientGenerator, ReadmissionModel
from exporters.demo.service import (
    FaultPlan,
    Patient,
    ReadmissionService,
    apply_fault,
)
from otel_processors import attributes as attrs
from otel_processors.enable import EnabledPipeline, enable
from otel_processors.pipeline import PipelineSettings

__all__ = ["PHASES", "DemoResult", "run_demo"]

_logger = logging.getLogger(__name__)

SERVICE_NAME = "readmission-risk-demo"

_OTLP_TIMEOUT_SECONDS = 3
_FLUSH_TIMEOUT_MILLIS = 10_000


@dataclass
class DemoResult:
    """What the demo exported, for its summary and for tests."""

    requests: int = 0
    failed_requests: int = 0
    spans: int = 0
    error_spans: int = 0
    log_records: int = 0
    by_code: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    scrubbed: dict[str, int] = field(default_factory=dict)
    counted_metric: int = 0
    drift_levels: list[str] = field(default_factory=list)
    drift_shifted: list[str] = field(default_factory=list)
    drift_root_causes: list[str] = field(default_factory=list)
    crashes: int = 0
    crash_groups: list[tuple[str, int]] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)


@dataclass
class _Telemetry:
    pipeline: EnabledPipeline
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider


def run_demo(
    out: TextIO,
    *,
    requests: int = 440,
    seed: int = 7,
    phases: tuple[str, ...] = ("errors", "drift", "crash"),
) -> DemoResult:
    """Run the demo and print its progress and summary to ``out``.

    Args:
        out: where to print.
        requests: how many requests the error phase sends.
        seed: seed of the synthetic patients.
        phases: the phases to run, in order.

    Returns:
        What was exported.
    """
    result = DemoResult()
    started = time.monotonic()
    out.write(
        f"healthai-telemetry demo: {SERVICE_NAME}, a readmission-risk model, "
        "instrumented\n"
    )
    telemetry = _set_up_telemetry(out)
    try:
        for phase in phases:
            _PHASES[phase](out, telemetry, result, requests, seed)
            result.phases.append(phase)
    finally:
        telemetry.pipeline.force_flush(_FLUSH_TIMEOUT_MILLIS)
        _collect(telemetry, result)
        telemetry.pipeline.disable()
        telemetry.tracer_provider.shutdown()
        telemetry.logger_provider.shutdown()
        telemetry.meter_provider.shutdown()

    _print_summary(out, result, time.monotonic() - started)
    return result


def _set_up_telemetry(out: TextIO) -> _Telemetry:
    resource = Resource.create(
        {attrs.SERVICE_NAME: SERVICE_NAME, attrs.SERVICE_VERSION: "2.3.1"}
    )
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # unannotated SDK class
    metrics = InMemoryMetricReader()
    span_exporters: list[SpanExporter] = [spans]
    log_exporters: list[LogRecordExporter] = [logs]
    readers: list[MetricReader] = [metrics]
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        problem = _unreachable(endpoint)
        if problem is None:
            _add_otlp(span_exporters, log_exporters, readers)
            out.write(f"  exporting over OTLP/HTTP to {endpoint} as well\n")
        else:
            out.write(
                f"  OTEL_EXPORTER_OTLP_ENDPOINT={endpoint} is unreachable "
                f"({problem}): exporting in memory only\n"
            )

    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    settings = PipelineSettings.from_env()
    pipeline = enable(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        span_exporters=span_exporters,
        log_exporters=log_exporters,
        settings=settings,
        meter_provider=meter_provider,
        logging_handler=True,
        crash_reporting=False,
    )
    return _Telemetry(
        pipeline,
        spans,
        logs,
        metrics,
        tracer_provider,
        logger_provider,
        meter_provider,
    )


def _add_otlp(
    span_exporters: list[SpanExporter],
    log_exporters: list[LogRecordExporter],
    readers: list[MetricReader],
) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.metrics.export import (
        PeriodicExportingMetricReader,
    )

    # The exporters' default timeout (10 s an export, retried with backoff)
    # would keep a demo whose Collector went away running for minutes.
    timeout = _OTLP_TIMEOUT_SECONDS
    span_exporters.append(OTLPSpanExporter(timeout=timeout))
    log_exporters.append(OTLPLogExporter(timeout=timeout))
    readers.append(
        PeriodicExportingMetricReader(
            OTLPMetricExporter(timeout=timeout),
            export_timeout_millis=timeout * 1000,
        )
    )


def _unreachable(endpoint: str) -> str | None:
    """Return why nothing listens at ``endpoint``, or None when something does."""
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        return "not an http:// or https:// URL"

    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=2):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _run_errors_phase(
    out: TextIO, telemetry: _Telemetry, result: DemoResult, requests: int, seed: int
) -> None:
    out.write(f"\n[errors] sending {requests} requests, one in eight with a fault\n")
    service = ReadmissionService(
        ReadmissionModel(), tracer=telemetry.tracer_provider.get_tracer("demo")
    )
    generator = PatientGenerator(seed=seed)
    plan = FaultPlan()
    faults: Counter[str] = Counter()

    for index, features in enumerate(generator.patients(requests)):
        fault = plan.fault_for(index)
        if fault is not None:
            apply_fault(fault, features)
            faults[fault] += 1
        if service.predict(Patient.synthetic(index), features) is None:
            result.failed_requests += 1
        result.requests += 1
        if (index + 1) % 100 == 0 or index + 1 == requests:
            out.write(
                f"  {index + 1}/{requests} requests, {result.failed_requests} failed\n"
            )

    injected = ", ".join(f"{name} x{n}" for name, n in sorted(faults.items()))
    out.write(f"  faults injected: {injected}\n")


def _run_drift_phase(
    out: TextIO, telemetry: _Telemetry, result: DemoResult, requests: int, seed: int
) -> None:
    from exporters.demo.drift_phase import run_drift_phase  # numpy and scipy

    out.write("\n")
    summary = run_drift_phase(out, seed=seed)
    result.drift_levels = [level.name for level in summary.levels]
    result.drift_root_causes = list(summary.root_causes)
    result.drift_shifted = list(summary.shifted_features)


def _run_crash_phase(
    out: TextIO, telemetry: _Telemetry, result: DemoResult, requests: int, seed: int
) -> None:
    from exporters.demo.crash_phase import run_crash_phase

    summary = run_crash_phase(
        out,
        logger_provider=telemetry.logger_provider,
        tracer_provider=telemetry.tracer_provider,
        scrubber=telemetry.pipeline.settings.scrubber,
    )
    result.crashes = summary.crashes
    result.crash_groups = [(g.title, g.count) for g in summary.groups]


_PHASES: dict[str, Callable[[TextIO, _Telemetry, DemoResult, int, int], None]] = {
    "errors": _run_errors_phase,
    "drift": _run_drift_phase,
    "crash": _run_crash_phase,
}
PHASES = tuple(_PHASES)


def _collect(telemetry: _Telemetry, result: DemoResult) -> None:
    spans = telemetry.spans.get_finished_spans()
    result.spans = len(spans)
    for span in spans:
        attributes = span.attributes or {}
        if attrs.ERROR_CODE in attributes:
            result.error_spans += 1

    records = telemetry.logs.get_finished_logs()
    result.log_records = len(records)
    for record in records:
        attributes = record.log_record.attributes or {}
        code = attributes.get(attrs.ERROR_CODE)
        if code is None:
            continue
        key = (
            str(attributes.get(attrs.ERROR_CATEGORY)),
            str(attributes.get(attrs.ERROR_SUBCATEGORY)),
            str(code),
        )
        result.by_code[key] += 1

    result.scrubbed = dict(telemetry.pipeline.settings.scrubber.stats())
    result.counted_metric = _counted(telemetry.metrics)


def _counted(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    if data is None:
        return 0

    total = 0
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != "healthai.errors.classified":
                    continue
                for point in metric.data.data_points:
                    total += int(getattr(point, "value", 0))
    return total


def _print_summary(out: TextIO, result: DemoResult, seconds: float) -> None:
    out.write(f"\nSummary ({seconds:.1f} s)\n")
    out.write(
        f"  requests: {result.requests}, failed: {result.failed_requests}\n"
        f"  exported: {result.spans} spans ({result.error_spans} classified), "
        f"{result.log_records} log records\n"
        f"  healthai.errors.classified counter: {result.counted_metric}\n"
    )
    if result.by_code:
        out.write("  errors logged, by category and code:\n")
        width = max(len(" / ".join(key)) for key in result.by_code)
        for key, count in sorted(result.by_code.items()):
            out.write(f"    {' / '.join(key):<{width}}  {count:>4}\n")
    if result.scrubbed:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.scrubbed.items()) if v)
        out.write(f"  patient data redacted before export: {kinds}\n")
    if result.drift_levels:
        worst = max(result.drift_levels, key=_LEVEL_ORDER.index)
        causes = ", ".join(result.drift_root_causes[:3])
        out.write(
            f"  drift: {len(result.drift_levels)} windows, highest level {worst}; "
            f"shifted {', '.join(result.drift_shifted)}; root cause found: {causes}\n"
        )
    if result.crashes:
        out.write(
            f"  crashes: {result.crashes} worker threads crashed, "
            f"{len(result.crash_groups)} crash groups formed\n"
        )


_LEVEL_ORDER = ["OK", "WARNING", "CRITICAL"]
