"""How large a drift statistic sampling noise alone would make, and FDR control.

Distances between histograms are biased upwards on small windows: with ``k``
bins and ``n`` rows, ``n_eff * PSI`` is close to a chi-square with ``k - 1``
degrees of freedom when nothing changed, where ``1 / n_eff = 1 / n_ref +
1 / n_cur``. Rather than rely on that limit, which fails for sparse bins and
small windows, ``NoiseFloorCalibrator`` simulates the null: both the reference
and the current window are drawn again from the reference proportions
(parametric bootstrap, multinomial), the statistic is computed with the same
estimator as for real windows, and a scaled chi-square ``a * chi2(nu)`` is
fitted to the draws by matching mean and variance (Satterthwaite, 1946). The
noise floor is the larger of its ``1 - alpha`` quantile and the empirical one.
Distances (``js_distance``, ``hellinger``, ``linf``, ``wasserstein``) are
fitted on their square, which is what behaves like a chi-square.

Floors are cached per feature and per current size bucket; sizes are rounded
down to a grid of ratio ``2 ** (1 / 4)``, and a smaller size only raises the
floor, so a bucket errs on the quiet side.

References:
    F. E. Satterthwaite, "An approximate distribution of estimates of variance
    components", Biometrics Bulletin 2 (1946) 110-114.
    Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate",
    J. R. Stat. Soc. B 57 (1995) 289-300.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats

from exporters.drift.statistics import distance, posterior_proportions

__all__ = [
    "MissingShareTest",
    "NoiseFloorCalibrator",
    "benjamini_hochberg",
    "bh_adjusted_p_values",
    "missing_share_test",
    "size_bucket",
]

_logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_SQUARED = frozenset({"js_distance", "hellinger", "linf", "wasserstein"})
# Bounds one simulation batch (draws x rows x bins): 8 MB arrays are reused
# from the heap, larger ones are mapped afresh each time, which was slower here.
_MAX_CELLS_PER_BATCH = 1_000_000
# A reference this many times larger than the window is treated as exact.
_NEGLIGIBLE_REFERENCE_NOISE = 100


def bh_adjusted_p_values(p_values: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values), vectorised.

    ``adjusted_(i) = min_(j >= i) min(1, m p_(j) / j)`` over the sorted
    p-values. NaN p-values are read as 1 (no evidence) and still count in
    ``m``, which keeps the procedure conservative.

    Args:
        p_values: one p-value per hypothesis, any shape.

    Returns:
        The adjusted p-values, same shape.
    """
    flat = np.nan_to_num(np.asarray(p_values, dtype=np.float64).ravel(), nan=1.0)
    count = flat.size
    if count == 0:
        return flat.reshape(np.shape(p_values))

    order = np.argsort(flat)
    scaled = flat[order] * count / np.arange(1, count + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(count)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted.reshape(np.shape(p_values))


def benjamini_hochberg(p_values: FloatArray, q: float) -> BoolArray:
    """Reject the hypotheses the Benjamini-Hochberg step-up procedure rejects.

    Args:
        p_values: one p-value per hypothesis.
        q: the false discovery rate to control, in ``(0, 1)``.

    Returns:
        True where the hypothesis is rejected.

    Raises:
        ValueError: when ``q`` is not in ``(0, 1)``.
    """
    if not 0.0 < q < 1.0:
        msg = f"the false discovery rate q must be in (0, 1), got {q}"
        raise ValueError(msg)
    result: BoolArray = bh_adjusted_p_values(p_values) <= q
    return result


@dataclass(frozen=True)
class MissingShareTest:
    """Missing shares of a window and its reference, and the noise around them.

    Attributes:
        share: missing values over all values, in the window.
        reference_share: the same in the reference.
        margin: the rise of the share that sampling noise alone exceeds with
            probability ``alpha``.
        p_value: one-sided p-value of a rise.
    """

    share: FloatArray
    reference_share: FloatArray
    margin: FloatArray
    p_value: FloatArray


def missing_share_test(
    reference_missing: FloatArray,
    reference_present: FloatArray,
    current_missing: FloatArray,
    current_present: FloatArray,
    alpha: float,
) -> MissingShareTest:
    """Test whether each feature's missing share rose from the reference's.

    Two p-values, the larger one kept (both are valid, so their maximum is):

    - exact binomial, the window's missing count against the reference rate
      ``(m_R + 1/2) / (n_R + 1)`` (Jeffreys' estimate, so a reference without
      missing values does not make a single missing value significant);
    - the two-proportion z-test, pooled, which carries the reference's own
      sampling noise.

    The margin is likewise the larger of the binomial ``1 - alpha`` quantile
    and ``z_(1-alpha)`` standard errors of the difference. Vectorised.

    Args:
        reference_missing: missing values per feature in the reference.
        reference_present: values in bins per feature in the reference.
        current_missing: missing values per feature in the window.
        current_present: values in bins per feature in the window.
        alpha: the tail probability left above the margin.

    Returns:
        The shares, margins and p-values; NaN shares (nothing counted) give
        a p-value of 1.
    """
    ref_total = reference_missing + reference_present
    cur_total = current_missing + current_present
    with np.errstate(invalid="ignore", divide="ignore"):
        share = current_missing / cur_total
        reference_share = reference_missing / ref_total
        rate = (reference_missing + 0.5) / (ref_total + 1.0)
        pooled = (reference_missing + current_missing) / (ref_total + cur_total)
        spread = np.sqrt(pooled * (1.0 - pooled) * (1.0 / ref_total + 1.0 / cur_total))
        z = (share - reference_share) / spread
    trials = np.rint(np.nan_to_num(cur_total, nan=0.0)).astype(np.int64)
    successes = np.rint(np.nan_to_num(current_missing, nan=0.0))
    binomial_p = stats.binom.sf(successes - 1.0, trials, rate)
    z_p = np.where(spread > 0, stats.norm.sf(np.nan_to_num(z, nan=0.0)), 1.0)
    p_value = np.where(np.isfinite(share), np.fmax(binomial_p, z_p), 1.0)

    z_alpha = float(stats.norm.ppf(1.0 - alpha))
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = stats.binom.ppf(1.0 - alpha, trials, rate) / trials - rate
        normal = z_alpha * np.sqrt(
            rate * (1.0 - rate) * (1.0 / ref_total + 1.0 / cur_total)
        )
    margin = np.fmax(np.nan_to_num(quantile, nan=0.0), np.nan_to_num(normal, nan=0.0))
    return MissingShareTest(
        share=np.asarray(share, dtype=np.float64),
        reference_share=np.asarray(reference_share, dtype=np.float64),
        margin=np.asarray(margin, dtype=np.float64),
        p_value=np.asarray(p_value, dtype=np.float64),
    )


def size_bucket(size: float) -> int:
    """Round a sample size down to the calibration grid ``2 ** (j / 4)``."""
    if size < 1.0:
        return 0
    step = math.floor(4.0 * math.log2(size) + 1e-9)
    bucket: int = math.floor(2.0 ** (step / 4.0))
    return max(1, bucket)


class NoiseFloorCalibrator:
    """Noise floors of the drift statistics of one reference.

    Args:
        reference: reference counts, ``features x bins`` (padded).
        mask: True on real bins.
        centres: bin centres (padded by repeating the last one), for the
            Wasserstein distance.
        draws: simulated windows per floor.
        seed: seed of the simulation.

    Raises:
        ValueError: when ``draws`` is below 20.
    """

    def __init__(
        self,
        reference: FloatArray,
        mask: BoolArray,
        centres: FloatArray,
        *,
        draws: int = 200,
        seed: int = 0,
    ) -> None:
        if draws < 20:
            msg = f"draws must be at least 20 to fit a noise floor, got {draws}"
            raise ValueError(msg)
        self._reference = np.where(mask, reference, 0.0)
        self._mask = mask
        self._centres = centres
        self._draws = draws
        self._rng = np.random.default_rng(seed)
        self._cache: dict[tuple[int, str, int], _NullFit] = {}

        totals = self._reference.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            self._proportions = np.where(totals > 0, self._reference / totals, 0.0)
        self._reference_sizes = np.rint(totals[:, 0]).astype(np.int64)

    def noise_floors(
        self,
        statistic: str,
        rows: npt.NDArray[np.intp],
        current_sizes: FloatArray,
        alpha: float,
    ) -> FloatArray:
        """Return the ``1 - alpha`` noise floor of ``statistic`` for each row.

        Args:
            statistic: a distance name from ``STATISTIC_NAMES``.
            rows: the reference rows (features) to calibrate.
            current_sizes: the current window size of each of those rows.
            alpha: the tail probability left above the floor.

        Returns:
            One floor per row; 0 for an empty current window.
        """
        fits = self._fits(statistic, rows, current_sizes)
        return np.asarray([fit.quantile(alpha) for fit in fits], dtype=np.float64)

    def null_p_values(
        self,
        statistic: str,
        rows: npt.NDArray[np.intp],
        current_sizes: FloatArray,
        values: FloatArray,
    ) -> FloatArray:
        """Return the probability under the fitted null of a value this large.

        Args:
            statistic: a distance name from ``STATISTIC_NAMES``.
            rows: the reference rows (features).
            current_sizes: the current window size of each of those rows.
            values: the observed statistic of each row.

        Returns:
            One p-value per row; NaN values give 1.
        """
        fits = self._fits(statistic, rows, current_sizes)
        scale = np.asarray([fit.scale for fit in fits], dtype=np.float64)
        dof = np.asarray([fit.dof for fit in fits], dtype=np.float64)
        largest = np.asarray([fit.sample[-1] for fit in fits], dtype=np.float64)
        x = values * values if statistic in _SQUARED else np.asarray(values)

        fitted = scale > 0.0
        p_values = np.where(x <= largest, 1.0, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_values[fitted] = stats.chi2.sf(x[fitted] / scale[fitted], dof[fitted])
        result: FloatArray = np.where(np.isfinite(x), p_values, 1.0)
        return result

    def _fits(
        self,
        statistic: str,
        rows: npt.NDArray[np.intp],
        current_sizes: FloatArray,
    ) -> list[_NullFit]:
        buckets = [size_bucket(float(size)) for size in current_sizes]
        keys = [
            (int(row), statistic, bucket)
            for row, bucket in zip(rows, buckets, strict=True)
        ]
        uncached = [i for i, key in enumerate(keys) if key not in self._cache]
        if uncached:
            self._calibrate(
                statistic,
                np.asarray([rows[i] for i in uncached], dtype=np.intp),
                np.asarray([buckets[i] for i in uncached], dtype=np.int64),
            )
        return [self._cache[key] for key in keys]

    def _calibrate(
        self,
        statistic: str,
        rows: npt.NDArray[np.intp],
        buckets: npt.NDArray[np.int64],
    ) -> None:
        _logger.debug(
            "Calibrating %s noise floors for %s features", statistic, rows.size
        )
        width = self._reference.shape[1]
        batch = max(1, _MAX_CELLS_PER_BATCH // (self._draws * max(width, 1)))
        for start in range(0, rows.size, batch):
            chunk = rows[start : start + batch]
            sizes = buckets[start : start + batch]
            draws = self._simulate(statistic, chunk, sizes)
            for row, bucket, sample in zip(chunk, sizes, draws, strict=True):
                key = (int(row), statistic, int(bucket))
                self._cache[key] = _NullFit.from_draws(
                    sample, squared=statistic in _SQUARED
                )

    def _simulate(
        self,
        statistic: str,
        rows: npt.NDArray[np.intp],
        sizes: npt.NDArray[np.int64],
    ) -> FloatArray:
        """Return simulated null values of the statistic, ``rows x draws``."""
        proportions = self._proportions[rows]
        shape = (self._draws, rows.size)
        reference_sizes = self._reference_sizes[rows]
        if np.all(reference_sizes >= _NEGLIGIBLE_REFERENCE_NOISE * sizes):
            # The reference adds under 1 % to the null spread: keep it fixed.
            reference = np.broadcast_to(
                self._reference[rows], (*shape, proportions.shape[1])
            )
        else:
            reference = self._rng.multinomial(
                reference_sizes, proportions, size=shape
            ).astype(np.float64)
        current = self._rng.multinomial(sizes, proportions, size=shape).astype(
            np.float64
        )

        mask = self._mask[rows]
        p, q = posterior_proportions(reference, current, mask)
        values = distance(statistic, p, q, self._centres[rows])
        result: FloatArray = np.nan_to_num(values, nan=0.0).T
        return result


@dataclass(frozen=True)
class _NullFit:
    """A scaled chi-square ``scale * chi2(dof)`` fitted to simulated null values.

    ``squared`` distances are fitted on their square. ``sample`` keeps the
    sorted simulated values (squared when fitted so) for empirical quantiles;
    ``quantiles`` memoises floors by ``alpha``.
    """

    scale: float
    dof: float
    squared: bool
    sample: FloatArray
    quantiles: dict[float, float] = field(default_factory=dict)

    @classmethod
    def from_draws(cls, values: FloatArray, *, squared: bool) -> _NullFit:
        sample = np.sort(values**2 if squared else values)
        mean = float(sample.mean())
        variance = float(sample.var(ddof=1))
        if mean <= 0.0 or variance <= 0.0:
            # A degenerate null (one bin, empty window): no spread to fit.
            return cls(0.0, 0.0, squared, sample)
        return cls(
            variance / (2.0 * mean), 2.0 * mean * mean / variance, squared, sample
        )

    def quantile(self, alpha: float) -> float:
        """The larger of the fitted and the empirical ``1 - alpha`` quantile."""
        if alpha in self.quantiles:
            return self.quantiles[alpha]
        empirical = float(np.quantile(self.sample, 1.0 - alpha))
        fitted = float(self.sample[-1])
        if self.scale > 0.0:
            fitted = self.scale * float(stats.chi2.ppf(1.0 - alpha, self.dof))
        floor = max(fitted, empirical)
        self.quantiles[alpha] = math.sqrt(floor) if self.squared else floor
        return self.quantiles[alpha]
