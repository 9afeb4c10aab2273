"""Divergences between binned reference and current distributions, vectorised.

Every function works on the last axis of its arrays, so one call handles all the
features of a model at once (``features x bins``) or a stack of simulated
windows (``draws x features x bins``). Features have different bin counts: rows
are padded to the widest layout and a boolean ``mask`` marks the real bins.
Padding never changes a result: padded counts are read as zero and padded bins
carry zero probability on both sides.

Direction: ``q`` is the current window, ``p`` the reference. The KL divergence
is ``KL(q || p)``, the information lost when the reference stands in for the
current window.

Empty bins. Both sides are estimated by the posterior mean of a Dirichlet
prior centred on the pooled proportions ``m = (R + C) / (n_R + n_C)`` with
concentration ``A = k / 2`` (the total prior mass of Jeffreys' prior, half a
count per bin)::

    p_i = (R_i + A m_i) / (n_R + A)        q_i = (C_i + A m_i) / (n_C + A)

A bin empty on one side only gets positive mass on both, so KL and PSI stay
finite; a bin empty on both sides gets zero on both and contributes nothing,
like padding. Equal counts (and proportional counts) give ``p == q``, hence
exactly zero for every distance. Shrinking toward a data-driven target rather
than toward the uniform vector follows Hausser and Strimmer (2009); the
posterior mean of a Dirichlet-multinomial is in Gelman et al., *Bayesian Data
Analysis*, 3rd ed., section 23.2.

References:
    J. Hausser and K. Strimmer, "Entropy inference and the James-Stein
    estimator", JMLR 10 (2009) 1469-1484.
    J. Lin, "Divergence measures based on the Shannon entropy", IEEE Trans.
    Inf. Theory 37 (1991) 145-151.
    B. Yurdakul, "Statistical properties of population stability index",
    PhD thesis, Western Michigan University (2018).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from otel_processors.binning import BinLayout

__all__ = [
    "STATISTIC_NAMES",
    "DriftStatistics",
    "bin_centres",
    "chi_square_p_values",
    "compute_statistics",
    "distance",
    "pad_rows",
    "posterior_proportions",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

STATISTIC_NAMES = (
    "psi",
    "kl_divergence",
    "js_distance",
    "hellinger",
    "linf",
    "wasserstein",
    "p_value",
)
"""Keys of ``FeatureDrift.statistics``, in display order."""

_DISTANCES = frozenset(STATISTIC_NAMES) - {"p_value"}


@dataclass(frozen=True)
class DriftStatistics:
    """Per-feature statistics of one comparison; every array has one entry a row.

    Attributes:
        psi: population stability index, ``sum (q - p) ln(q / p)``.
        kl_divergence: ``KL(q || p)`` in nats.
        js_distance: Jensen-Shannon distance, base 2, in ``[0, 1]``.
        hellinger: Hellinger distance in ``[0, 1]``.
        linf: largest absolute difference of bin probabilities.
        linf_bin: the bin where ``linf`` is reached.
        wasserstein: 1-Wasserstein distance over the reference standard
            deviation; NaN for categorical features.
        p_value: chi-square homogeneity test of the raw counts.
        psi_terms: the per-bin PSI terms (``features x bins``), zero on padding.
        reference_size: reference counts per row.
        current_size: current counts per row.
    """

    psi: FloatArray
    kl_divergence: FloatArray
    js_distance: FloatArray
    hellinger: FloatArray
    linf: FloatArray
    linf_bin: npt.NDArray[np.intp]
    wasserstein: FloatArray
    p_value: FloatArray
    psi_terms: FloatArray
    reference_size: FloatArray
    current_size: FloatArray

    def get(self, name: str) -> FloatArray:
        """Return the array of the statistic called ``name``.

        Raises:
            KeyError: when ``name`` is not one of ``STATISTIC_NAMES``.
        """
        if name not in STATISTIC_NAMES:
            msg = f"unknown statistic {name!r}; expected one of {STATISTIC_NAMES}"
            raise KeyError(msg)
        value: FloatArray = getattr(self, name)
        return value

    def row(self, index: int) -> Mapping[str, float]:
        """Return the statistics of one feature as a name-to-value mapping."""
        return {name: float(self.get(name)[index]) for name in STATISTIC_NAMES}


def posterior_proportions(
    reference: FloatArray, current: FloatArray, mask: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Estimate bin probabilities of both sides with the pooled Dirichlet prior.

    Args:
        reference: reference counts, ``(..., bins)``.
        current: current counts, same shape or broadcastable.
        mask: True on real bins, broadcastable to the counts.

    Returns:
        ``(p, q)``: reference and current probabilities, zero on padding. Rows
        where both sides are empty are NaN.
    """
    ref = np.where(mask, reference, 0.0)
    cur = np.where(mask, current, 0.0)
    n_ref = ref.sum(axis=-1, keepdims=True)
    n_cur = cur.sum(axis=-1, keepdims=True)
    prior_mass = 0.5 * np.sum(mask, axis=-1, keepdims=True)

    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (ref + cur) / (n_ref + n_cur)
        p = (ref + prior_mass * pooled) / (n_ref + prior_mass)
        q = (cur + prior_mass * pooled) / (n_cur + prior_mass)
    return p, q


