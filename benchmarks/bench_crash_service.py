"""Crash-service ingestion rate, against just decoding the same OTLP payloads.

The payloads are OTLP/HTTP protobuf log requests of ``--batch`` records each,
as the Collector would send them: 90 % exception records with a Python stack
text (spread over ``--groups`` distinct crash sites, each message carrying a
patient identifier for the scrubber to find), 10 % ordinary records the service
ignores. Two paths run on one thread, repeats interleaved:

- baseline: ``ExportLogsServiceRequest.ParseFromString`` of every payload;
- ingestion: what ``POST /v1/logs`` does after reading the body: decode,
  flatten, pick exception records, fingerprint the stack text, scrub title,
  attributes and resource, and upsert the batch into a fresh SQLite store
  (WAL, one transaction per request), updating the metrics.

Printed: the median records per second of each, from the CPU time of the
measuring thread (``time.thread_time``, robust to other processes sharing the
cores) and from wall-clock time (which includes waiting for the disk), and the
ratio of the medians (how many times more time ingestion takes than decoding
alone). HTTP handling is not included. Run::

    .venv/bin/python -m benchmarks.bench_crash_service [--requests 20] [--batch 200]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.crash_service.grouping import CrashGrouper
from exporters.crash_service.ingest import CrashIngestor
from exporters.crash_service.metrics import CrashMetrics
from exporters.crash_service.otlp import decode_logs_request
from exporters.crash_service.store import CrashStore
from otel_processors.scrubber import Scrubber

_SEED = 20261203


def _stacktrace(site: int, mrn: int) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/risk/service.py", line 41, in predict\n'
        "    score = model.score(features)\n"
        f'  File "/srv/app/risk/stage_{site}.py", line {site + 10}, in step_{site}\n'
        f'    raise ValueError(f"stage {site} failed for MRN {{mrn}}")\n'
        f"ValueError: stage {site} failed for MRN {mrn}\n"
    )


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_payloads(requests: int, batch: int, groups: int) -> list[bytes]:
    """Serialised requests of ``batch`` records each, fixed by the seed."""
    rng = random.Random(_SEED)
    payloads = []
    for _ in range(requests):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(
            [
                _attribute("service.name", "risk-api"),
                _attribute("service.version", "2.1"),
            ]
        )
        scope_logs = resource_logs.scope_logs.add()
        for _ in range(batch):
            mrn = rng.randrange(10_000_000, 99_999_999)
            record = LogRecord(time_unix_nano=time.time_ns(), severity_number=17)
            if rng.random() < 0.9:
                site = rng.randrange(groups)
                record.event_name = "exception"
                record.attributes.extend(
                    [
                        _attribute("exception.type", "ValueError"),
                        _attribute(
                            "exception.message", f"stage {site} failed for MRN {mrn}"
                        ),
                        _attribute("exception.stacktrace", _stacktrace(site, mrn)),
                        _attribute("healthai.error.category", "PREDICTION_ERROR"),
                    ]
                )
            else:
                record.body.string_value = f"slow feature store for MRN {mrn}"
            scope_logs.log_records.append(record)
        payloads.append(request.SerializeToString())
    return payloads


def decode_only(payloads: list[bytes]) -> tuple[float, float]:
    """CPU and wall seconds to parse every payload."""
    cpu, wall = time.thread_time(), time.perf_counter()
    for payload in payloads:
        ExportLogsServiceRequest().ParseFromString(payload)
    return time.thread_time() - cpu, time.perf_counter() - wall


def ingest(
    payloads: list[bytes], scrubber: Scrubber, folder: Path, run: int
) -> tuple[float, float]:
    """CPU and wall seconds to decode, group, scrub and store every payload."""
    store = CrashStore(folder / f"crashes-{run}.db")
    metrics = CrashMetrics(store.count_by_status)
    ingestor = CrashIngestor(store, CrashGrouper(scrubber), metrics)
    cpu, wall = time.thread_time(), time.perf_counter()
    for payload in payloads:
        ingestor.ingest(decode_logs_request(payload, "application/x-protobuf"))
    elapsed = time.thread_time() - cpu, time.perf_counter() - wall
    store.close()
    return elapsed


def main() -> None:
    """Run both paths alternately and print medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    payloads = build_payloads(args.requests, args.batch, args.groups)
    records = args.requests * args.batch
    scrubber = Scrubber()
    decode_times: list[tuple[float, float]] = []
    ingest_times: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        ingest(payloads[:1], scrubber, Path(folder), -1)  # warm caches and imports
        for run in range(args.repeats):
            gc.collect()
            decode_times.append(decode_only(payloads))
            gc.collect()
            ingest_times.append(ingest(payloads, scrubber, Path(folder), run))

    print(f"records: {records} in {args.requests} requests, {args.repeats} repeats")
    for clock, index in (("CPU", 0), ("wall", 1)):
        decode_rate = records / statistics.median(t[index] for t in decode_times)
        ingest_rate = records / statistics.median(t[index] for t in ingest_times)
        print(f"{clock} time, median of repeats:")
        print(f"  decode only (baseline):        {decode_rate:12,.0f} records/s")
        print(f"  ingestion (group+scrub+store): {ingest_rate:12,.0f} records/s")
        print(f"  ratio (ingestion / decode):    {decode_rate / ingest_rate:12,.1f}")


if __name__ == "__main__":
    main()
