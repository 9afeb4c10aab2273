"""Tests of root-cause ranking and of the bins named for each feature."""

from __future__ import annotations

import numpy as np
import pytest

from exporters.drift.evaluation import DriftMonitor, Window
from exporters.drift.reference import FeatureReference, Reference
from exporters.drift.root_cause import rank_root_causes, top_bins
from otel_processors.binning import BinLayout

_FEATURES = ("age", "bmi", "creatinine", "heart_rate", "systolic", "visits")
_LAYOUT = BinLayout.numeric(np.linspace(-2.0, 2.0, 9).tolist())
_SCORE = BinLayout.numeric(np.linspace(0.1, 0.9, 9).tolist())


def _bin(layout: BinLayout, values: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(layout.edges, values, side="right")
    return np.bincount(bins, minlength=layout.n_bins).astype(float)


def _rows(
    rng: np.random.Generator, size: int, shifted: str, shift: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Patients whose risk score depends on creatinine, bmi and age."""
    values = {name: rng.normal(size=size) for name in _FEATURES}
    values[shifted] = values[shifted] + shift
    logit = 1.2 * values["creatinine"] + 0.5 * values["bmi"] + 0.3 * values["age"]
    return values, 1.0 / (1.0 + np.exp(-logit))


def _window(values: dict[str, np.ndarray], score: np.ndarray) -> Window:
    counts = {name: _bin(_LAYOUT, column) for name, column in values.items()}
    return Window(counts, score=_bin(_SCORE, score))


def _monitor(importance: dict[str, float] | None = None) -> DriftMonitor:
    rng = np.random.default_rng(1)
    values, score = _rows(rng, 200_000, "age", 0.0)
    features = {
        name: FeatureReference(name, _LAYOUT, _bin(_LAYOUT, column))
        for name, column in values.items()
    }
    reference = Reference(
        "readmission",
        "1",
        features,
        score=FeatureReference("score", _SCORE, _bin(_SCORE, score)),
    )
    return DriftMonitor(reference, feature_importance=importance)


def test_the_one_shifted_feature_is_ranked_first() -> None:
    """Creatinine drifting more each window is the top root cause of score drift."""
    monitor = _monitor()
    rng = np.random.default_rng(2)

    report = None
    for step in range(8):
        values, score = _rows(rng, 20_000, "creatinine", 0.1 * step)
        report = monitor.evaluate(_window(values, score))
    assert report is not None
    top = report.root_causes[0]

    result = (top.feature, top.correlation is not None and top.correlation > 0.9)
    expected = ("creatinine", True)
    assert expected == result


def test_a_feature_the_score_ignores_ranks_below_one_it_uses() -> None:
    """With equal drift, the feature whose drift tracks the score's ranks first."""
    monitor = _monitor()
    rng = np.random.default_rng(3)

    report = None
    for step in range(8):
        values, score = _rows(rng, 20_000, "creatinine", 0.1 * step)
        values["visits"] = rng.normal(size=20_000) + 0.7 * (step % 2)
        report = monitor.evaluate(_window(values, score))
    assert report is not None
    result = [cause.feature for cause in report.root_causes[:2]]

    expected = ["creatinine", "visits"]
    assert expected == result


def test_importance_scales_the_ranking() -> None:
    """A feature given no importance scores zero however much it drifts."""
    monitor = _monitor(importance={"creatinine": 0.0, "age": 1.0})
    rng = np.random.default_rng(4)

    values, score = _rows(rng, 20_000, "creatinine", 0.8)
    report = monitor.evaluate(_window(values, score))
    creatinine = next(c for c in report.root_causes if c.feature == "creatinine")

    result = (creatinine.score, creatinine.importance)
    expected = (0.0, 0.0)
    assert expected == result


def test_the_ranking_formula_multiplies_ratio_agreement_and_weight() -> None:
    """score = ratio * (1 + rho) / 2 * importance / max importance."""
    histories = {"a": [0.1, 0.2, 0.3, 0.4], "b": [0.4, 0.3, 0.2, 0.1]}

    result = rank_root_causes(
        {"a": 2.0, "b": 3.0}, histories, [1.0, 2.0, 3.0, 4.0], {"a": 2.0, "b": 4.0}
    )

    expected = (["a", "b"], [2.0 * 1.0 * 0.5, 3.0 * 0.0 * 1.0])
    assert expected[0] == [c.feature for c in result]
    assert expected[1] == pytest.approx([c.score for c in result], abs=1e-12)


def test_short_history_leaves_the_correlation_unknown() -> None:
    """Under four windows there is no correlation; it counts as zero."""
    result = rank_root_causes({"a": 2.0}, {"a": [0.1, 0.2]}, [0.3, 0.4])

    expected = [("a", 1.0, None)]
    assert expected == [(c.feature, c.score, c.correlation) for c in result]


def test_top_bins_name_the_bins_with_the_largest_psi_terms() -> None:
    """Mass moved into the overflow bin makes it the top contributor, by label."""
    monitor = _monitor()
    rng = np.random.default_rng(5)
    values, score = _rows(rng, 20_000, "age", 0.0)
    values["bmi"][:3000] = 5.0

    report = monitor.evaluate(_window(values, score))
    result = report.features["bmi"].top_bins[0][0]

    expected = _LAYOUT.bin_labels()[-1]
    assert expected == result


def test_top_bins_keep_only_positive_contributions() -> None:
    """Zero terms are not named, and at most three bins are."""
    terms = np.array([0.0, 0.3, 0.1, 0.0, 0.2, 0.05])

    result = top_bins(terms, ["a", "b", "c", "d", "e", "f"])

    expected = (("b", 0.3), ("e", 0.2), ("c", 0.1))
    assert expected == result
