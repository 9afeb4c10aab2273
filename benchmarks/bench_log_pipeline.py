"""Cost of a logged exception with the taxonomy and scrubbing, against without.

Unlike spans, log records are classified and scrubbed on the thread that logs
(the batch processor copies a record as it queues it, so nothing later can
change it). This measures what that thread pays for ``logger.exception(...)``:

- baseline: the logging handler of opentelemetry-instrumentation-logging and a
  ``BatchLogRecordProcessor`` whose exporter encodes to OTLP protobuf;
- candidate: ``HealthAILoggingHandler``, ``TaxonomyLogRecordProcessor``, then
  the same batch processor.

Each logged exception has a four-frame stack and a message whose numbers change
every time; one in ten names a patient. CPU time of the logging thread,
alternating repeats, medians. Run::

    .venv/bin/python -m benchmarks.bench_log_pipeline [--records 5000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)

from otel_processors.classifier import Classifier
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.logs import HealthAILoggingHandler, TaxonomyLogRecordProcessor
from otel_processors.registry import Registry
from otel_processors.scrubber import Scrubber


class EncodingExporter(LogRecordExporter):
    """Encode each batch as an OTLP exporter would, then drop it."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        encode_logs(batch).SerializeToString()
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _ScoringError(ValueError):
    pass


def _score(row: int, depth: int) -> None:
    if depth == 0:
        who = f"patient Maria Garcia, MRN {row:08d}" if row % 10 == 0 else "batch"
        msg = f"non-finite logit for row {row} of {who}"
        raise _ScoringError(msg)
    _score(row, depth - 1)


def _log_exceptions(logger: logging.Logger, start: int, n: int) -> None:
    for row in range(start, start + n):
        try:
            _score(row, 3)
        except _ScoringError:
            logger.exception("Scoring failed")


def _measure(candidate: bool, records: int, start: int) -> float:
    provider = LoggerProvider()
    if candidate:
        provider.add_log_record_processor(
            TaxonomyLogRecordProcessor(
                classifier=Classifier(Registry.builtin()),
                scrubber=Scrubber(),
                error_counter=ClassifiedErrorCounter(),
            )
        )
        handler: logging.Handler = HealthAILoggingHandler(logger_provider=provider)
    else:
        handler = LoggingHandler(logger_provider=provider)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            EncodingExporter(), max_queue_size=max(records + 201, 2048)
        )
    )
    logger = logging.getLogger(f"bench.{candidate}.{start}")
    logger.propagate = False
    logger.addHandler(handler)
    _log_exceptions(logger, 0, 200)  # warm caches and the classifier

    gc.collect()
    began = time.thread_time_ns()
    _log_exceptions(logger, start, records)
    elapsed = time.thread_time_ns() - began
    logger.removeHandler(handler)
    provider.shutdown()
    return elapsed / records / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    baseline, candidate = [], []
    for repeat in range(args.repeats):
        start = 1000 + repeat * args.records
        baseline.append(_measure(False, args.records, start))
        candidate.append(_measure(True, args.records, start))
    ratio = statistics.median(c / b for c, b in zip(candidate, baseline, strict=True))
    print(
        f"logged exceptions, logging thread: {statistics.median(baseline):.1f} -> "
        f"{statistics.median(candidate):.1f} us/record (ratio {ratio:.3f})"
    )


if __name__ == "__main__":
    main()
