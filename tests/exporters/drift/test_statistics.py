"""Tests of the vectorised drift statistics against scipy and closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance as scipy_distance

from exporters.drift.statistics import (
    STATISTIC_NAMES,
    DriftStatistics,
    bin_centres,
    compute_statistics,
    distance,
    pad_rows,
    posterior_proportions,
)
from otel_processors.binning import BinLayout

_DISTANCES = ("psi", "kl_divergence", "js_distance", "hellinger", "linf", "wasserstein")


def _random_features(
    seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Counts of features with 3 to 20 bins, some bins empty on one side."""
    rng = np.random.default_rng(seed)
    references, currents, centres = [], [], []
    for _ in range(12):
        n_bins = int(rng.integers(3, 21))
        reference = rng.poisson(rng.uniform(0, 40, n_bins)).astype(float)
        current = rng.poisson(rng.uniform(0, 15, n_bins)).astype(float)
        reference[rng.integers(n_bins)] = 0.0
        current[rng.integers(n_bins)] = 0.0
        references.append(reference)
        currents.append(current)
        edges = np.cumsum(rng.uniform(0.5, 2.0, n_bins - 1))
        centres.append(bin_centres(BinLayout.numeric(edges.tolist())))
    return references, currents, centres


def _padded_statistics(
    seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], DriftStatistics]:
    references, currents, centres = _random_features(seed)
    reference, mask = pad_rows(references)
    current, _ = pad_rows(currents)
    centre_matrix, _ = pad_rows(centres, repeat_last=True)
    return (
        references,
        currents,
        centres,
        compute_statistics(reference, current, mask, centre_matrix),
    )


def test_identical_counts_give_exactly_zero_for_every_distance() -> None:
    """Equal reference and current counts give distances of exactly zero."""
    counts = np.array([[5.0, 0.0, 12.0, 3.0, 0.0]])
    mask = np.ones_like(counts, dtype=bool)
    centres = bin_centres(BinLayout.numeric([0.0, 1.0, 2.0, 3.0]))[None, :]

    result = compute_statistics(counts, counts.copy(), mask, centres)

    expected = dict.fromkeys(_DISTANCES, 0.0)
    assert expected == {name: float(result.get(name)[0]) for name in _DISTANCES}


def test_proportional_counts_give_zero_up_to_rounding() -> None:
    """Counts in the same proportions at different sizes give near-zero distances."""
    reference = np.array([[10.0, 20.0, 0.0, 70.0]])
    current = reference * 37.0
    mask = np.ones_like(reference, dtype=bool)

    result = compute_statistics(reference, current, mask)

    expected = [0.0] * 5
    assert expected == pytest.approx(
        [float(result.get(name)[0]) for name in _DISTANCES[:5]], abs=1e-12
    )


def test_bins_empty_on_one_side_keep_kl_and_psi_finite() -> None:
    """A bin empty in the reference only still gives finite KL and PSI."""
    reference = np.array([[100.0, 0.0, 50.0]])
    current = np.array([[10.0, 40.0, 5.0]])
    mask = np.ones_like(reference, dtype=bool)

    result = compute_statistics(reference, current, mask)

    expected = (True, True)
    assert expected == (
        bool(np.isfinite(result.psi[0])),
        bool(np.isfinite(result.kl_divergence[0])),
    )


def test_padding_does_not_change_any_statistic() -> None:
    """A feature padded beside a wider one gets the statistics it gets alone."""
    reference = np.array([4.0, 9.0, 1.0, 0.0])
    current = np.array([1.0, 3.0, 8.0, 2.0])
    centres = bin_centres(BinLayout.numeric([0.0, 1.0, 3.0]))
    wide = np.arange(1.0, 11.0)
    alone = compute_statistics(
        reference[None, :], current[None, :], np.ones((1, 4), bool), centres[None, :]
    )
    ref_matrix, mask = pad_rows([reference, wide])
    cur_matrix, _ = pad_rows([current, wide[::-1]])
    centre_matrix, _ = pad_rows([centres, np.arange(10.0)], repeat_last=True)
    ref_matrix[0, 4:] = 1e6  # junk in the padding must be ignored
    cur_matrix[0, 4:] = 7.0

    result = compute_statistics(ref_matrix, cur_matrix, mask, centre_matrix)

    expected = alone.row(0)
    assert expected == pytest.approx(result.row(0), rel=1e-12, abs=1e-15)


def test_psi_and_kl_match_scipy_entropy_feature_by_feature() -> None:
    """PSI is KL(q||p) + KL(p||q) and KL is KL(q||p), as scipy.stats.entropy."""
    references, currents, _, result = _padded_statistics(seed=11)
    expected_psi, expected_kl = [], []
    for reference, current in zip(references, currents, strict=True):
        mask = np.ones(reference.shape, bool)
        p, q = posterior_proportions(reference, current, mask)
        expected_kl.append(stats.entropy(q, p))
        expected_psi.append(stats.entropy(q, p) + stats.entropy(p, q))

    assert expected_psi == pytest.approx(result.psi.tolist(), rel=1e-10)
    assert expected_kl == pytest.approx(result.kl_divergence.tolist(), rel=1e-10)


