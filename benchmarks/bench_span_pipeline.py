"""Per-span CPU cost of the taxonomy and scrubbing, against the same pipeline without.

Both pipelines are a ``TracerProvider`` with a ``BatchSpanProcessor`` whose
exporter encodes the batch to OTLP protobuf and discards the bytes (no network,
so the measurement is CPU, not I/O). The candidate wraps that exporter in
``TaxonomySpanExporter``. The two run alternately in one process, repeats
interleaved, and the medians and their ratio are reported for:

- the request thread: CPU time of the thread that creates the spans
  (``time.thread_time_ns``), which is what a request pays;
- the whole process: CPU time of all threads until the batch processor has
  exported everything (``time.process_time_ns``), which is what the host pays.

Workloads: spans without errors (six attributes, as an HTTP server span has),
the same with a ``url.path`` that differs on every span (so nothing is
remembered as clean and every span is scrubbed and copied), and error spans
(an exception raised inside ``start_as_current_span``, recorded by the SDK).
Run::

    .venv/bin/python -m benchmarks.bench_span_pipeline [--spans 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Tracer

from otel_processors.classifier import Classifier
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.registry import Registry
from otel_processors.scrubber import Scrubber
from otel_processors.spans import TaxonomySpanExporter


class EncodingExporter(SpanExporter):
    """Encode each batch as an OTLP exporter would, then drop it."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _ok_spans(tracer: Tracer, n: int) -> None:
    for i in range(n):
        with tracer.start_as_current_span("GET /v1/predict") as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("http.route", "/v1/predict")
            span.set_attribute("http.response.status_code", 200)
            span.set_attribute("model.name", "readmission-risk")
            span.set_attribute("model.version", "2.3.1")
            span.set_attribute("request.batch_size", i % 8)


def _unique_spans(tracer: Tracer, n: int) -> None:
    # A path with a per-request id defeats the memo of clean values: every
    # span is scrubbed and copied on the batch thread.
    for i in range(n):
        with tracer.start_as_current_span("GET /v1/encounters/{id}") as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("url.path", f"/v1/encounters/enc-{i:08d}/risk")
            span.set_attribute("http.route", "/v1/encounters/{id}/risk")
            span.set_attribute("http.response.status_code", 200)
            span.set_attribute("model.name", "readmission-risk")
            span.set_attribute("request.batch_size", i % 8)


class _ScoreError(ValueError):
    pass


def _error_spans(tracer: Tracer, n: int) -> None:
    for i in range(n):
        try:
            with tracer.start_as_current_span("calculate_score") as span:
                span.set_attribute("model.name", "readmission-risk")
                span.set_attribute("request.batch_size", i % 8)
                msg = f"non-finite logit for row {i}"
                raise _ScoreError(msg)
        except _ScoreError:
            pass


def _measure(
    workload: Callable[[Tracer, int], None], wrap: bool, spans: int
) -> tuple[float, float]:
    exporter = EncodingExporter()
    outer: SpanExporter = exporter
    if wrap:
        outer = TaxonomySpanExporter(
            exporter,
            classifier=Classifier(Registry.builtin()),
            scrubber=Scrubber(),
            error_counter=ClassifiedErrorCounter(),
        )
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(outer, max_queue_size=spans + 1, schedule_delay_millis=50)
    )
    tracer = provider.get_tracer("bench")
    workload(tracer, 200)  # warm caches and the classifier
    provider.force_flush()

    gc.collect()
    process_start = time.process_time_ns()
    thread_start = time.thread_time_ns()
    workload(tracer, spans)
    thread_ns = time.thread_time_ns() - thread_start
    provider.force_flush()
    process_ns = time.process_time_ns() - process_start
    provider.shutdown()
    assert exporter.exported == spans + 200, exporter.exported
    return thread_ns / spans / 1000, process_ns / spans / 1000


def run(spans: int, repeats: int) -> list[str]:
    """Run both workloads; return the report lines."""
    lines = []
    for name, workload in (
        ("spans without errors", _ok_spans),
        ("spans without errors, a unique url.path each", _unique_spans),
        ("error spans", _error_spans),
    ):
        base_thread, base_process, cand_thread, cand_process = [], [], [], []
        for _ in range(repeats):
            bt, bp = _measure(workload, False, spans)
            ct, cp = _measure(workload, True, spans)
            base_thread.append(bt)
            base_process.append(bp)
            cand_thread.append(ct)
            cand_process.append(cp)
        ratio_thread = statistics.median(
            c / b for c, b in zip(cand_thread, base_thread, strict=True)
        )
        ratio_process = statistics.median(
            c / b for c, b in zip(cand_process, base_process, strict=True)
        )
        lines.append(
            f"{name}: request thread {statistics.median(base_thread):.1f} -> "
            f"{statistics.median(cand_thread):.1f} us/span (ratio {ratio_thread:.3f}); "
            f"whole process {statistics.median(base_process):.1f} -> "
            f"{statistics.median(cand_process):.1f} us/span (ratio {ratio_process:.3f})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for line in run(args.spans, args.repeats):
        print(line)


if __name__ == "__main__":
    main()
