"""Tests of performance measures computed from binned scores."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from exporters.drift.levels import PerformancePolicy
from exporters.drift.performance import (
    AUC_DROP,
    ECE_RISE,
    assess_performance,
    auc_standard_error,
    binned_performance,
    brier_score,
    ece_noise_margin,
    expected_calibration_error,
    roc_auc,
)
from exporters.drift.report import Level
from exporters.drift.statistics import bin_centres
from otel_processors.binning import BinLayout

_LAYOUT = BinLayout.numeric(np.linspace(0.05, 0.95, 19).tolist())
_CENTRES = bin_centres(_LAYOUT)


def _labelled_scores(
    seed: int, size: int, separation: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a logistic model whose outcomes follow its own probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, separation, size)
    scores = 1.0 / (1.0 + np.exp(-logits))
    outcomes = rng.uniform(size=size) < scores
    return scores, outcomes


def _histograms(scores: np.ndarray, outcomes: np.ndarray) -> dict[str, np.ndarray]:
    bins = np.searchsorted(_LAYOUT.edges, scores, side="right")
    return {
        "1": np.bincount(bins[outcomes], minlength=_LAYOUT.n_bins).astype(float),
        "0": np.bincount(bins[~outcomes], minlength=_LAYOUT.n_bins).astype(float),
    }


def test_binned_auc_equals_mann_whitney_on_scores_rounded_to_bins() -> None:
    """AUC from bins is U / (n1 n2) of scipy's Mann-Whitney on bin centres."""
    scores, outcomes = _labelled_scores(seed=1, size=4000, separation=2.0)
    counts = _histograms(scores, outcomes)
    rounded = _CENTRES[np.searchsorted(_LAYOUT.edges, scores, side="right")]
    positives, negatives = rounded[outcomes], rounded[~outcomes]
    u = stats.mannwhitneyu(positives, negatives).statistic
    expected = u / (positives.size * negatives.size)

    result = roc_auc(counts["1"], counts["0"])

    assert expected == pytest.approx(result, rel=1e-12)


def test_auc_without_one_class_is_nan() -> None:
    """AUC is undefined without positives or without negatives."""
    result = roc_auc(np.zeros(3), np.array([1.0, 2.0, 3.0]))

    assert math.isnan(result)


def test_expected_calibration_error_on_a_worked_example() -> None:
    """Two bins: 10 rows at 0.2 with 4 positives, 30 at 0.8 with 24 positives.

    ECE = (10 |0.2 - 0.4| + 30 |0.8 - 0.8|) / 40 = 0.05.
    """
    positives = np.array([4.0, 24.0])
    negatives = np.array([6.0, 6.0])

    result = expected_calibration_error(positives, negatives, np.array([0.2, 0.8]))

    expected = 0.05
    assert expected == pytest.approx(result, abs=1e-15)


def test_binned_brier_is_within_the_bin_variance_of_the_raw_brier() -> None:
    """The binned Brier score differs from the raw one by less than width**2 / 4."""
    scores, outcomes = _labelled_scores(seed=2, size=20_000, separation=1.5)
    counts = _histograms(scores, outcomes)
    expected = float(np.mean((scores - outcomes) ** 2))

    result = brier_score(counts["1"], counts["0"], np.clip(_CENTRES, 0, 1))

    assert expected == pytest.approx(result, abs=0.05**2 / 4)


def test_auc_standard_error_matches_the_spread_of_simulated_aucs() -> None:
    """Hanley-McNeil's error is within 15 % of the AUC spread over 300 samples."""
    rng = np.random.default_rng(3)
    aucs = []
    for _ in range(300):
        positives = rng.normal(1.2, 1.0, 100)
        negatives = rng.normal(0.0, 1.0, 200)
        u = stats.mannwhitneyu(positives, negatives).statistic
        aucs.append(u / (100 * 200))
    expected = float(np.std(aucs, ddof=1))

    result = auc_standard_error(float(np.mean(aucs)), 100, 200)

    assert expected == pytest.approx(result, rel=0.15)


def test_a_weaker_model_is_a_critical_performance_degradation() -> None:
    """Dropping from separation 2 to 0.7 on 5000 rows is CRITICAL."""
    reference = _histograms(*_labelled_scores(seed=4, size=50_000, separation=2.0))
    scores, _ = _labelled_scores(seed=5, size=5000, separation=2.0)
    rng = np.random.default_rng(6)
    weak_truth = 1.0 / (1.0 + np.exp(-0.35 * np.log(scores / (1 - scores))))
    current = _histograms(scores, rng.uniform(size=5000) < weak_truth)

    report = assess_performance(current, reference, _CENTRES, PerformancePolicy(), 0.01)

    assert report is not None
    result = (report.level, report.reference_auc - report.auc > 0.1)
    expected = (Level.CRITICAL, True)
    assert expected == result