def _per_feature(
    references: Sequence[np.ndarray],
    currents: Sequence[np.ndarray],
    measure: Callable[[np.ndarray, np.ndarray], float],
) -> list[float]:
    """Apply a scipy measure to each feature's pseudocounted proportions."""
    values = []
    for reference, current in zip(references, currents, strict=True):
        p, q = posterior_proportions(reference, current, np.ones(reference.shape, bool))
        values.append(float(measure(p, q)))
    return values


def test_js_distance_matches_scipy_jensenshannon_base_2() -> None:
    """The Jensen-Shannon distance equals scipy's with base 2."""
    references, currents, _, result = _padded_statistics(seed=12)

    expected = _per_feature(
        references, currents, lambda p, q: scipy_distance.jensenshannon(p, q, base=2)
    )

    assert expected == pytest.approx(result.js_distance.tolist(), rel=1e-9)


def test_wasserstein_matches_scipy_on_bin_centres_over_reference_spread() -> None:
    """Wasserstein equals scipy's weighted version over the reference spread."""
    references, currents, centres, result = _padded_statistics(seed=13)
    expected = []
    for reference, current, centre in zip(references, currents, centres, strict=True):
        p, q = posterior_proportions(reference, current, np.ones(reference.shape, bool))
        mean = np.sum(p * centre)
        spread = math.sqrt(np.sum(p * (centre - mean) ** 2))
        raw = stats.wasserstein_distance(centre, centre, p, q)
        expected.append(raw / spread)

    assert expected == pytest.approx(result.wasserstein.tolist(), rel=1e-9)


def test_p_value_matches_scipy_chi2_contingency_without_empty_columns() -> None:
    """The p-value is scipy's chi-square test on the non-empty columns."""
    references, currents, _, result = _padded_statistics(seed=14)
    expected = []
    for reference, current in zip(references, currents, strict=True):
        table = np.vstack([reference, current])
        table = table[:, table.sum(axis=0) > 0]
        expected.append(stats.chi2_contingency(table, correction=False).pvalue)

    assert expected == pytest.approx(result.p_value.tolist(), rel=1e-9)


def test_hellinger_matches_scipy_euclidean_of_square_roots() -> None:
    """Hellinger is scipy's Euclidean distance of sqrt p and sqrt q over sqrt 2."""
    references, currents, _, result = _padded_statistics(seed=15)

    expected = _per_feature(
        references,
        currents,
        lambda p, q: scipy_distance.euclidean(np.sqrt(p), np.sqrt(q)) / math.sqrt(2),
    )

    assert expected == pytest.approx(result.hellinger.tolist(), rel=1e-10)


def test_linf_matches_scipy_chebyshev() -> None:
    """L-infinity is scipy's Chebyshev distance between the proportions."""
    references, currents, _, result = _padded_statistics(seed=16)

    expected = _per_feature(references, currents, scipy_distance.chebyshev)

    assert expected == pytest.approx(result.linf.tolist(), rel=1e-12)


def test_linf_names_the_bin_with_the_largest_difference() -> None:
    """L-infinity names the bin where scipy's Chebyshev distance is reached."""
    reference = np.array([[50.0, 50.0, 50.0, 50.0]])
    current = np.array([[50.0, 40.0, 90.0, 20.0]])
    mask = np.ones_like(reference, dtype=bool)
    p, q = posterior_proportions(reference, current, mask)

    result = compute_statistics(reference, current, mask)

    expected = (2, pytest.approx(scipy_distance.chebyshev(p[0], q[0]), rel=1e-12))
    assert expected == (int(result.linf_bin[0]), float(result.linf[0]))


def _normal_histograms(
    mu_ref: float, sigma_ref: float, mu_cur: float, sigma_cur: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2026)
    edges = np.linspace(-8.0, 8.0, 321)
    reference = np.histogram(rng.normal(mu_ref, sigma_ref, 2_000_000), edges)[0]
    current = np.histogram(rng.normal(mu_cur, sigma_cur, 2_000_000), edges)[0]
    mask = np.ones((1, reference.size), bool)
    return reference[None, :].astype(float), current[None, :].astype(float), mask


def test_kl_of_fine_histograms_approaches_the_normal_closed_form() -> None:
    """KL(N(0.5, 1.2) || N(0, 1)) from 2e6-sample histograms is within 0.003.

    Closed form: ln(s1/s0) + (s0**2 + (m0 - m1)**2) / (2 s1**2) - 1/2 for
    KL(N(m0, s0) || N(m1, s1)) (Kullback, Information Theory and Statistics).
    """
    reference, current, mask = _normal_histograms(0.0, 1.0, 0.5, 1.2)
    expected = math.log(1.0 / 1.2) + (1.2**2 + 0.5**2) / 2.0 - 0.5

    result = compute_statistics(reference, current, mask).kl_divergence[0]

    assert expected == pytest.approx(result, abs=0.003)


