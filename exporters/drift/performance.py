"""Model performance from score histograms split by observed outcome.

The service records the score of labelled rows in the score's bin layout, once
for positives (outcome ``"1"``) and once for negatives (``"0"``). Every measure
here works from those two count vectors, bins ordered by score:

- ROC AUC, the probability that a random positive scores above a random
  negative, ties counting one half (Hanley and McNeil, 1982)::

      AUC = sum_b P_b (N_(<b) + N_b / 2) / (P N)

  Rows in the same bin are ties, so this is exactly the AUC of the raw scores
  rounded to their bin, i.e. the Mann-Whitney U statistic over ``P N``.
- Expected calibration error, the count-weighted gap between the bin's score
  and its observed positive rate (Naeini et al., 2015)::

      ECE = sum_b (P_b + N_b) / n |c_b - P_b / (P_b + N_b)|

- Brier score, ``mean (s - y)**2``, with each score replaced by its bin
  centre ``c_b``: ``sum_b [P_b (1 - c_b)**2 + N_b c_b**2] / n``. The
  approximation error is at most the within-bin variance of the scores (at
  most ``width**2 / 4``, about ``width**2 / 12`` for uniform scores) plus a
  cross term that vanishes when scores are spread evenly in each bin.

Centres are ``statistics.bin_centres`` of the score layout clipped to
``[0, 1]``, since scores are probabilities; ECE uses the centre where a raw
implementation would use the bin's mean score, which is not recorded.

ECE is biased upwards on small windows: a bin of ``n_b`` rows has an observed
rate off its true rate by about ``sqrt(r (1 - r) / n_b)`` even for a perfectly
calibrated model, so 200 rows over 20 bins give an ECE near 0.1 by noise
alone. ``ece_noise_margin`` simulates that noise for the window's own per-bin
counts: outcomes are drawn Bernoulli with the reference's positive rate of each
bin, on both the window and the reference, and the margin is the ``1 - alpha``
quantile of the simulated ECE rise.

References:
    J. A. Hanley and B. J. McNeil, "The meaning and use of the area under a
    receiver operating characteristic (ROC) curve", Radiology 143 (1982)
    29-36.
    M. P. Naeini, G. Cooper and M. Hauskrecht, "Obtaining well calibrated
    probabilities using Bayesian binning", AAAI (2015).
    G. W. Brier, "Verification of forecasts expressed in terms of
    probability", Monthly Weather Review 78 (1950) 1-3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from exporters.drift.levels import PerformancePolicy
from exporters.drift.report import Level, PerformanceReport

__all__ = [
    "AUC_DROP",
    "ECE_RISE",
    "BinnedPerformance",
    "assess_performance",
    "auc_standard_error",
    "binned_performance",
    "brier_score",
    "ece_noise_margin",
    "expected_calibration_error",
    "performance_ratios",
    "roc_auc",
]

FloatArray = npt.NDArray[np.float64]

POSITIVE = "1"
NEGATIVE = "0"

AUC_DROP = "auc_drop"
"""The measure name of the AUC drop from the reference."""
ECE_RISE = "ece_rise"
"""The measure name of the calibration-error rise from the reference."""

# Simulated windows of the ECE null: the 0.995 quantile of 4 000 draws has a
# standard error of about 5 % of the spread, and 4 000 x 20 bins take under a
# millisecond.
_ECE_NULL_DRAWS = 4000
# A reference this many times larger than the window is treated as exact.
_NEGLIGIBLE_REFERENCE_NOISE = 100


@dataclass(frozen=True)
class BinnedPerformance:
    """Performance measures of one set of labelled score histograms.

    Attributes:
        auc: ROC AUC, NaN without both classes.
        ece: expected calibration error, NaN without rows.
        brier: Brier score, NaN without rows.
        positives: count of positive rows.
        negatives: count of negative rows.
    """

    auc: float
    ece: float
    brier: float
    positives: float
    negatives: float


def roc_auc(positives: FloatArray, negatives: FloatArray) -> float:
    """ROC AUC from per-bin counts, ties within a bin counting one half.

    Args:
        positives: positive rows per score bin, bins in increasing score.
        negatives: negative rows per score bin, same layout.

    Returns:
        The AUC, NaN when either class is empty.
    """
    total_pos = float(positives.sum())
    total_neg = float(negatives.sum())
    if total_pos <= 0 or total_neg <= 0:
        return math.nan

    below = np.cumsum(negatives) - negatives
    wins = float(np.sum(positives * (below + 0.5 * negatives)))
    return wins / (total_pos * total_neg)


def expected_calibration_error(
    positives: FloatArray, negatives: FloatArray, centres: FloatArray
) -> float:
    """Count-weighted gap between bin score and observed positive rate.

    Args:
        positives: positive rows per score bin.
        negatives: negative rows per score bin.
        centres: the score each bin stands for, in ``[0, 1]``.

    Returns:
        The ECE, NaN without rows.
    """
    rows = positives + negatives
    total = float(rows.sum())
    if total <= 0:
        return math.nan

    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(rows > 0, positives / rows, 0.0)
    return float(np.sum(rows * np.abs(centres - rate)) / total)


def brier_score(
    positives: FloatArray, negatives: FloatArray, centres: FloatArray
) -> float:
    """Brier score with every score replaced by its bin centre.

    Args:
        positives: positive rows per score bin.
        negatives: negative rows per score bin.
        centres: the score each bin stands for, in ``[0, 1]``.

    Returns:
        The estimated Brier score, NaN without rows.
    """
    total = float(positives.sum() + negatives.sum())
    if total <= 0:
        return math.nan
    squared = positives * (1.0 - centres) ** 2 + negatives * centres**2
    return float(squared.sum() / total)


def auc_standard_error(auc: float, positives: float, negatives: float) -> float:
    """Standard error of an AUC estimate (Hanley and McNeil, 1982, eq. 2).

    Args:
        auc: the AUC.
        positives: count of positive rows.
        negatives: count of negative rows.

    Returns:
        The standard error; infinite without both classes.
    """
    if positives <= 0 or negatives <= 0 or not math.isfinite(auc):
        return math.inf
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc)
        + (positives - 1.0) * (q1 - auc * auc)
        + (negatives - 1.0) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def binned_performance(
    positives: FloatArray, negatives: FloatArray, centres: FloatArray
) -> BinnedPerformance:
    """Compute every performance measure of one pair of histograms.

    Args:
        positives: positive rows per score bin.
        negatives: negative rows per score bin.
        centres: bin centres of the score layout (clipped to ``[0, 1]`` here).

    Returns:
        The measures.
    """
    clipped = np.clip(centres, 0.0, 1.0)
    return BinnedPerformance(
        auc=roc_auc(positives, negatives),
        ece=expected_calibration_error(positives, negatives, clipped),
        brier=brier_score(positives, negatives, clipped),
        positives=float(positives.sum()),
        negatives=float(negatives.sum()),
    )


def ece_noise_margin(
    current_rows: FloatArray,
    reference: Mapping[str, FloatArray],
    centres: FloatArray,
    alpha: float,
    *,
    draws: int = _ECE_NULL_DRAWS,
    seed: int = 0,
) -> float:
    """The ECE rise that sampling noise alone exceeds with probability ``alpha``.

    Both the window, with its per-bin row counts, and the reference, with its
    own, get outcomes drawn Bernoulli with the reference's positive rate of
    each bin (the bin centre where the reference has no rows); the margin is
    the ``1 - alpha`` quantile of ``ECE(window) - ECE(reference)`` over the
    draws. A reference at least 100 times the window is kept as observed.
    Seeded, so a window gets the same margin each time. Not cached: the
    margin depends on how the window's rows spread over the bins, not only
    on their total, and one simulation takes a few milliseconds.

    Args:
        current_rows: labelled rows per score bin in the window.
        reference: the reference's counts keyed by outcome.
        centres: the score each bin stands for, in ``[0, 1]``.
        alpha: the tail probability left above the margin.
        draws: simulated windows.
        seed: seed of the simulation.

    Returns:
        The margin; 0 for an empty window.
    """
    rows = np.rint(current_rows).astype(np.int64)
    reference_rows = np.rint(reference[POSITIVE] + reference[NEGATIVE]).astype(np.int64)
    if rows.sum() <= 0:
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(
            reference_rows > 0, reference[POSITIVE] / reference_rows, centres
        )
    rate = np.clip(rate, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    now = _simulated_ece(rng, rows, rate, centres, draws)
    if reference_rows.sum() >= _NEGLIGIBLE_REFERENCE_NOISE * rows.sum():
        # The reference's own noise adds under 1 % to the spread: its ECE at
        # its own rates is the observed one, kept fixed.
        then = expected_calibration_error(
            reference[POSITIVE], reference[NEGATIVE], centres
        )
        return float(np.quantile(now, 1.0 - alpha)) - then
    then_draws = _simulated_ece(rng, reference_rows, rate, centres, draws)
    return float(np.quantile(now - then_draws, 1.0 - alpha))


def _simulated_ece(
    rng: np.random.Generator,
    rows: npt.NDArray[np.int64],
    rate: FloatArray,
    centres: FloatArray,
    draws: int,
) -> FloatArray:
    """ECE of ``draws`` simulated outcome vectors, vectorised over draws."""
    positives = rng.binomial(rows, rate, size=(draws, rows.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(rows > 0, positives / np.maximum(rows, 1), 0.0)
    gaps = rows * np.abs(centres - observed)
    result: FloatArray = gaps.sum(axis=1) / float(rows.sum())
    return result


def assess_performance(
    current: Mapping[str, FloatArray],
    reference: Mapping[str, FloatArray],
    centres: FloatArray,
    policy: PerformancePolicy,
    alpha: float,
) -> PerformanceReport | None:
    """Compare the window's performance with the reference's and set a level.

    Each measure raises a level when it reaches both the policy's floor and
    its noise margin: for the AUC drop ``z_(1 - alpha / 2)`` standard errors
    of the difference (Hanley and McNeil errors of both AUCs, taken as
    independent), for the ECE rise the simulated ``ece_noise_margin`` at
    ``alpha / 2``. Splitting ``alpha`` between the two keeps the chance that
    either fires on an unchanged model at most ``alpha``. Windows with fewer
    than ``min_labelled`` rows stay OK. The report's ``level`` is the raw
    level of this window; ``DriftMonitor`` applies hysteresis.

    Args:
        current: the window's counts keyed by outcome, ``"0"`` and ``"1"``.
        reference: the reference's, same keys.
        centres: bin centres of the score layout.
        policy: the thresholds.
        alpha: tail probability left above the noise margins.

    Returns:
        The report, or None when either side lacks one of the outcomes.
    """
    outcomes = {POSITIVE, NEGATIVE}
    if not outcomes <= set(current) or not outcomes <= set(reference):
        return None

    clipped = np.clip(centres, 0.0, 1.0)
    now = binned_performance(current[POSITIVE], current[NEGATIVE], clipped)
    then = binned_performance(reference[POSITIVE], reference[NEGATIVE], clipped)
    labelled = now.positives + now.negatives
    thresholds = _thresholds(current, reference, clipped, now, then, policy, alpha)
    level = Level.OK
    if labelled >= policy.min_labelled:
        level = max(
            _level(then.auc - now.auc, thresholds[AUC_DROP]),
            _level(now.ece - then.ece, thresholds[ECE_RISE]),
        )
    return PerformanceReport(
        auc=now.auc,
        reference_auc=then.auc,
        ece=now.ece,
        reference_ece=then.ece,
        brier=now.brier,
        reference_brier=then.brier,
        level=level,
        n_labelled=labelled,
        raw_level=level,
        thresholds=thresholds,
    )


def performance_ratios(report: PerformanceReport) -> dict[Level, float]:
    """Per level, the larger measure over its threshold of that level.

    1 is at the threshold; NaN measures count as 0. Hysteresis clears a
    level when this stays below its ``clear_ratio``.

    Args:
        report: a report of ``assess_performance``.

    Returns:
        The ratio for WARNING and CRITICAL.
    """
    measures = {
        AUC_DROP: report.reference_auc - report.auc,
        ECE_RISE: report.ece - report.reference_ece,
    }
    ratios: dict[Level, float] = {}
    for level in (Level.WARNING, Level.CRITICAL):
        values = [0.0]
        for measure, value in measures.items():
            threshold = report.thresholds.get(measure, {}).get(level, math.inf)
            if math.isfinite(value) and threshold > 0:
                values.append(value / threshold)
        ratios[level] = max(values)
    return ratios


def _thresholds(
    current: Mapping[str, FloatArray],
    reference: Mapping[str, FloatArray],
    centres: FloatArray,
    now: BinnedPerformance,
    then: BinnedPerformance,
    policy: PerformancePolicy,
    alpha: float,
) -> dict[str, dict[Level, float]]:
    error = math.hypot(
        auc_standard_error(now.auc, now.positives, now.negatives),
        auc_standard_error(then.auc, then.positives, then.negatives),
    )
    auc_margin = float(stats.norm.ppf(1.0 - alpha / 2.0)) * error
    ece_margin = ece_noise_margin(
        current[POSITIVE] + current[NEGATIVE], reference, centres, alpha / 2.0
    )
    return {
        AUC_DROP: {
            Level.WARNING: max(policy.auc_drop_warning, auc_margin),
            Level.CRITICAL: max(policy.auc_drop_critical, auc_margin),
        },
        ECE_RISE: {
            Level.WARNING: max(policy.ece_rise_warning, ece_margin),
            Level.CRITICAL: max(policy.ece_rise_critical, ece_margin),
        },
    }


def _level(value: float, thresholds: Mapping[Level, float]) -> Level:
    if not math.isfinite(value):
        return Level.OK
    if value >= thresholds[Level.CRITICAL]:
        return Level.CRITICAL
    if value >= thresholds[Level.WARNING]:
        return Level.WARNING
    return Level.OK
