"""Drift exporter costs: /metrics scrape time, memory over a soak run, compare.

Four measurements, each against a baseline measured in the same run:

- record: ``ModelRecorder.record`` per request (8 features) in the service,
  against recording the 7 numeric values in an OpenTelemetry ``Histogram``
  (which would drop the negative and non-finite ones);

- scrape: rendering ``/metrics`` (``generate_latest`` on the exporter's
  registry) for 100 models of 100 features each, against the same number of
  samples held by ordinary prometheus-client gauges;
- soak: a ``DriftServer`` evaluating in-process windows (no Prometheus) every
  50 ms while ``/metrics`` is rendered in a loop; RSS and tracemalloc at the
  start and the end show whether memory stays flat;
- compare: ``drift compare`` from raw CSV rows (20 000 rows, 8 features, two
  of them shifted), against Evidently's ``DataDriftPreset`` on the same CSV
  files, run in its own virtualenv (``--evidently-python``) when it exists.

Run::

    .venv/bin/python -m benchmarks.bench_drift_exporter [--soak-seconds 60]
        [--evidently-python /tmp/evidently-venv/bin/python] [--only soak]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from exporters.demo.model import PatientGenerator
from exporters.drift.baseline import build_reference, read_columns
from exporters.drift.collector import DriftCollector, ModelStatus
from exporters.drift.config import ModelConfig, ServeConfig
from exporters.drift.evaluation import DriftMonitor, Window
from exporters.drift.levels import DriftPolicy
from exporters.drift.reference import (
    FeatureReference,
    Reference,
    load_reference,
    save_reference,
)
from exporters.drift.server import DriftServer
from exporters.drift.sources import WindowCounts, load_window_file
from otel_processors.binning import BinLayout
from otel_processors.histograms import ModelRecorder

_EVIDENTLY_SCRIPT = """
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
times = []
for _ in range(int(sys.argv[3])):
    began = time.perf_counter()
    reference = pd.read_csv(sys.argv[1])
    current = pd.read_csv(sys.argv[2])
    result = Report([DataDriftPreset()]).run(current, reference).dict()
    times.append(time.perf_counter() - began)