def test_hellinger_of_fine_histograms_approaches_the_normal_closed_form() -> None:
    """Hellinger of N(0, 1) and N(0.5, 1.2) histograms is within 0.003.

    Closed form: H**2 = 1 - sqrt(2 s0 s1 / (s0**2 + s1**2))
    exp(-(m0 - m1)**2 / (4 (s0**2 + s1**2))) (Pardo, Statistical Inference
    Based on Divergence Measures, 2006).
    """
    reference, current, mask = _normal_histograms(0.0, 1.0, 0.5, 1.2)
    variances = 1.0 + 1.2**2
    expected = math.sqrt(
        1.0 - math.sqrt(2.0 * 1.2 / variances) * math.exp(-(0.5**2) / (4.0 * variances))
    )

    result = compute_statistics(reference, current, mask).hellinger[0]

    assert expected == pytest.approx(result, abs=0.003)


def test_wasserstein_of_a_mean_shift_is_the_shift_in_standard_deviations() -> None:
    """Shifting a normal by 0.5 sd gives a normalised Wasserstein near 0.5."""
    reference, current, mask = _normal_histograms(0.0, 1.0, 0.5, 1.0)
    layout = BinLayout.numeric(np.linspace(-8.0, 8.0, 321)[1:-1].tolist())
    centres = bin_centres(layout)[None, :]
    # The layout's underflow/overflow match the histogram's outermost bins.

    result = compute_statistics(reference, current, mask, centres).wasserstein[0]

    expected = 0.5
    assert expected == pytest.approx(result, abs=0.01)


def test_categorical_features_have_no_wasserstein_distance() -> None:
    """Categorical bins have no order, so Wasserstein is NaN."""
    centres = bin_centres(BinLayout.categorical(["a", "b"]))[None, :]
    counts = np.array([[3.0, 4.0, 1.0]])

    result = compute_statistics(counts, counts[:, ::-1], np.ones((1, 3), bool), centres)

    assert math.isnan(result.wasserstein[0])


def test_both_sides_empty_gives_nan_distances_and_p_value_one() -> None:
    """With no counts on either side every distance is NaN and the p-value 1."""
    zeros = np.zeros((1, 4))

    result = compute_statistics(zeros, zeros, np.ones((1, 4), bool)).row(0)

    expected = [True] * 5 + [1.0]
    assert expected == [math.isnan(result[name]) for name in _DISTANCES[:5]] + [
        result["p_value"]
    ]


def test_distance_agrees_with_compute_statistics_on_stacked_draws() -> None:
    """The single-statistic path gives the same values on a 3-D stack."""
    references, currents, centres, result = _padded_statistics(seed=15)
    reference, mask = pad_rows(references)
    current, _ = pad_rows(currents)
    centre_matrix, _ = pad_rows(centres, repeat_last=True)
    p, q = posterior_proportions(reference[None], current[None], mask)

    values = [distance(name, p, q, centre_matrix)[0] for name in _DISTANCES]

    expected = [result.get(name) for name in _DISTANCES]
    for want, got in zip(expected, values, strict=True):
        assert want.tolist() == pytest.approx(got.tolist(), rel=1e-12)


def test_statistic_names_are_the_report_keys() -> None:
    """The statistics exposed are exactly the keys the report promises."""
    result = set(STATISTIC_NAMES)

    expected = {
        "psi",
        "kl_divergence",
        "js_distance",
        "hellinger",
        "linf",
        "wasserstein",
        "p_value",
    }
    assert expected == result


_COUNTS = st.lists(
    st.integers(min_value=0, max_value=1000).map(float), min_size=2, max_size=12
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_distances_stay_in_their_ranges_and_psi_is_symmetric(
    data: st.DataObject,
) -> None:
    """For any counts: distances and PSI terms are non-negative, JS and Hellinger
    at most 1, and PSI does not depend on which side is the reference."""
    reference = np.array(data.draw(_COUNTS))
    current = np.array(
        data.draw(
            st.lists(
                st.integers(0, 1000).map(float),
                min_size=reference.size,
                max_size=reference.size,
            )
        )
    )
    if reference.sum() == 0 and current.sum() == 0:
        reference[0] = 1.0
    mask = np.ones((1, reference.size), bool)
    forward = compute_statistics(reference[None], current[None], mask)
    backward = compute_statistics(current[None], reference[None], mask)

    result = (
        all(forward.get(name)[0] >= 0 for name in _DISTANCES[:5]),
        forward.js_distance[0] <= 1 + 1e-12 and forward.hellinger[0] <= 1 + 1e-12,
        math.isclose(forward.psi[0], backward.psi[0], rel_tol=1e-9, abs_tol=1e-15),
        bool(np.all(forward.psi_terms >= 0)),
    )

    expected = (True, True, True, True)
    assert expected == result
