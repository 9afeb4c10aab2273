"""Tests of noise floors and the Benjamini-Hochberg procedure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from exporters.drift.significance import (
    NoiseFloorCalibrator,
    benjamini_hochberg,
    bh_adjusted_p_values,
    size_bucket,
)
from exporters.drift.statistics import compute_statistics


def _calibrator(probabilities: np.ndarray, reference_size: int) -> NoiseFloorCalibrator:
    rng = np.random.default_rng(5)
    reference = rng.multinomial(reference_size, probabilities).astype(float)[None, :]
    mask = np.ones_like(reference, dtype=bool)
    centres = np.arange(probabilities.size, dtype=float)[None, :]
    return NoiseFloorCalibrator(reference, mask, centres, draws=200, seed=1)


def test_adjusted_p_values_match_scipy_false_discovery_control() -> None:
    """BH adjusted p-values equal scipy.stats.false_discovery_control, ties too."""
    rng = np.random.default_rng(3)
    p_values = np.concatenate([rng.uniform(size=60), rng.uniform(0, 1e-3, 15)])
    p_values[:5] = p_values[5]

    result = bh_adjusted_p_values(p_values)

    expected = stats.false_discovery_control(p_values, method="bh")
    assert expected.tolist() == pytest.approx(result.tolist(), rel=1e-12)


def test_rejections_are_the_adjusted_p_values_at_or_below_q() -> None:
    """BH at q rejects exactly where scipy's adjusted p-value is at most q."""
    rng = np.random.default_rng(4)
    p_values = np.concatenate([rng.uniform(size=80), rng.uniform(0, 5e-3, 20)])

    result = benjamini_hochberg(p_values, 0.05)

    expected = stats.false_discovery_control(p_values) <= 0.05
    assert expected.tolist() == result.tolist()


def test_nan_p_values_are_never_rejected() -> None:
    """A NaN p-value counts as no evidence."""
    p_values = np.array([np.nan, 1e-6, 0.5])

    result = benjamini_hochberg(p_values, 0.05).tolist()

    expected = [False, True, False]
    assert expected == result


def test_q_outside_the_unit_interval_is_rejected() -> None:
    """A false discovery rate of 0 or 1 and above is a mistake."""
    with pytest.raises(ValueError, match="q must be in"):
        benjamini_hochberg(np.array([0.1]), 1.0)


def test_size_bucket_rounds_down_to_within_a_fourth_root_of_two() -> None:
    """Buckets never exceed the size and lose at most a factor 2**(1/4)."""
    sizes = [1, 2, 3, 7, 50, 999, 5000, 100_000, 123_457]

    result = [size_bucket(size) for size in sizes]

    assert all(
        size / 2**0.25 - 1 <= bucket <= size
        for size, bucket in zip(sizes, result, strict=True)
    )
    assert [size_bucket(0.0), size_bucket(0.5)] == [0, 0]


def test_psi_noise_floor_matches_the_chi_square_limit_on_dense_bins() -> None:
    """With well-filled bins the PSI floor is near chi2_0.99(k-1) (1/n + 1/N).

    For two multinomial samples from one distribution, n_eff * PSI tends to a
    chi-square with k - 1 degrees of freedom (Yurdakul, 2018).
    """
    probabilities = np.full(10, 0.1)
    calibrator = _calibrator(probabilities, 200_000)
    n = 5000

    result = calibrator.noise_floors("psi", np.array([0]), np.array([n]), 0.01)[0]

    bucket = size_bucket(n)
    expected = stats.chi2.ppf(0.99, 9) * (1.0 / bucket + 1.0 / 200_000)
    assert expected == pytest.approx(result, rel=0.15)


def test_noise_floor_falls_as_the_window_grows() -> None:
    """Larger windows have smaller noise floors."""
    calibrator = _calibrator(np.array([0.5, 0.2, 0.2, 0.05, 0.05]), 100_000)
    sizes = np.array([50.0, 500.0, 5000.0, 50_000.0])

    result = calibrator.noise_floors("js_distance", np.zeros(4, np.intp), sizes, 0.01)

    expected = sorted(result.tolist(), reverse=True)
    assert expected == result.tolist()


def test_null_windows_exceed_the_noise_floor_about_alpha_of_the_time() -> None:
    """On sparse bins and small windows, null exceedances stay near alpha.

    The chi-square limit is poor here (40 rows over 12 bins, some rare), which is
    why the floor is simulated; 2000 null windows at alpha 0.01 should exceed it
    in at most 2 % of cases.
    """
    probabilities = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.04, 0.03, 0.01])
    probabilities = np.concatenate([probabilities, [0.01, 0.005, 0.005]])
    calibrator = _calibrator(probabilities, 50_000)
    floor = calibrator.noise_floors("psi", np.array([0]), np.array([40.0]), 0.01)[0]
    rng = np.random.default_rng(9)
    windows = rng.multinomial(40, probabilities, size=2000).astype(float)
    reference = np.broadcast_to(calibrator._reference, windows.shape)

    psi = compute_statistics(reference, windows, np.ones_like(windows, bool)).psi
    result = float(np.mean(psi > floor))

    assert result <= 0.02


def test_floors_are_cached_per_feature_and_size_bucket() -> None:
    """Asking again for the same bucket returns the same floor without resampling."""
    calibrator = _calibrator(np.array([0.25, 0.25, 0.5]), 10_000)
    first = calibrator.noise_floors("psi", np.array([0]), np.array([1000.0]), 0.01)

    result = calibrator.noise_floors("psi", np.array([0]), np.array([1010.0]), 0.01)

    assert first.tolist() == result.tolist()


def test_too_few_draws_are_refused() -> None:
    """A floor fitted on fewer than 20 draws would be noise itself."""
    with pytest.raises(ValueError, match="draws must be at least 20"):
        NoiseFloorCalibrator(
            np.ones((1, 3)), np.ones((1, 3), bool), np.zeros((1, 3)), draws=5
        )


def test_null_p_values_of_null_windows_are_rarely_small() -> None:
    """Under the null, p-values from the fitted null fall below 0.01 about 1 % of
    the time (at most 2.5 % over 1000 windows)."""
    probabilities = np.array([0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.015, 0.005])
    calibrator = _calibrator(probabilities, 100_000)
    rng = np.random.default_rng(10)
    windows = rng.multinomial(300, probabilities, size=1000).astype(float)
    reference = np.broadcast_to(calibrator._reference, windows.shape)
    psi = compute_statistics(reference, windows, np.ones_like(windows, bool)).psi

    p_values = calibrator.null_p_values(
        "psi", np.zeros(1000, np.intp), np.full(1000, 300.0), psi
    )
    result = float(np.mean(p_values < 0.01))

    assert 0.0 < result <= 0.025