def compute_statistics(
    reference: FloatArray,
    current: FloatArray,
    mask: BoolArray,
    centres: FloatArray | None = None,
) -> DriftStatistics:
    """Compare current counts with reference counts, row by row.

    Args:
        reference: reference counts, ``features x bins``.
        current: current counts, same shape.
        mask: True on real bins.
        centres: representative value of each bin (see ``bin_centres``), NaN
            rows for categorical features; None makes every Wasserstein NaN.

    Returns:
        The statistics of every row. Rows where both sides are empty give NaN
        distances and a p-value of 1.
    """
    p, q = posterior_proportions(reference, current, mask)
    if centres is None:
        centres = np.full(p.shape, np.nan)

    terms = _psi_terms(p, q)
    differences = np.abs(q - p)
    linf_bin = np.argmax(np.where(mask, differences, -1.0), axis=-1)
    return DriftStatistics(
        psi=terms.sum(axis=-1),
        kl_divergence=_kl_divergence(q, p),
        js_distance=_js_distance(p, q),
        hellinger=_hellinger(p, q),
        linf=np.take_along_axis(differences, linf_bin[..., None], axis=-1)[..., 0],
        linf_bin=linf_bin,
        wasserstein=_wasserstein(p, q, centres),
        p_value=chi_square_p_values(reference, current, mask),
        psi_terms=terms,
        reference_size=np.where(mask, reference, 0.0).sum(axis=-1),
        current_size=np.where(mask, current, 0.0).sum(axis=-1),
    )


def distance(
    name: str,
    p: FloatArray,
    q: FloatArray,
    centres: FloatArray | None = None,
) -> FloatArray:
    """Compute one distance from probabilities already estimated.

    Used by the noise-floor simulation, which needs a single statistic over a
    stack of simulated windows.

    Args:
        name: one of ``STATISTIC_NAMES`` except ``"p_value"``.
        p: reference probabilities, ``(..., bins)``.
        q: current probabilities, same shape.
        centres: bin centres, needed by ``"wasserstein"``.

    Returns:
        The distance, with the last axis reduced.

    Raises:
        KeyError: for an unknown name or ``"p_value"``.
    """
    if name not in _DISTANCES:
        msg = f"unknown distance {name!r}; expected one of {sorted(_DISTANCES)}"
        raise KeyError(msg)

    if name == "psi":
        return _sum_bins(_psi_terms(p, q))
    if name == "kl_divergence":
        return _kl_divergence(q, p)
    if name == "js_distance":
        return _js_distance(p, q)
    if name == "hellinger":
        return _hellinger(p, q)
    if name == "linf":
        result: FloatArray = np.abs(q - p).max(axis=-1)
        return result
    if centres is None:
        centres = np.full(p.shape[-1], np.nan)
    return _wasserstein(p, q, centres)


def chi_square_p_values(
    reference: FloatArray, current: FloatArray, mask: BoolArray
) -> FloatArray:
    """Pearson chi-square test of homogeneity of two count vectors, row by row.

    The 2 x k contingency table holds the raw counts (no pseudocount); columns
    empty on both sides and padding are dropped, so the degrees of freedom are
    the number of non-empty columns minus one. No continuity correction is
    applied. A row with one empty side, or a single non-empty column, carries no
    evidence of a difference and gets a p-value of 1.

    Args:
        reference: reference counts, ``(..., bins)``.
        current: current counts, same shape.
        mask: True on real bins.

    Returns:
        The p-values.
    """
    ref = np.where(mask, reference, 0.0)
    cur = np.where(mask, current, 0.0)
    column = ref + cur
    keep = column > 0
    n_ref = ref.sum(axis=-1, keepdims=True)
    n_cur = cur.sum(axis=-1, keepdims=True)
    total = n_ref + n_cur

    with np.errstate(invalid="ignore", divide="ignore"):
        expected_ref = n_ref * column / total
        expected_cur = n_cur * column / total
        cells = (ref - expected_ref) ** 2 / expected_ref + (
            cur - expected_cur
        ) ** 2 / expected_cur
    statistic = np.where(keep, cells, 0.0).sum(axis=-1)
    dof = keep.sum(axis=-1) - 1

    testable = (dof >= 1) & (n_ref[..., 0] > 0) & (n_cur[..., 0] > 0)
    p_values = np.ones(statistic.shape)
    p_values[testable] = stats.chi2.sf(statistic[testable], dof[testable])
    return p_values


