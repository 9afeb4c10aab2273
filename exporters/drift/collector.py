"""Drift results as Prometheus metrics: a prometheus-client custom collector.

The collector turns each model's latest ``DriftReport`` into metric families
at scrape time; it computes nothing itself. Labels are bounded by the
configuration: ``feature`` takes the reference's features (and ``__score__``
for the model score), ``statistic`` the names of ``STATISTIC_NAMES``, root
causes the top ``root_cause_top_k`` only. Non-finite values are left out.

Families (every one carries ``model``)::

    healthai_drift_statistic{feature, statistic}     gauge
    healthai_drift_p_value{feature}                  gauge
    healthai_drift_level{feature}                    gauge 0 ok, 1 warning, 2 critical
    healthai_drift_raw_level{feature}                gauge, before hysteresis
    healthai_drift_threshold{feature, statistic, level}
                                                     gauge, level warning|critical
    healthai_drift_noise_floor{feature}              gauge
    healthai_drift_window_samples{feature}           gauge
    healthai_drift_window_missing{feature}           gauge
    healthai_drift_missing_share{feature}            gauge, missing over all values
    healthai_drift_reference_missing_share{feature}  gauge
    healthai_drift_missing_raw_level{feature}        gauge, missing-share rise alone
    healthai_drift_missing_threshold{feature, level} gauge, of the rise
    healthai_drift_feature_error{feature}            gauge 1 when unreadable
    healthai_drift_model_level                       gauge
    healthai_drift_root_cause_score{feature}         gauge, top-K
    healthai_drift_performance{measure}              gauge
    healthai_drift_performance_level                 gauge, after hysteresis
    healthai_drift_performance_raw_level             gauge
    healthai_drift_performance_threshold{measure, level}
                                                     gauge, auc_drop|ece_rise
    healthai_drift_last_success_timestamp_seconds    gauge
    healthai_drift_staleness_seconds                 gauge
    healthai_drift_evaluation_duration_seconds       gauge, last evaluation
    healthai_drift_evaluation_errors_total{reason}   counter
    healthai_drift_clamped_bins_total                counter
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporters.drift.report import SCORE_FEATURE, DriftReport, FeatureDrift, Level

__all__ = ["SCORE_FEATURE", "DriftCollector", "ModelStatus"]


@dataclass(frozen=True)
class ModelStatus:
    """What the exporter knows about one model at a moment.

    Attributes:
        model: the model name.
        started_seconds: when watching began (Unix time).
        report: the last good report, or None before the first success.
        feature_errors: features that could not be read in the last window.
        last_success_seconds: when ``report`` was computed (Unix time).
        duration_seconds: how long the last evaluation took.
        errors: failed evaluations by reason, since start.
        clamped_bins: negative bin differences clamped, since start.
    """

    model: str
    started_seconds: float
    report: DriftReport | None = None
    feature_errors: Mapping[str, str] = field(default_factory=dict)
    last_success_seconds: float | None = None
    duration_seconds: float | None = None
    errors: Mapping[str, float] = field(default_factory=dict)
    clamped_bins: float = 0.0


class DriftCollector:
    """Yield the drift metric families of every watched model.

    Args:
        statuses: returns the current status of every model (called at each
            scrape; must be cheap and thread-safe).
        root_cause_top_k: how many root causes are published per model.
        clock: the wall clock, for staleness.

    Raises:
        ValueError: when ``root_cause_top_k`` is below 1.
    """

    def __init__(
        self,
        statuses: Callable[[], Sequence[ModelStatus]],
        *,
        root_cause_top_k: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if root_cause_top_k < 1:
            msg = f"root_cause_top_k must be >= 1, got {root_cause_top_k}"
            raise ValueError(msg)
        self._statuses = statuses
        self._top_k = root_cause_top_k
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """Yield every family, with the samples of every model."""
        families = _Families()
        now = self._clock()
        for status in self._statuses():
            _add_status(families, status, now, self._top_k)
        yield from families.all()


class _Families:
    """The families of one scrape."""

    def __init__(self) -> None:
        feature = ["model", "feature"]
        self.statistic = _gauge(
            "statistic",
            "Drift statistic of a feature's window against its reference",
            [*feature, "statistic"],
        )
        self.p_value = _gauge(
            "p_value", "p-value of the chi-squared test, before FDR control", feature
        )
        self.level = _gauge(
            "level",
            "Drift level after hysteresis (0 ok, 1 warning, 2 critical)",
            feature,
        )
        self.raw_level = _gauge(
            "raw_level", "Drift level of the last window alone", feature
        )
        self.threshold = _gauge(
            "threshold",
            "Effective threshold of the feature's level statistic per level",
            [*feature, "statistic", "level"],
        )
        self.noise_floor = _gauge(
            "noise_floor", "Value of the statistic reached by sampling noise", feature
        )
        self.samples = _gauge(
            "window_samples", "Values in the window, missing excluded", feature
        )
        self.missing = _gauge("window_missing", "Missing values in the window", feature)
        self.missing_share = _gauge(
            "missing_share", "Missing over all values in the window", feature
        )
        self.reference_missing_share = _gauge(
            "reference_missing_share",
            "Missing over all values in the reference",
            feature,
        )
        self.missing_raw_level = _gauge(
            "missing_raw_level",
            "Level of the missing-share rise in the last window alone",
            feature,
        )
        self.missing_threshold = _gauge(
            "missing_threshold",
            "Effective threshold of the missing-share rise per level",
            [*feature, "level"],
        )
        self.feature_error = _gauge(
            "feature_error", "1 when the feature could not be evaluated", feature
        )
        self.model_level = _gauge(
            "model_level", "Worst drift level of the model", ["model"]
        )
        self.root_cause = _gauge(
            "root_cause_score",
            "How much a feature explains the score drift (top features only)",
            feature,
        )
        self.performance = _gauge(
            "performance", "Model performance on labelled rows", ["model", "measure"]
        )
        self.performance_level = _gauge(
            "performance_level",
            "Performance degradation level after hysteresis",
            ["model"],
        )
        self.performance_raw_level = _gauge(
            "performance_raw_level",
            "Performance degradation level of the last window alone",
            ["model"],
        )
        self.performance_threshold = _gauge(
            "performance_threshold",
            "Effective threshold of the AUC drop or calibration-error rise",
            ["model", "measure", "level"],
        )
        self.last_success = _gauge(
            "last_success_timestamp_seconds",
            "Unix time of the last successful evaluation",
            ["model"],
        )
        self.staleness = _gauge(
            "staleness_seconds",
            "Age of the published values (since start before any success)",
            ["model"],
        )
        self.duration = _gauge(
            "evaluation_duration_seconds",
            "Duration of the last evaluation",
            ["model"],
        )
        self.errors = CounterMetricFamily(
            "healthai_drift_evaluation_errors",
            "Failed evaluations by reason",
            labels=["model", "reason"],
        )
        self.clamped = CounterMetricFamily(
            "healthai_drift_clamped_bins",
            "Negative per-bin differences clamped to zero",
            labels=["model"],
        )

    def all(self) -> tuple[Metric, ...]:
        return tuple(vars(self).values())


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"healthai_drift_{name}", documentation, labels=labels)


def _add_status(
    families: _Families, status: ModelStatus, now: float, top_k: int
) -> None:
    model = status.model
    since = (
        status.last_success_seconds
        if status.last_success_seconds is not None
        else status.started_seconds
    )
    families.staleness.add_metric([model], max(now - since, 0.0))
    if status.last_success_seconds is not None:
        families.last_success.add_metric([model], status.last_success_seconds)
    if status.duration_seconds is not None:
        families.duration.add_metric([model], status.duration_seconds)
    for reason, count in sorted(status.errors.items()):
        families.errors.add_metric([model, reason], count)
    families.clamped.add_metric([model], status.clamped_bins)

    report = status.report
    if report is None:
        return
    families.model_level.add_metric([model], float(report.level))
    drifts = list(report.features.values())
    if report.score is not None:
        drifts.append(report.score)
    for drift in drifts:
        name = SCORE_FEATURE if drift is report.score else drift.name
        _add_feature(families, model, name, drift)
    published = set(report.features)
    if report.score is not None:
        published.add(SCORE_FEATURE)
    for name in status.feature_errors:
        if name not in published:
            families.feature_error.add_metric([model, name], 1.0)

    for cause in report.root_causes[:top_k]:
        _add_finite(families.root_cause, [model, cause.feature], cause.score)
    if report.performance is not None:
        perf = report.performance
        for measure in (
            "auc",
            "reference_auc",
            "ece",
            "reference_ece",
            "brier",
            "reference_brier",
            "n_labelled",
        ):
            _add_finite(families.performance, [model, measure], getattr(perf, measure))
        families.performance_level.add_metric([model], float(perf.level))
        families.performance_raw_level.add_metric([model], float(perf.raw_level))
        for measure, thresholds in sorted(perf.thresholds.items()):
            for level, value in thresholds.items():
                labels = [model, measure, level.name.lower()]
                _add_finite(families.performance_threshold, labels, value)


def _add_feature(
    families: _Families, model: str, name: str, drift: FeatureDrift
) -> None:
    labels = [model, name]
    families.feature_error.add_metric(labels, 0.0 if drift.error is None else 1.0)
    families.level.add_metric(labels, float(drift.level))
    families.raw_level.add_metric(labels, float(drift.raw_level))
    _add_finite(families.samples, labels, drift.sample_size)
    _add_finite(families.missing, labels, drift.missing)
    if drift.error is not None:
        return

    for statistic, value in drift.statistics.items():
        if statistic == "p_value":
            _add_finite(families.p_value, labels, value)
        else:
            _add_finite(families.statistic, [*labels, statistic], value)
    for level, value in drift.thresholds.items():
        if level != Level.OK:
            threshold_labels = [*labels, drift.level_statistic, level.name.lower()]
            _add_finite(families.threshold, threshold_labels, value)
    _add_finite(families.noise_floor, labels, drift.noise_floor)
    _add_finite(families.missing_share, labels, drift.missing_share)
    _add_finite(families.reference_missing_share, labels, drift.reference_missing_share)
    families.missing_raw_level.add_metric(labels, float(drift.missing_level))
    for level, value in drift.missing_thresholds.items():
        if level != Level.OK:
            _add_finite(
                families.missing_threshold, [*labels, level.name.lower()], value
            )


def _add_finite(
    family: GaugeMetricFamily, labels: list[str], value: float | None
) -> None:
    if value is not None and math.isfinite(value):
        family.add_metric(labels, float(value))
