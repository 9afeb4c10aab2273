"""Tests of drift thresholds, the drift policy and hysteresis."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from exporters.drift.levels import (
    DEFAULT_FLOORS,
    DriftPolicy,
    FeaturePolicy,
    Hysteresis,
    PerformancePolicy,
    classify,
)
from exporters.drift.report import Level
from otel_processors.errors import ConfigurationError

_THRESHOLDS = {Level.WARNING: 0.1, Level.CRITICAL: 0.25}


def test_classify_needs_both_the_threshold_and_significance() -> None:
    """A large but insignificant statistic stays OK; NaN stays OK."""
    values = np.array([0.05, 0.12, 0.3, 0.3, np.nan])
    significant = np.array([True, True, True, False, True])

    result = classify(values, np.full(5, 0.1), np.full(5, 0.25), significant).tolist()

    expected = [Level.OK, Level.WARNING, Level.CRITICAL, Level.OK, Level.OK]
    assert expected == result


def test_level_is_raised_after_two_of_the_last_three_windows() -> None:
    """One raw warning does not raise the level; a second within three does."""
    hysteresis = Hysteresis(2, 3, 3, 0.8)
    raws = [Level.WARNING, Level.OK, Level.WARNING]

    result = [hysteresis.update(raw, 0.12, _THRESHOLDS) for raw in raws]

    expected = [Level.OK, Level.OK, Level.WARNING]
    assert expected == result


def test_level_clears_after_three_quiet_windows_below_the_clear_ratio() -> None:
    """A raised level drops one step after three windows under 0.8 x threshold."""
    hysteresis = Hysteresis(1, 1, 3, 0.8)
    values = [0.3, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
    raws = [Level.CRITICAL] + [Level.OK] * 6

    result = [
        hysteresis.update(raw, value, _THRESHOLDS)
        for raw, value in zip(raws, values, strict=True)
    ]

    expected = [Level.CRITICAL] * 3 + [Level.WARNING] * 3 + [Level.OK]
    assert expected == result


def test_hits_from_before_a_clear_do_not_raise_the_level_again() -> None:
    """After clearing, raising needs new hits, even with a long raise window."""
    hysteresis = Hysteresis(2, 5, 1, 0.8)
    values = [0.2, 0.2, 0.01, 0.01, 0.2]
    raws = [Level.WARNING, Level.WARNING, Level.OK, Level.OK, Level.WARNING]

    result = [
        hysteresis.update(raw, value, _THRESHOLDS)
        for raw, value in zip(raws, values, strict=True)
    ]

    expected = [Level.OK, Level.WARNING, Level.OK, Level.OK, Level.OK]
    assert expected == result


def test_a_statistic_oscillating_around_the_threshold_does_not_flap() -> None:
    """Alternating just above and below the threshold changes the level once."""
    hysteresis = Hysteresis(2, 3, 3, 0.8)
    values = [0.105 if i % 2 == 0 else 0.095 for i in range(40)]

    levels = []
    for value in values:
        raw = Level.WARNING if value >= 0.1 else Level.OK
        levels.append(hysteresis.update(raw, value, _THRESHOLDS))
    result = sum(a != b for a, b in itertools.pairwise(levels))

    expected = 1
    assert expected == result


def test_the_default_policy_uses_psi_with_the_industry_floors() -> None:
    """Without settings, levels use PSI 0.1 and 0.25."""
    result = DriftPolicy().for_feature("age")

    expected = FeaturePolicy("psi", 0.1, 0.25)
    assert expected == result


def test_from_mapping_reads_overrides_and_default_floors_per_statistic() -> None:
    """A feature switching statistic gets that statistic's default floors."""
    data = {
        "warning": 0.15,
        "critical": 0.3,
        "fdr_q": 0.05,
        "raise_after": 1,
        "raise_window": 1,
        "features": {"age": {"statistic": "js_distance"}, "bmi": {"warning": 0.2}},
        "performance": {"auc_drop_warning": 0.02, "auc_drop_critical": 0.04},
    }

    result = DriftPolicy.from_mapping(data, source="drift.yaml")

    expected = (
        FeaturePolicy("js_distance", *DEFAULT_FLOORS["js_distance"]),
        FeaturePolicy("psi", 0.2, 0.3),
        FeaturePolicy("psi", 0.15, 0.3),
        0.05,
        PerformancePolicy(auc_drop_warning=0.02, auc_drop_critical=0.04),
    )
    assert expected == (
        result.for_feature("age"),
        result.for_feature("bmi"),
        result.for_feature("other"),
        result.fdr_q,
        result.performance,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"alpah": 0.01}, "drift.yaml: unknown key alpah=0.01"),
        ({"alpha": 0.7}, "drift.yaml: drift policy: alpha=0.7"),
        ({"fdr_q": "low"}, "drift.yaml: fdr_q='low': expected a number"),
        ({"statistic": "psy"}, "drift.yaml: statistic='psy'"),
        ({"raise_after": 2.5}, "drift.yaml: raise_after=2.5: expected an integer"),
        (
            {"features": {"age": {"warning": 0.5}}},
            "drift.yaml: features.age.warning=0.5: need 0 < warning < critical",
        ),
        (
            {"features": {"age": {"treshold": 1}}},
            "drift.yaml: unknown key features.age.treshold=1",
        ),
        (
            {"performance": {"ece_rise_warning": 0.3}},
            "drift.yaml: performance.ece_rise_warning=0.3",
        ),
        ({"raise_after": 4}, "drift.yaml: drift policy: raise_after=4"),
        (
            {"missing_rise_warning": 0.3},
            "drift.yaml: drift policy: missing_rise_warning=0.3",
        ),
        (
            {"missing_rise_critical": "high"},
            "drift.yaml: missing_rise_critical='high': expected a number",
        ),
    ],
)
def test_from_mapping_names_source_key_and_value_of_a_bad_setting(
    data: dict[str, object], message: str
) -> None:
    """Every invalid setting fails with the file, key and value in the message."""
    with pytest.raises(ConfigurationError) as caught:
        DriftPolicy.from_mapping(data, source="drift.yaml")

    result = str(caught.value)

    assert result.startswith(message), result


def test_from_mapping_refuses_a_list() -> None:
    """A policy file holding a list instead of a mapping is refused."""
    with pytest.raises(ConfigurationError, match=r"drift\.yaml: the drift policy"):
        DriftPolicy.from_mapping([1, 2], source="drift.yaml")  # type: ignore[arg-type]  # wrong on purpose