def bin_centres(layout: BinLayout) -> FloatArray:
    """Return a representative value for each bin of a layout.

    Inner bins are represented by their midpoint. The open underflow bin
    ``(-inf, e0)`` is placed half a width of its neighbouring inner bin below
    ``e0``, and the overflow bin likewise above the last edge; with a single
    edge (no inner bin) the half width is 0.5. Categorical bins have no order
    or distance: their centres are NaN, which makes the Wasserstein distance
    NaN.

    Args:
        layout: the bins of one feature.

    Returns:
        ``layout.n_bins`` values, increasing for numeric layouts.
    """
    if layout.kind == "categorical":
        return np.full(layout.n_bins, np.nan)

    edges = np.asarray(layout.edges, dtype=np.float64)
    inner = (edges[:-1] + edges[1:]) / 2.0
    widths = np.diff(edges)
    low_half = widths[0] / 2.0 if widths.size else 0.5
    high_half = widths[-1] / 2.0 if widths.size else 0.5
    return np.concatenate(([edges[0] - low_half], inner, [edges[-1] + high_half]))


def pad_rows(
    rows: list[FloatArray], *, repeat_last: bool = False
) -> tuple[FloatArray, BoolArray]:
    """Stack rows of different lengths into a padded matrix and its mask.

    Args:
        rows: one 1-D array per feature.
        repeat_last: pad with each row's last value (bin centres need this, so
            padded spacings are zero) instead of zero.

    Returns:
        ``(matrix, mask)``, both ``len(rows) x longest``.
    """
    width = max((row.shape[0] for row in rows), default=0)
    matrix = np.zeros((len(rows), width))
    mask = np.zeros((len(rows), width), dtype=bool)
    for index, row in enumerate(rows):
        matrix[index, : row.shape[0]] = row
        mask[index, : row.shape[0]] = True
        if repeat_last and row.shape[0]:
            matrix[index, row.shape[0] :] = row[-1]
    return matrix, mask


def _psi_terms(p: FloatArray, q: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = (q - p) * np.log(q / p)
    return np.where((p > 0) & (q > 0), terms, np.where(np.isnan(p + q), np.nan, 0.0))


def _kl(a: FloatArray, b: FloatArray) -> FloatArray:
    """Per-bin terms of ``KL(a || b)``, with ``0 ln 0 = 0``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = a * np.log(a / b)
    return np.where(a > 0, terms, np.where(np.isnan(a + b), np.nan, 0.0))


def _kl_divergence(a: FloatArray, b: FloatArray) -> FloatArray:
    """``KL(a || b)``; rounding between near-equal rows can dip below zero."""
    result: FloatArray = np.maximum(_sum_bins(_kl(a, b)), 0.0)
    return result


def _js_distance(p: FloatArray, q: FloatArray) -> FloatArray:
    middle = (p + q) / 2.0
    divergence = (_sum_bins(_kl(p, middle)) + _sum_bins(_kl(q, middle))) / 2.0
    # Rounding can leave a tiny negative divergence between near-equal rows.
    result: FloatArray = np.sqrt(np.maximum(divergence, 0.0) / math.log(2.0))
    return result


def _hellinger(p: FloatArray, q: FloatArray) -> FloatArray:
    squared = _sum_bins((np.sqrt(p) - np.sqrt(q)) ** 2)
    result: FloatArray = np.sqrt(squared / 2.0)
    return result


def _wasserstein(p: FloatArray, q: FloatArray, centres: FloatArray) -> FloatArray:
    """1-Wasserstein between two binned distributions over the reference spread.

    For sorted support points ``x_i`` the distance is
    ``sum_i |F_q(x_i) - F_p(x_i)| (x_(i+1) - x_i)`` (Vallender, 1974). Padding
    must repeat the last centre so that its spacing is zero.
    """
    centres = np.broadcast_to(centres, p.shape)
    spacing = np.diff(centres, axis=-1)
    gap = np.abs(np.cumsum(q - p, axis=-1)[..., :-1])
    distance = (gap * spacing).sum(axis=-1)

    mean = (p * np.nan_to_num(centres)).sum(axis=-1, keepdims=True)
    spread = np.sqrt((p * (np.nan_to_num(centres) - mean) ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = distance / spread
    # A zero spread means all the mass of both sides sits in one bin.
    result: FloatArray = np.where(spread > 0, normalised, distance)
    return result


def _sum_bins(terms: FloatArray) -> FloatArray:
    total: FloatArray = terms.sum(axis=-1)
    return total
