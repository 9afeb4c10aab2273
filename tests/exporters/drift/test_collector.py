"""Tests for the drift metrics collector."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.drift.collector import SCORE_FEATURE, DriftCollector, ModelStatus
from exporters.drift.report import (
    DriftReport,
    FeatureDrift,
    Level,
    PerformanceReport,
    RootCause,
)


def _drift(
    name: str, psi: float, level: Level, error: str | None = None
) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        statistics={} if error else {"psi": psi, "p_value": 1e-9, "hellinger": 0.1},
        sample_size=1000.0,
        missing=3.0,
        level=level,
        raw_level=level,
        thresholds={Level.OK: 0.0, Level.WARNING: 0.1, Level.CRITICAL: 0.25},
        noise_floor=0.004,
        top_bins=(("[1, 2)", psi),),
        error=error,
        missing_share=0.003,
        reference_missing_share=0.001,
        missing_level=Level.WARNING if name == "creatinine" else Level.OK,
        missing_thresholds={Level.WARNING: 0.1, Level.CRITICAL: 0.25},
    )


def _status(model: str = "readmission") -> ModelStatus:
    report = DriftReport(
        model=model,
        features={
            "creatinine": _drift("creatinine", 0.4, Level.CRITICAL),
            "age": _drift("age", float("nan"), Level.OK),
            "ward": _drift("ward", 0.0, Level.OK, error="no series in the window"),
        },
        score=_drift("score", 0.12, Level.WARNING),
        performance=PerformanceReport(
            auc=0.7, reference_auc=0.75, ece=0.02, reference_ece=0.01,
            brier=0.1, reference_brier=0.09, level=Level.OK, n_labelled=400.0,
            raw_level=Level.WARNING,
            thresholds={
                "auc_drop": {Level.WARNING: 0.05, Level.CRITICAL: 0.1},
                "ece_rise": {Level.WARNING: 0.07, Level.CRITICAL: 0.1},
            },
        ),
        root_causes=tuple(
            RootCause(f"f{i}", 1.0 / (i + 1), 1.0, None, None) for i in range(8)
        ),
        level=Level.CRITICAL,
    )  # fmt: skip
    return ModelStatus(
        model=model,
        started_seconds=100.0,
        report=report,
        last_success_seconds=1000.0,
        duration_seconds=0.25,
        errors={"unavailable": 2.0},
    )


def _scrape(collector: DriftCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_exposition_passes_promtool_check_metrics(
    binary: Callable[[str], str],
) -> None:
    """The scraped text passes the real ``promtool check metrics``."""
    text = _scrape(DriftCollector(lambda: [_status("a"), _status("b")]))

    checked = subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        check=False,
    )

    result = (checked.returncode, checked.stdout.decode() + checked.stderr.decode())
    assert (0, "") == result


def test_levels_statistics_and_thresholds_are_published() -> None:
    """Levels, statistics, p-values and thresholds appear with their labels."""
    samples = _samples(_scrape(DriftCollector(lambda: [_status()])))

    m = ("model", "readmission")
    result = (
        samples[("healthai_drift_level", (("feature", "creatinine"), m))],
        samples[("healthai_drift_level", (("feature", "__score__"), m))],
        samples[
            (
                "healthai_drift_statistic",
                (("feature", "creatinine"), m, ("statistic", "psi")),
            )
        ],
        samples[("healthai_drift_p_value", (("feature", "creatinine"), m))],
        samples[
            (
                "healthai_drift_threshold",
                (
                    ("feature", "creatinine"),
                    ("level", "critical"),
                    m,
                    ("statistic", "psi"),
                ),
            )
        ],
        samples[("healthai_drift_model_level", (m,))],
        samples[("healthai_drift_feature_error", (("feature", "ward"), m))],
    )
    assert (2.0, 1.0, 0.4, 1e-9, 0.25, 2.0, 1.0) == result


def test_thresholds_name_the_statistic_they_apply_to() -> None:
    """A feature levelled on Hellinger exports its thresholds under that name."""
    status = _status()
    assert status.report is not None
    drift = dataclasses.replace(
        status.report.features["creatinine"], level_statistic="hellinger"
    )
    report = dataclasses.replace(status.report, features={"creatinine": drift})
    status = dataclasses.replace(status, report=report)
    samples = _samples(_scrape(DriftCollector(lambda: [status])))

    result = sorted(
        (dict(labels)["statistic"], dict(labels)["level"], value)
        for (name, labels), value in samples.items()
        if name == "healthai_drift_threshold" and ("feature", "creatinine") in labels
    )

    expected = [("hellinger", "critical", 0.25), ("hellinger", "warning", 0.1)]
    assert expected == result


def test_performance_thresholds_and_raw_level_are_published() -> None:
    """Each measure's effective threshold per level and the raw level appear."""
    samples = _samples(_scrape(DriftCollector(lambda: [_status()])))

    result = (
        sorted(
            (dict(labels)["measure"], dict(labels)["level"], value)
            for (name, labels), value in samples.items()
            if name == "healthai_drift_performance_threshold"
        ),
        samples[("healthai_drift_performance_raw_level", (("model", "readmission"),))],
    )

    expected = (
        [
            ("auc_drop", "critical", 0.1),
            ("auc_drop", "warning", 0.05),
            ("ece_rise", "critical", 0.1),
            ("ece_rise", "warning", 0.07),
        ],
        1.0,
    )
    assert expected == result


