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
    "BinnedPerformance",
    "assess_performance",
    "auc_standard_error",
    "binned_performance",
    "brier_score",
    "expected_calibration_error",
    "roc_auc",
]

FloatArray = npt.NDArray[np.float64]

POSITIVE = "1"
NEGATIVE = "0"


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


def assess_performance(
    current: Mapping[str, FloatArray],
    reference: Mapping[str, FloatArray],
    centres: FloatArray,
    policy: PerformancePolicy,
    alpha: float,
) -> PerformanceReport | None:
    """Compare the window's performance with the reference's and set a level.

    The AUC drop raises a level when it reaches the policy's floor and also
    ``z_(1 - alpha)`` standard errors of the difference (Hanley and McNeil
    errors of both AUCs, taken as independent); the ECE rise when it reaches
    its floor. Windows with fewer than ``min_labelled`` rows stay OK.

    Args:
        current: the window's counts keyed by outcome, ``"0"`` and ``"1"``.
        reference: the reference's, same keys.
        centres: bin centres of the score layout.
        policy: the thresholds.
        alpha: tail probability of the AUC noise margin.

    Returns:
        The report, or None when either side lacks one of the outcomes.
    """
    outcomes = {POSITIVE, NEGATIVE}
    if not outcomes <= set(current) or not outcomes <= set(reference):
        return None

    now = binned_performance(current[POSITIVE], current[NEGATIVE], centres)
    then = binned_performance(reference[POSITIVE], reference[NEGATIVE], centres)
    labelled = now.positives + now.negatives
    level = Level.OK
    if labelled >= policy.min_labelled:
        level = max(_auc_level(now, then, policy, alpha), _ece_level(now, then, policy))
    return PerformanceReport(
        auc=now.auc,
        reference_auc=then.auc,
        ece=now.ece,
        reference_ece=then.ece,
        brier=now.brier,
        reference_brier=then.brier,
        level=level,
        n_labelled=labelled,
    )


def _auc_level(
    now: BinnedPerformance,
    then: BinnedPerformance,
    policy: PerformancePolicy,
    alpha: float,
) -> Level:
    drop = then.auc - now.auc
    if not math.isfinite(drop):
        return Level.OK
    error = math.hypot(
        auc_standard_error(now.auc, now.positives, now.negatives),
        auc_standard_error(then.auc, then.positives, then.negatives),
    )
    margin = float(stats.norm.ppf(1.0 - alpha)) * error
    if drop >= max(policy.auc_drop_critical, margin):
        return Level.CRITICAL
    if drop >= max(policy.auc_drop_warning, margin):
        return Level.WARNING
    return Level.OK


def _ece_level(
    now: BinnedPerformance, then: BinnedPerformance, policy: PerformancePolicy
) -> Level:
    rise = now.ece - then.ece
    if not math.isfinite(rise):
        return Level.OK
    if rise >= policy.ece_rise_critical:
        return Level.CRITICAL
    if rise >= policy.ece_rise_warning:
        return Level.WARNING
    return Level.OK
