"""Time the drift statistics and levels of 1,000 features of 64 bins.

Run: ``.venv/bin/python -m benchmarks.bench_drift_statistics``

Measures, as medians over repeats in one run:

- ``compute_statistics`` on all features at once (vectorised numpy);
- the baseline: the same statistics feature by feature with scipy
  (``entropy``, ``jensenshannon``, ``wasserstein_distance``,
  ``chi2_contingency``) on the same probability vectors;
- ``DriftMonitor.evaluate`` (statistics, noise floors, Benjamini-Hochberg,
  levels, hysteresis, root cause), first window (noise floors simulated) and
  later windows of a similar size (floors cached).
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


def main() -> None:
    """Run the benchmark and print medians and ratios."""
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


if __name__ == "__main__":
    main()