def test_an_unreadable_score_is_published_under_the_score_feature_name() -> None:
    """A score read error sets feature_error for __score__, not for "score"."""
    status = _status()
    assert status.report is not None
    report = dataclasses.replace(status.report, score=None)
    status = dataclasses.replace(
        status, report=report, feature_errors={SCORE_FEATURE: "no series"}
    )
    samples = _samples(_scrape(DriftCollector(lambda: [status])))

    result = sorted(
        dict(labels)["feature"]
        for (name, labels), value in samples.items()
        if name == "healthai_drift_feature_error" and value == 1.0
    )

    expected = ["__score__", "ward"]
    assert expected == result


def test_missing_shares_their_level_and_thresholds_are_published() -> None:
    """The window's and reference's missing shares, raw level and thresholds."""
    samples = _samples(_scrape(DriftCollector(lambda: [_status()])))

    labels = (("feature", "creatinine"), ("model", "readmission"))
    result = (
        samples[("healthai_drift_missing_share", labels)],
        samples[("healthai_drift_reference_missing_share", labels)],
        samples[("healthai_drift_missing_raw_level", labels)],
        samples[
            (
                "healthai_drift_missing_threshold",
                (*labels[:1], ("level", "warning"), labels[1]),
            )
        ],
    )

    expected = (0.003, 0.001, 1.0, 0.1)
    assert expected == result


def test_non_finite_statistics_are_left_out() -> None:
    """A NaN statistic publishes no sample rather than NaN."""
    samples = _samples(_scrape(DriftCollector(lambda: [_status()])))

    result = [
        key
        for key in samples
        if key[0] == "healthai_drift_statistic" and ("feature", "age") in key[1]
        and ("statistic", "psi") in key[1]
    ]  # fmt: skip
    assert [] == result


def test_root_causes_are_limited_to_top_k() -> None:
    """Only the ``root_cause_top_k`` first root causes are published."""
    samples = _samples(_scrape(DriftCollector(lambda: [_status()], root_cause_top_k=3)))

    result = sorted(
        dict(labels)["feature"]
        for name, labels in samples
        if name == "healthai_drift_root_cause_score"
    )
    assert ["f0", "f1", "f2"] == result


def test_staleness_grows_from_last_success() -> None:
    """Staleness is the time since the last success by the collector's clock."""
    collector = DriftCollector(lambda: [_status()], clock=lambda: 1090.0)

    samples = _samples(_scrape(collector))

    result = samples[("healthai_drift_staleness_seconds", (("model", "readmission"),))]
    assert 90.0 == result


def test_staleness_counts_from_start_before_any_success() -> None:
    """Before the first success, staleness counts from the start of watching."""
    status = ModelStatus(model="m", started_seconds=100.0, errors={"unavailable": 1})
    collector = DriftCollector(lambda: [status], clock=lambda: 160.0)

    samples = _samples(_scrape(collector))

    result = (
        samples[("healthai_drift_staleness_seconds", (("model", "m"),))],
        samples[
            (
                "healthai_drift_evaluation_errors_total",
                (("model", "m"), ("reason", "unavailable")),
            )
        ],
    )
    assert (60.0, 1.0) == result
