"""Which features explain a drift of the model score, and which of their bins.

Each feature gets a score that multiplies three pieces of evidence::

    score_f = r_f * (1 + rho_f) / 2 * w_f

- ``r_f``, the drift ratio: the feature's level statistic over its effective
  WARNING threshold (1 means "at the warning line"), so features measured
  with different statistics or thresholds compare.
- ``rho_f``, the Pearson correlation of the feature's statistic with the
  score's statistic over the recent windows the monitor keeps. A feature
  whose drift rises and falls with the score's is more likely behind it;
  ``(1 + rho) / 2`` maps the correlation to ``[0, 1]``. With fewer than
  ``MIN_HISTORY`` windows, or a constant series, it is unknown and taken as 0
  (factor 1/2), so unknown neither helps nor hides a feature.
- ``w_f``, the user's feature importance divided by the largest one (for
  example mean absolute SHAP values); 1 when none is given, 0 for a feature the
  mapping leaves out.

Within a feature, the bins named are those with the largest PSI terms
``(q_i - p_i) ln(q_i / p_i)``, each non-negative, which add up to the PSI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from exporters.drift.report import RootCause

__all__ = ["MIN_HISTORY", "rank_root_causes", "top_bin_indices", "top_bins"]

MIN_HISTORY = 4


def rank_root_causes(
    drift_ratios: Mapping[str, float],
    histories: Mapping[str, Sequence[float]],
    score_history: Sequence[float] | None,
    importance: Mapping[str, float] | None = None,
) -> tuple[RootCause, ...]:
    """Rank features by how much they explain the score drift.

    Args:
        drift_ratios: statistic over warning threshold, by feature; features
            with a non-finite ratio are left out.
        histories: each feature's level statistic over recent windows, oldest
            first, aligned with ``score_history`` at the end.
        score_history: the score's level statistic over the same windows, or
            None when the score is not recorded.
        importance: feature importance by name, or None.

    Returns:
        Root causes, highest score first (ties by name).
    """
    weights = _normalised(importance)
    causes = []
    for name, ratio in drift_ratios.items():
        if not math.isfinite(ratio):
            continue
        correlation = _correlation(histories.get(name, ()), score_history)
        weight = None if weights is None else weights.get(name, 0.0)
        agreement = (1.0 + (correlation or 0.0)) / 2.0
        score = ratio * agreement * (1.0 if weight is None else weight)
        causes.append(RootCause(name, score, ratio, correlation, weight))
    causes.sort(key=lambda cause: (-cause.score, cause.feature))
    return tuple(causes)


def top_bins(
    terms: npt.NDArray[np.float64], labels: Sequence[str], count: int = 3
) -> tuple[tuple[str, float], ...]:
    """Name the bins with the largest positive contributions.

    Args:
        terms: the per-bin contributions (PSI terms) of one feature.
        labels: the bin labels, ``BinLayout.bin_labels()``.
        count: how many bins to name at most.

    Returns:
        ``(label, contribution)`` pairs, largest first, positive ones only.
    """
    values = np.nan_to_num(terms[: len(labels)], nan=0.0)
    order = top_bin_indices(values[None, :], count)[0]
    return tuple((labels[i], float(values[i])) for i in order if values[i] > 0)


def top_bin_indices(terms: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.intp]:
    """Indices of the ``count`` largest terms of each row, largest first.

    Args:
        terms: per-bin contributions, ``features x bins``; NaN counts as 0.

    Returns:
        ``features x min(count, bins)`` indices; ties keep bin order.
    """
    values = np.nan_to_num(terms, nan=0.0)
    order: npt.NDArray[np.intp] = np.argsort(-values, axis=1, kind="stable")
    return order[:, :count]


def _correlation(
    history: Sequence[float], score_history: Sequence[float] | None
) -> float | None:
    if score_history is None:
        return None
    length = min(len(history), len(score_history))
    if length < MIN_HISTORY:
        return None

    x = np.asarray(history[-length:], dtype=np.float64)
    y = np.asarray(score_history[-length:], dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < MIN_HISTORY or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _normalised(importance: Mapping[str, float] | None) -> dict[str, float] | None:
    if not importance:
        return None
    largest = max(abs(value) for value in importance.values())
    if largest <= 0 or not math.isfinite(largest):
        return None
    return {name: abs(value) / largest for name, value in importance.items()}