drifted = []
for metric in result["metrics"]:
    config = metric.get("config", {})
    if config.get("type", "").endswith(":ValueDrift"):
        value, threshold = metric["value"], config["threshold"]
        p_value = "p_value" in config["method"]
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(config["column"])
print(json.dumps({"times": times, "drifted": sorted(drifted)}))
"""


def _median_seconds(func: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        began = time.perf_counter()
        func()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _synthetic_reference(model: str, n_features: int) -> Reference:
    layout = BinLayout.numeric(np.linspace(-2, 2, 9).tolist())
    counts = np.full(layout.n_bins, 1000.0)
    return Reference(
        model=model,
        model_version="1",
        features={
            f"feature_{i:03d}": FeatureReference(f"feature_{i:03d}", layout, counts)
            for i in range(n_features)
        },
    )


def _random_window(reference: Reference, rng: np.random.Generator) -> WindowCounts:
    return WindowCounts(
        features={
            name: rng.multinomial(2000, ref.counts / ref.counts.sum()).astype(float)
            for name, ref in reference.features.items()
        }
    )


def bench_record(requests: int, repeats: int) -> list[str]:
    """Per-request cost of ``ModelRecorder.record`` against an OTel histogram."""
    patients = PatientGenerator(seed=3).patients(requests)
    reference = build_reference(
        PatientGenerator(seed=4).columns(5000),
        model="readmission",
        categorical=["discharge_disposition"],
    )
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    recorder = ModelRecorder(
        "readmission", reference.layouts(), meter_provider=provider
    )
    histogram = provider.get_meter("bench").create_histogram("baseline_feature_value")
    numeric = [name for name in patients[0] if name != "discharge_disposition"]
    attributes = {name: {"model": "readmission", "feature": name} for name in numeric}

    def record() -> None:
        for patient in patients:
            recorder.record(patient)

    def otel() -> None:
        for patient in patients:
            for name in numeric:
                histogram.record(patient[name], attributes[name])  # type: ignore[arg-type]  # floats

    candidate = _median_seconds(record, repeats) / requests
    baseline = _median_seconds(otel, repeats) / requests
    return [
        f"record: {len(patients[0])} features per request, {requests} requests",
        f"  ModelRecorder.record        median {candidate * 1e6:6.2f} us per request",
        f"  OTel Histogram.record x{len(numeric)}  median {baseline * 1e6:6.2f} us per "
        "request (numeric features only)",
        f"  ratio                       {candidate / baseline:.2f}x the histogram",
    ]


def bench_scrape(models: int, features: int, repeats: int) -> list[str]:
    """Median time to render /metrics for ``models`` x ``features``."""
    reference = _synthetic_reference("model_000", features)
    monitor = DriftMonitor(reference, DriftPolicy(noise_draws=50))
    report = monitor.evaluate(
        _random_window(reference, np.random.default_rng(1)).to_window()
    )
    statuses = [
        ModelStatus(
            model=f"model_{i:03d}",
            started_seconds=time.time(),
            report=dataclasses.replace(report, model=f"model_{i:03d}"),
            last_success_seconds=time.time(),
            duration_seconds=0.1,
        )
        for i in range(models)
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DriftCollector(lambda: statuses))
    text = generate_latest(registry)
    samples = sum(1 for line in text.splitlines() if not line.startswith(b"#"))

    baseline_registry = CollectorRegistry(auto_describe=False)
    gauge = Gauge(
        "baseline_value", "Same sample count", ["model", "series"],
        registry=baseline_registry,
    )  # fmt: skip
    for i in range(samples):
        gauge.labels(f"model_{i % models:03d}", str(i)).set(i)

    candidate = _median_seconds(lambda: generate_latest(registry), repeats)
    baseline = _median_seconds(lambda: generate_latest(baseline_registry), repeats)
    return [
        f"scrape of {models} models x {features} features: {samples} samples, "
        f"{len(text) / 1e6:.1f} MB",
        f"  drift collector   median {candidate * 1e3:8.1f} ms",
        f"  plain gauges      median {baseline * 1e3:8.1f} ms (same sample count)",
        f"  ratio             {candidate / baseline:.2f}x the plain gauges",
    ]


class _RandomSource:
    def __init__(self, reference: Reference, seed: int) -> None:
        self.reference = reference
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def fetch(self) -> WindowCounts:
        self.calls += 1
        return _random_window(self.reference, self.rng)


def _rss_megabytes() -> float:
    with open("/proc/self/statm", encoding="ascii") as stream:
        pages = int(stream.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def bench_soak(seconds: float, models: int = 10, features: int = 50) -> list[str]:
    """Memory over a soak run of the serve loop, sampled at each quarter."""
    configs = tuple(
        ModelConfig(
            reference=_synthetic_reference(f"model_{i:02d}", features),
            reference_path="-",
            prometheus_url="http://127.0.0.1:1",
            window_seconds=300.0,
            interval_seconds=0.05,
            timeout_seconds=1.0,
            retries=0,
            policy=DriftPolicy(noise_draws=50),
        )
        for i in range(models)
    )
    sources = {c.model: _RandomSource(c.reference, i) for i, c in enumerate(configs)}
    server = DriftServer(ServeConfig(models=configs, source="-"), sources=sources)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(server.collector())
    stop = threading.Event()
    scrapes = 0

    def scrape() -> None:
        nonlocal scrapes
        while not stop.wait(0.05):
            generate_latest(registry)
            scrapes += 1

    def sample() -> tuple[float, float]:
        gc.collect()
        return _rss_megabytes(), tracemalloc.get_traced_memory()[0] / 1e6

    # Warm up first: hysteresis, histories and noise-floor caches fill.
    tracemalloc.start()
    server.start()
    scraper = threading.Thread(target=scrape)
    scraper.start()
    time.sleep(min(10.0, seconds / 4))
    samples = [sample()]
    for _ in range(4):
        time.sleep(seconds / 4)
        samples.append(sample())
    stop.set()
    scraper.join()
    server.stop()
    tracemalloc.stop()

    evaluations = sum(source.calls for source in sources.values())
    rss = "  ".join(f"{value:6.1f}" for value, _ in samples)
    traced = "  ".join(f"{value:6.2f}" for _, value in samples)
    return [
        f"soak of {seconds:g} s after warm-up: {models} models x {features} "
        f"features, {evaluations} evaluations, {scrapes} scrapes",
        "  memory at start, 1/4, 1/2, 3/4, end of the soak (MB):",
        f"  RSS          {rss}   change {samples[-1][0] - samples[0][0]:+.1f}",
        f"  tracemalloc  {traced}   change {samples[-1][1] - samples[0][1]:+.2f}",
    ]


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(zip(*(v.tolist() for v in columns.values()), strict=True))


def bench_compare(rows: int, repeats: int, evidently_python: str | None) -> list[str]:
    """``drift compare`` from raw CSV rows, and Evidently on the same files."""
    directory = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    train, current = directory / "train.csv", directory / "current.csv"
    _write_csv(train, PatientGenerator(seed=1).columns(rows))
    shift = {"creatinine_mg_dl": 0.5, "length_of_stay_days": 0.5}
    _write_csv(current, PatientGenerator(seed=2, shift=shift).columns(rows))
    reference_path = directory / "reference.json"

    def baseline() -> None:
        reference = build_reference(read_columns(train), model="readmission")
        save_reference(reference, reference_path)

    report_holder = []

    def compare() -> None:
        reference = load_reference(reference_path)
        policy = DriftPolicy(raise_after=1, raise_window=1)
        window: Window = load_window_file(current, reference).to_window()
        report_holder.append(DriftMonitor(reference, policy).evaluate(window))

    baseline_seconds = _median_seconds(baseline, repeats)
    compare_seconds = _median_seconds(compare, repeats)
    report = report_holder[-1]
    flagged = sorted(n for n, f in report.features.items() if f.level > 0)
    lines = [
        f"compare from raw CSV: {rows} reference rows, {rows} current rows, "
        f"8 features, {', '.join(shift)} shifted by 0.5 sd",
        f"  drift baseline (read CSV, bin)          median {baseline_seconds:7.3f} s",
        f"  drift compare (read CSV, bin, evaluate) median {compare_seconds:7.3f} s",
        f"  flagged by drift compare: {', '.join(flagged) or 'none'}",
    ]

    if not evidently_python or not os.path.exists(evidently_python):
        lines.append("  Evidently: not measured (no --evidently-python interpreter)")
        return lines
    completed = subprocess.run(
        [
            evidently_python,
            "-c",
            _EVIDENTLY_SCRIPT,
            str(train),
            str(current),
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        lines.append(f"  Evidently failed: {completed.stderr.strip()[-300:]}")
        return lines
    result = json.loads(completed.stdout.splitlines()[-1])
    evidently_seconds = statistics.median(result["times"])
    drifted = ", ".join(result["drifted"]) or "none"
    lines += [
        f"  Evidently DataDriftPreset (read 2 CSV)  median {evidently_seconds:7.3f} s",
        f"  ratio: Evidently takes {evidently_seconds / compare_seconds:.1f}x drift "
        f"compare, {evidently_seconds / (baseline_seconds + compare_seconds):.1f}x "
        "baseline + compare",
        f"  flagged by Evidently (default tests): {drifted}",
    ]
    return lines


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--evidently-python", default="/tmp/evidently-venv/bin/python")
    parser.add_argument(
        "--only",
        action="append",
        choices=("record", "scrape", "compare", "soak"),
        help="run only this measurement (repeatable)",
    )
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    parts = args.only or ["record", "scrape", "compare", "soak"]
    if "record" in parts:
        print("\n".join(bench_record(20_000, args.repeats)))
    if "scrape" in parts:
        print("\n".join(bench_scrape(args.models, args.features, args.repeats)))
    if "compare" in parts:
        repeats = max(args.repeats // 2, 3)
        print("\n".join(bench_compare(args.rows, repeats, args.evidently_python)))
    if "soak" in parts:
        print("\n".join(bench_soak(args.soak_seconds)))


if __name__ == "__main__":
    main()
