"""Tests of DriftMonitor: false alarms, detection, bad data and rendering."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from exporters.drift.evaluation import DriftMonitor, Window
from exporters.drift.levels import DEFAULT_FLOORS, DriftPolicy, FeaturePolicy
from exporters.drift.reference import FeatureReference, Reference
from exporters.drift.report import DriftReport, Level, render_table, report_to_json
from exporters.drift.statistics import bin_centres
from otel_processors.binning import BinLayout
from otel_processors.errors import ConfigurationError

_EDGES = np.quantile(
    np.random.default_rng(0).normal(size=100_000), np.arange(1, 10) / 10
)
_NORMAL = BinLayout.numeric(_EDGES.tolist())


def _bin(values: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(_NORMAL.edges, values, side="right")
    return np.bincount(bins, minlength=_NORMAL.n_bins).astype(float)


def _null_model(seed: int) -> tuple[Reference, dict[str, np.ndarray]]:
    """24 features (18 numeric, 6 categorical with rare levels) and their truth."""
    rng = np.random.default_rng(seed)
    features, truth = {}, {}
    for i in range(24):
        if i < 18:
            n_bins = int(rng.integers(6, 16))
            layout = BinLayout.numeric(np.arange(n_bins - 1, dtype=float).tolist())
        else:
            n_bins = 5
            layout = BinLayout.categorical(["a", "b", "c", "d"])
        probabilities = rng.dirichlet(np.full(n_bins, 2.0))
        probabilities[0] = 0.002  # a rare bin, as outliers and odd codes are
        probabilities /= probabilities.sum()
        name = f"feature_{i:02d}"
        truth[name] = probabilities
        counts = rng.multinomial(200_000, probabilities).astype(float)
        features[name] = FeatureReference(name, layout, counts)
    return Reference("readmission", "1", features), truth


_SCORE_LAYOUT = BinLayout.numeric(np.linspace(0.1, 0.9, 9).tolist())
_SCORE_RATE = np.clip(bin_centres(_SCORE_LAYOUT), 0.0, 1.0)


def _null_model_with_score(
    seed: int,
) -> tuple[Reference, dict[str, np.ndarray], np.ndarray]:
    """The 24-feature null model plus a calibrated score with labelled outcomes."""
    base, truth = _null_model(seed)
    rng = np.random.default_rng(seed + 7)
    score_truth = rng.dirichlet(np.full(_SCORE_LAYOUT.n_bins, 3.0))
    score = rng.multinomial(200_000, score_truth)
    positives = rng.binomial(score, _SCORE_RATE).astype(float)
    reference = Reference(
        base.model,
        base.model_version,
        base.features,
        score=FeatureReference("risk", _SCORE_LAYOUT, score.astype(float)),
        score_by_outcome={"1": positives, "0": score - positives},
    )
    return reference, truth, score_truth


def _null_policy(statistic: str, reference: Reference) -> DriftPolicy:
    """Every feature and the score on ``statistic``; JS where it is undefined."""
    if statistic != "wasserstein":
        return DriftPolicy(statistic=statistic)
    warning, critical = DEFAULT_FLOORS["js_distance"]
    categorical = {
        name: FeaturePolicy("js_distance", warning, critical)
        for name, feature in reference.features.items()
        if feature.layout.kind == "categorical"
    }
    return DriftPolicy(statistic=statistic, features=categorical)


@pytest.mark.slow
@pytest.mark.parametrize("window_size", [50, 500, 5000, 100_000])
@pytest.mark.parametrize("statistic", sorted(DEFAULT_FLOORS))
def test_no_false_alarms_on_windows_drawn_from_the_reference_distribution(
    statistic: str,
    window_size: int,
    record_property: Callable[[str, object], None],
) -> None:
    """200 null windows of 24 features, a score and outcomes: at most 1 % raise.

    The reference is itself a 200 000-row sample of the truth the windows come
    from, so both sides carry sampling noise, as in production. Counted are
    windows whose model level (features, score and performance, after
    hysteresis) is above OK, and windows where anything's raw level is.
    """
    reference, truth, score_truth = _null_model_with_score(seed=window_size)
    monitor = DriftMonitor(reference, _null_policy(statistic, reference))
    rng = np.random.default_rng(window_size + 1)

    raised = raw = 0
    for _ in range(200):
        score = rng.multinomial(window_size, score_truth)
        positives = rng.binomial(score, _SCORE_RATE).astype(float)
        window = Window(
            {
                name: rng.multinomial(window_size, p).astype(float)
                for name, p in truth.items()
            },
            score=score.astype(float),
            score_by_outcome={"1": positives, "0": score - positives},
        )
        report = monitor.evaluate(window)
        raised += report.level > Level.OK
        raw += _any_raw_level(report)
    record_property("false_alarm_rate", raised / 200)
    record_property("raw_false_alarm_rate", raw / 200)

    result = (raised / 200, raw / 200)

    assert max(result) <= 0.01, (
        f"{statistic}, {window_size} rows: {result[0]:.1%} of null windows "
        f"raised the model level, {result[1]:.1%} a raw level"
    )


def _any_raw_level(report: DriftReport) -> bool:
    drifts = [*report.features.values()]
    if report.score is not None:
        drifts.append(report.score)
    performance = report.performance
    return any(d.raw_level > Level.OK for d in drifts) or (
        performance is not None and performance.raw_level > Level.OK
    )


def _normal_reference() -> Reference:
    rng = np.random.default_rng(1)
    features = {
        name: FeatureReference(name, _NORMAL, _bin(rng.normal(size=200_000)))
        for name in ("age", "bmi", "creatinine")
    }
    return Reference("readmission", "1", features)


def test_a_modest_shift_is_detected_on_large_windows() -> None:
    """A 0.4 sd shift on 100 000 rows warns at the second window (hysteresis).

    The other features stay OK throughout.
    """
    monitor = DriftMonitor(_normal_reference())
    rng = np.random.default_rng(2)

    levels = []
    for _ in range(2):
        window = Window(
            {
                "age": _bin(rng.normal(0.4, 1.0, 100_000)),
                "bmi": _bin(rng.normal(size=100_000)),
                "creatinine": _bin(rng.normal(size=100_000)),
            }
        )
        report = monitor.evaluate(window)
        levels.append({name: d.level for name, d in report.features.items()})
    result = levels

    ok = {"age": Level.OK, "bmi": Level.OK, "creatinine": Level.OK}
    expected = [ok, {**ok, "age": Level.WARNING}]
    assert expected == result


def test_on_large_windows_the_effect_size_floor_sets_the_threshold() -> None:
    """With 100 000 rows noise is far below 0.1, so the thresholds are the floors."""
    monitor = DriftMonitor(_normal_reference())
    rng = np.random.default_rng(11)

    report = monitor.evaluate(Window({"bmi": _bin(rng.normal(size=100_000))}))
    bmi = report.features["bmi"]

    expected = ({Level.WARNING: 0.1, Level.CRITICAL: 0.25}, True)
    assert expected == (dict(bmi.thresholds), bmi.noise_floor < 0.01)


def test_the_same_shift_on_fifty_rows_stays_under_the_noise_floor() -> None:
    """On 50 rows the noise floor, not the 0.1 floor, sets the threshold."""
    monitor = DriftMonitor(_normal_reference())
    rng = np.random.default_rng(3)

    report = monitor.evaluate(Window({"age": _bin(rng.normal(0.4, 1.0, 50))}))
    age = report.features["age"]

    expected = (Level.OK, age.noise_floor)
    assert expected == (age.raw_level, age.thresholds[Level.WARNING])
    assert age.noise_floor > 0.1


def _reference_with_missing(share: float) -> Reference:
    """Three normal features, each missing in ``share`` of 200 000 rows."""
    rng = np.random.default_rng(21)
    features = {}
    for name in ("age", "bmi", "creatinine"):
        missing = int(rng.binomial(200_000, share))
        counts = _bin(rng.normal(size=200_000 - missing))
        features[name] = FeatureReference(name, _NORMAL, counts, missing=missing)
    return Reference("readmission", "1", features)


def _window_with_missing(
    rng: np.random.Generator, size: int, shares: dict[str, float]
) -> Window:
    counts, missing = {}, {}
    for name, share in shares.items():
        absent = int(rng.binomial(size, share))
        counts[name] = _bin(rng.normal(size=size - absent))
        missing[name] = float(absent)
    return Window(counts, missing=missing)


def test_a_feature_going_ninety_percent_missing_is_critical() -> None:
    """From 5 % to 90 % missing: raw CRITICAL at once, CRITICAL after two windows.

    The values that remain come from the reference distribution, so only the
    missing share can raise it; the other features stay OK.
    """
    monitor = DriftMonitor(_reference_with_missing(0.05))
    rng = np.random.default_rng(22)
    shares = {"age": 0.9, "bmi": 0.05, "creatinine": 0.05}

    levels = []
    for _ in range(2):
        report = monitor.evaluate(_window_with_missing(rng, 2000, shares))
        age = report.features["age"]
        levels.append((age.missing_level, age.raw_level, age.level, report.level))
    others = {report.features[n].raw_level for n in ("bmi", "creatinine")}
    result = (levels, others, round(report.features["age"].missing_share, 1))

    critical, ok = Level.CRITICAL, Level.OK
    expected = (
        [(critical, critical, ok, ok), (critical, critical, critical, critical)],
        {ok},
        0.9,
    )
    assert expected == result


@pytest.mark.parametrize("window_size", [50, 500, 20_000])
def test_missingness_at_the_reference_rate_raises_no_level(
    window_size: int, record_property: Callable[[str, object], None]
) -> None:
    """200 windows missing 5 % as the reference does: at most 1 % raise a level.

    A reference without any missing value and windows with 1 % missing stay
    quiet too. Counted is the model level (after hysteresis); the share of
    windows with a raw missing level is recorded and shown as well.
    """
    rates, raw_rates = [], []
    for share, reference_share in ((0.05, 0.05), (0.01, 0.0)):
        monitor = DriftMonitor(_reference_with_missing(reference_share))
        rng = np.random.default_rng(window_size)
        shares = dict.fromkeys(("age", "bmi", "creatinine"), share)
        raised = raw = 0
        for _ in range(200):
            report = monitor.evaluate(_window_with_missing(rng, window_size, shares))
            raised += report.level > Level.OK
            raw += any(d.missing_level > Level.OK for d in report.features.values())
        rates.append(raised / 200)
        raw_rates.append(raw / 200)
    record_property("missing_false_alarm_rates", rates)
    record_property("missing_raw_false_alarm_rates", raw_rates)

    result = max(rates)

    assert result <= 0.01, (
        f"{window_size} rows: level raised in {rates}, raw in {raw_rates} of windows"
    )


def test_bad_counts_give_an_error_entry_and_not_an_exception() -> None:
    """Wrong length, NaN and negative counts are reported per feature."""
    monitor = DriftMonitor(_normal_reference())
    good = _bin(np.random.default_rng(4).normal(size=1000))
    with_nan = good.copy()
    with_nan[3] = np.nan
    negative = good.copy()
    negative[0] = -1.0

    report = monitor.evaluate(
        Window({"age": good[:-1], "bmi": with_nan, "creatinine": negative})
    )
    result = {name: d.error for name, d in report.features.items()}

    expected = {
        "age": "9 counts for 10 reference bins",
        "bmi": "counts contain NaN or infinite values",
        "creatinine": "counts contain negative values",
    }
    assert expected == result


def test_an_unreadable_missing_count_is_nan_not_an_exception() -> None:
    """A missing count that is not a number is reported as NaN."""
    monitor = DriftMonitor(_normal_reference())
    counts = _bin(np.random.default_rng(10).normal(size=1000))

    bad = {"bmi": "n/a"}
    report = monitor.evaluate(Window({"bmi": counts}, missing=bad))  # type: ignore[arg-type]  # bad on purpose
    result = np.isnan(report.features["bmi"].missing)

    assert result


def test_features_absent_from_the_window_are_absent_from_the_report() -> None:
    """Only features the window holds are reported; unknown ones are ignored."""
    monitor = DriftMonitor(_normal_reference())
    counts = _bin(np.random.default_rng(5).normal(size=1000))

    report = monitor.evaluate(Window({"bmi": counts, "height": counts}))
    result = list(report.features)

    expected = ["bmi"]
    assert expected == result


def test_score_drift_is_measured_like_a_feature() -> None:
    """A shifted score is flagged like a feature, whatever the score is named."""
    rng = np.random.default_rng(6)
    reference = Reference(
        "readmission",
        "1",
        {},
        score=FeatureReference("risk", _NORMAL, _bin(rng.normal(size=200_000))),
    )
    monitor = DriftMonitor(reference, DriftPolicy(raise_after=1, raise_window=1))

    report = monitor.evaluate(Window({}, score=_bin(rng.normal(0.8, 1.0, 20_000))))

    assert report.score is not None
    result = (report.score.level, report.level)
    expected = (Level.CRITICAL, Level.CRITICAL)
    assert expected == result


def test_the_report_renders_as_strict_json_and_as_a_table() -> None:
    """JSON has no NaN and names levels; the table lists features and errors."""
    monitor = DriftMonitor(_normal_reference())
    counts = _bin(np.random.default_rng(7).normal(size=1000))
    report = monitor.evaluate(Window({"age": counts, "bmi": counts[:3]}))

    text = json.dumps(report_to_json(report), allow_nan=False)
    table = render_table(report)

    result = (
        json.loads(text)["features"]["age"]["level"],
        "bmi: 3 counts for 10 reference bins" in table,
        table.splitlines()[1].split()[:3],
    )
    expected = ("OK", True, ["feature", "level", "raw"])
    assert expected == result


def _score_layout() -> BinLayout:
    return BinLayout.numeric(np.linspace(0.1, 0.9, 9).tolist())


def _labelled(
    rng: np.random.Generator, size: int, strength: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    layout = _score_layout()
    scores = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 2.0, size)))
    truth = 1.0 / (1.0 + np.exp(-strength * np.log(scores / (1.0 - scores))))
    outcomes = rng.uniform(size=size) < truth
    bins = np.searchsorted(layout.edges, scores, side="right")
    by_outcome = {
        "1": np.bincount(bins[outcomes], minlength=layout.n_bins).astype(float),
        "0": np.bincount(bins[~outcomes], minlength=layout.n_bins).astype(float),
    }
    return np.bincount(bins, minlength=layout.n_bins).astype(float), by_outcome


def test_performance_degradation_raises_the_model_level_through_hysteresis() -> None:
    """Outcomes decoupled from the score: raw CRITICAL at once, CRITICAL at two.

    The performance level needs 2 of the last 3 windows, like a feature.
    """
    rng = np.random.default_rng(8)
    score, by_outcome = _labelled(rng, 100_000, 1.0)
    reference = Reference(
        "readmission",
        "1",
        {},
        score=FeatureReference("score", _score_layout(), score),
        score_by_outcome=by_outcome,
    )
    monitor = DriftMonitor(reference)

    levels = []
    for _ in range(2):
        current, current_by_outcome = _labelled(rng, 5000, 0.3)
        report = monitor.evaluate(
            Window({}, score=current, score_by_outcome=current_by_outcome)
        )
        assert report.performance is not None
        levels.append(
            (report.performance.raw_level, report.performance.level, report.level)
        )
    result = levels

    critical = Level.CRITICAL
    expected = [(critical, Level.OK, Level.OK), (critical, critical, critical)]
    assert expected == result


def test_score_counts_of_the_wrong_length_skip_performance() -> None:
    """Outcome counts that do not fit the score layout give no performance."""
    rng = np.random.default_rng(9)
    score, by_outcome = _labelled(rng, 10_000, 1.0)
    reference = Reference(
        "readmission",
        "1",
        {},
        score=FeatureReference("score", _score_layout(), score),
        score_by_outcome=by_outcome,
    )
    monitor = DriftMonitor(reference)

    report = monitor.evaluate(
        Window({}, score=score, score_by_outcome={"1": np.ones(3), "0": np.ones(3)})
    )

    assert report.performance is None


def test_wasserstein_levels_on_a_categorical_feature_are_refused() -> None:
    """Levelling a categorical feature on Wasserstein fails at start."""
    reference = Reference(
        "readmission",
        "1",
        {
            "ward": FeatureReference(
                "ward", BinLayout.categorical(["a", "b"]), np.array([5.0, 3.0, 1.0])
            )
        },
    )
    policy = DriftPolicy(statistic="wasserstein")

    with pytest.raises(ConfigurationError, match=r"features\.ward\.statistic"):
        DriftMonitor(reference, policy)