def test_the_same_model_on_new_rows_stays_ok() -> None:
    """An unchanged model on a fresh sample raises no performance level."""
    reference = _histograms(*_labelled_scores(seed=7, size=50_000, separation=2.0))
    current = _histograms(*_labelled_scores(seed=8, size=2000, separation=2.0))

    report = assess_performance(current, reference, _CENTRES, PerformancePolicy(), 0.01)

    assert report is not None
    result = report.level
    expected = Level.OK
    assert expected == result


@pytest.mark.parametrize("size", [200, 500])
def test_an_unchanged_calibrated_model_raises_at_most_one_percent_of_windows(
    size: int, record_property: Callable[[str, object], None]
) -> None:
    """200 windows of a calibrated model raise a raw level in at most 1 %."""
    reference = _histograms(*_labelled_scores(seed=7, size=50_000, separation=2.0))
    raised = 0
    for seed in range(200):
        current = _histograms(
            *_labelled_scores(seed=1000 + seed, size=size, separation=2.0)
        )
        report = assess_performance(
            current, reference, _CENTRES, PerformancePolicy(), 0.01
        )
        assert report is not None
        raised += report.level > Level.OK
    rate = raised / 200
    record_property(f"performance_false_alarm_rate_{size}", rate)

    result = rate <= 0.01

    assert result, f"{rate:.1%} of null windows of {size} rows raised a level"


def test_a_miscalibrated_model_with_the_same_ranking_raises_on_the_ece() -> None:
    """Outcomes one logit above the scores raise a level while the AUC holds."""
    reference = _histograms(*_labelled_scores(seed=7, size=50_000, separation=2.0))
    rng = np.random.default_rng(13)
    scores = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 2.0, 500)))
    truth = 1.0 / (1.0 + np.exp(-(np.log(scores / (1.0 - scores)) + 1.0)))
    current = _histograms(scores, rng.uniform(size=500) < truth)

    report = assess_performance(current, reference, _CENTRES, PerformancePolicy(), 0.01)

    assert report is not None
    drop = report.reference_auc - report.auc
    rise = report.ece - report.reference_ece
    result = (
        report.level >= Level.WARNING,
        drop < report.thresholds[AUC_DROP][Level.WARNING],
        rise >= report.thresholds[ECE_RISE][Level.WARNING],
    )
    expected = (True, True, True)
    assert expected == result


def test_the_ece_noise_margin_shrinks_as_the_window_grows() -> None:
    """The simulated ECE margin at 200 rows is above the one at 5000 rows."""
    reference = _histograms(*_labelled_scores(seed=7, size=50_000, separation=2.0))
    small = _histograms(*_labelled_scores(seed=14, size=200, separation=2.0))
    large = _histograms(*_labelled_scores(seed=15, size=5000, separation=2.0))
    centres = np.clip(_CENTRES, 0.0, 1.0)

    result = [
        ece_noise_margin(rows["0"] + rows["1"], reference, centres, 0.005)
        for rows in (small, large)
    ]

    assert result[0] > result[1] > 0.0


def test_few_labelled_rows_never_raise_a_level() -> None:
    """Below min_labelled, even a useless model stays OK."""
    reference = _histograms(*_labelled_scores(seed=9, size=50_000, separation=2.0))
    scores, outcomes = _labelled_scores(seed=10, size=100, separation=2.0)
    current = _histograms(scores, ~outcomes)

    report = assess_performance(current, reference, _CENTRES, PerformancePolicy(), 0.01)

    assert report is not None
    result = (report.level, report.n_labelled)
    expected = (Level.OK, 100.0)
    assert expected == result


def test_missing_outcome_gives_no_performance() -> None:
    """Without both outcomes there is no performance report."""
    reference = _histograms(*_labelled_scores(seed=11, size=1000, separation=2.0))

    result = assess_performance(
        {"1": reference["1"]}, reference, _CENTRES, PerformancePolicy(), 0.01
    )

    assert result is None


def test_binned_performance_counts_both_classes() -> None:
    """The measures carry the class counts they were computed from."""
    counts = _histograms(*_labelled_scores(seed=12, size=3000, separation=1.0))

    result = binned_performance(counts["1"], counts["0"], _CENTRES)

    expected = 3000.0
    assert expected == result.positives + result.negatives
