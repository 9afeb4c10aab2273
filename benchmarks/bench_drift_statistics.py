"""Time the drift statistics and levels of 1,000 features of 64 bins.

Run: ``.venv/bin/python -m benchmarks.bench_drift_statistics``

Measures, as medians over repeats in one run:

- ``compute_statistics`` on all features at once (vectorised numpy);
- the baseline: the same statistics feature by feature with scipy
  (``entropy``, ``jensenshannon``, ``wasserstein_distance``,
  ``chi2_contingency``) on the same probability vectors;
- ``DriftMonitor.evaluate`` (statistics, noise floors, Benjamini-Hochberg,
  levels, hysteresis, root cause), first window (noise floors simulated) and
  later windows of a similar size (floors cached);
- the false-alarm rate: the share of 200 windows drawn from the reference
  distribution (24 features, rare bins included) in which any feature reaches
  WARNING, raw and after hysteresis, at 50 to 100 000 rows a window;
- the detection rate of a normal mean shift of 0.2 to 1 sd, per window size.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import stats
from scipy.spatial import distance as scipy_distance

from exporters.drift.evaluation import DriftMonitor, Window
from exporters.drift.reference import FeatureReference, Reference
from exporters.drift.report import Level
from exporters.drift.statistics import (
    bin_centres,
    compute_statistics,
    posterior_proportions,
)
from otel_processors.binning import BinLayout

FEATURES = 1000
BINS = 64
WINDOW_ROWS = 5000


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _scipy_feature_by_feature(
    reference: np.ndarray, current: np.ndarray, centres: np.ndarray
) -> None:
    for ref, cur in zip(reference, current, strict=True):
        p, q = posterior_proportions(ref, cur, np.ones(ref.shape, bool))
        stats.entropy(q, p) + stats.entropy(p, q)
        stats.entropy(q, p)
        scipy_distance.jensenshannon(p, q, base=2)
        np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)
        np.max(np.abs(q - p))
        mean = np.sum(p * centres)
        spread = np.sqrt(np.sum(p * (centres - mean) ** 2))
        stats.wasserstein_distance(centres, centres, p, q) / spread
        table = np.vstack([ref, cur])
        stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)


def _false_alarm_rates(window_rows: int, windows: int = 200) -> tuple[float, float]:
    """Share of null windows with any raw level, and with any final level."""
    rng = np.random.default_rng(window_rows)
    features, truth = {}, {}
    for i in range(24):
        n_bins = int(rng.integers(6, 16)) if i < 18 else 5
        layout = (
            BinLayout.numeric(np.arange(n_bins - 1, dtype=float).tolist())
            if i < 18
            else BinLayout.categorical(["a", "b", "c", "d"])
        )
        probabilities = rng.dirichlet(np.full(n_bins, 2.0))
        probabilities[0] = 0.002
        probabilities /= probabilities.sum()
        name = f"feature_{i:02d}"
        truth[name] = probabilities
        counts = rng.multinomial(200_000, probabilities).astype(float)
        features[name] = FeatureReference(name, layout, counts)
    monitor = DriftMonitor(Reference("null", "1", features))

    raw = final = 0
    for _ in range(windows):
        drawn = {
            k: rng.multinomial(window_rows, p).astype(float) for k, p in truth.items()
        }
        report = monitor.evaluate(Window(drawn))
        raw += any(d.raw_level > Level.OK for d in report.features.values())
        final += report.level > Level.OK
    return raw / windows, final / windows


def _detection_rate(window_rows: int, shift: float, windows: int = 50) -> float:
    """Share of windows of a shifted normal whose raw level is WARNING or more."""
    rng = np.random.default_rng(7)
    edges = np.quantile(rng.normal(size=100_000), np.arange(1, 10) / 10)
    layout = BinLayout.numeric(edges.tolist())

    def counts(values: np.ndarray) -> np.ndarray:
        bins = np.searchsorted(edges, values, side="right")
        return np.bincount(bins, minlength=layout.n_bins).astype(float)

    reference = FeatureReference("x", layout, counts(rng.normal(size=200_000)))
    monitor = DriftMonitor(Reference("shift", "1", {"x": reference}))
    hits = 0
    for _ in range(windows):
        window = Window({"x": counts(rng.normal(shift, 1.0, window_rows))})
        hits += monitor.evaluate(window).features["x"].raw_level > Level.OK
    return hits / windows


def main() -> None:
    """Run the benchmark and print medians, ratios and rates."""
    rng = np.random.default_rng(2026)
    layout = BinLayout.numeric(np.linspace(-3.0, 3.0, BINS - 1).tolist())
    centres = bin_centres(layout)
    truth = rng.dirichlet(np.full(BINS, 2.0), size=FEATURES)
    reference = np.stack([rng.multinomial(200_000, p) for p in truth]).astype(float)
    windows = [
        np.stack([rng.multinomial(WINDOW_ROWS, p) for p in truth]).astype(float)
        for _ in range(12)
    ]
    mask = np.ones(reference.shape, bool)
    centre_matrix = np.tile(centres, (FEATURES, 1))

    vectorised = _median_seconds(
        lambda: compute_statistics(reference, windows[0], mask, centre_matrix), 20
    )
    baseline = _median_seconds(
        lambda: _scipy_feature_by_feature(reference, windows[0], centres), 3
    )

    names = [f"feature_{i:04d}" for i in range(FEATURES)]
    model = Reference(
        "benchmark",
        "1",
        {
            name: FeatureReference(name, layout, reference[i])
            for i, name in enumerate(names)
        },
    )
    monitor = DriftMonitor(model)
    as_window = [Window(dict(zip(names, w, strict=True))) for w in windows]
    start = time.perf_counter()
    monitor.evaluate(as_window[0])
    cold = time.perf_counter() - start
    later = iter(as_window[1:] * 2)
    warm = _median_seconds(lambda: monitor.evaluate(next(later)), 10)

    print(f"{FEATURES} features x {BINS} bins, windows of {WINDOW_ROWS} rows")
    print(f"statistics, vectorised:              {vectorised * 1e3:9.1f} ms")
    print(f"statistics, scipy feature by feature: {baseline * 1e3:9.1f} ms")
    print(f"speed-up of vectorised over scipy:    {baseline / vectorised:9.1f} x")
    print(f"evaluate, first window (calibrates):  {cold * 1e3:9.1f} ms")
    print(f"evaluate, later windows (cached):     {warm * 1e3:9.1f} ms")
    print(f"speed-up of evaluate over scipy:      {baseline / warm:9.1f} x")

    print("\nfalse alarms, 200 null windows of 24 features (raw / after hysteresis)")
    for rows in (50, 500, 5000, 100_000):
        raw, final = _false_alarm_rates(rows)
        print(f"  {rows:>7} rows: {raw:6.1%} / {final:6.1%}")

    shifts = (0.2, 0.4, 0.6, 1.0)
    print("\ndetection rate of a mean shift, 50 windows each (raw level)")
    print("     rows " + "".join(f"{shift:>8.1f} sd" for shift in shifts))
    for rows in (50, 200, 1000, 100_000):
        rates = "".join(f"{_detection_rate(rows, s):>11.0%}" for s in shifts)
        print(f"  {rows:>7}{rates}")


if __name__ == "__main__":
    main()
