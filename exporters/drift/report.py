"""The result of one drift evaluation, and its table and JSON renderings.

A ``DriftReport`` carries, for each feature and for the model score, the
statistics of the window, the level it reached (after hysteresis) and every
threshold that was applied, so that alert rules only compare a level with a
constant. ``report_to_json`` gives plain JSON types (NaN becomes null);
``render_table`` is for terminals.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporters.drift.statistics import STATISTIC_NAMES

__all__ = [
    "SCORE_FEATURE",
    "DriftReport",
    "FeatureDrift",
    "Level",
    "PerformanceReport",
    "RootCause",
    "render_table",
    "report_to_json",
]


SCORE_FEATURE = "__score__"
"""The name the model score goes by where features are named: metric labels,
read errors. Double underscores keep it apart from any column name."""


class Level(enum.IntEnum):
    """Drift severity, ordered: a higher level is worse."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature (or of the score) in one window.

    Attributes:
        name: the feature name.
        statistics: values keyed by ``STATISTIC_NAMES``; empty when ``error``.
        sample_size: current window count, missing values excluded.
        missing: current window count of missing values.
        level: the level after hysteresis.
        raw_level: the level of this window alone.
        thresholds: the effective threshold per level, the larger of the
            configured floor and the noise floor.
        noise_floor: what sampling noise alone reaches at this window size.
        top_bins: ``(bin label, PSI term)`` of the bins contributing most,
            largest first.
        error: why the feature could not be evaluated, else None.
        level_statistic: the statistic ``level`` and ``thresholds`` are on.
        missing_share: missing over all values in the window.
        reference_missing_share: the same in the reference.
        missing_level: the level of this window's missing-share rise alone;
            ``raw_level`` is the worse of it and the distribution's.
        missing_thresholds: the effective threshold of the rise per level,
            the larger of the policy's floor and the noise margin.
    """

    name: str
    statistics: Mapping[str, float]
    sample_size: float
    missing: float
    level: Level
    raw_level: Level
    thresholds: Mapping[Level, float]
    noise_floor: float
    top_bins: tuple[tuple[str, float], ...]
    error: str | None = None
    level_statistic: str = "psi"
    missing_share: float = math.nan
    reference_missing_share: float = math.nan
    missing_level: Level = Level.OK
    missing_thresholds: Mapping[Level, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RootCause:
    """How much one feature explains the drift of the score.

    Attributes:
        feature: the feature name.
        score: the ranking score (see ``exporters.drift.root_cause``).
        drift_ratio: the feature's statistic over its warning threshold.
        correlation: Pearson correlation of the feature's and the score's
            statistic over recent windows; None with too little history.
        importance: the user-provided importance, normalised to a maximum of
            1; None when not provided.
    """

    feature: str
    score: float
    drift_ratio: float
    correlation: float | None
    importance: float | None


@dataclass(frozen=True)
class PerformanceReport:
    """Model performance on the labelled rows of the window, and its reference.

    Attributes:
        auc: ROC AUC from binned scores.
        reference_auc: the same on the reference.
        ece: expected calibration error.
        reference_ece: the same on the reference.
        brier: Brier score estimated from bins.
        reference_brier: the same on the reference.
        level: the degradation level, after hysteresis in a ``DriftReport``.
        n_labelled: labelled rows in the window.
        raw_level: the level of this window alone.
        thresholds: per measure (``auc_drop``, ``ece_rise``), the effective
            threshold of each level: the larger of the floor and the noise
            margin.
    """

    auc: float
    reference_auc: float
    ece: float
    reference_ece: float
    brier: float
    reference_brier: float
    level: Level
    n_labelled: float
    raw_level: Level = Level.OK
    thresholds: Mapping[str, Mapping[Level, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReport:
    """The drift of one model in one window.

    Attributes:
        model: the model name.
        features: per-feature drift, by name.
        score: drift of the model score, when recorded.
        performance: performance, when labelled outcomes were recorded.
        root_causes: features ranked by how much they explain score drift.
        level: the worst level of the features, score and performance.
    """

    model: str
    features: Mapping[str, FeatureDrift]
    score: FeatureDrift | None
    performance: PerformanceReport | None
    root_causes: tuple[RootCause, ...]
    level: Level


def report_to_json(report: DriftReport) -> dict[str, object]:
    """Convert a report to JSON-serialisable types.

    Levels become their names; non-finite numbers become None.

    Args:
        report: the report.

    Returns:
        A dict ready for ``json.dumps``.
    """
    performance: dict[str, object] | None = None
    if report.performance is not None:
        perf = report.performance
        performance = {
            "auc": _number(perf.auc),
            "reference_auc": _number(perf.reference_auc),
            "ece": _number(perf.ece),
            "reference_ece": _number(perf.reference_ece),
            "brier": _number(perf.brier),
            "reference_brier": _number(perf.reference_brier),
            "level": perf.level.name,
            "raw_level": perf.raw_level.name,
            "n_labelled": _number(perf.n_labelled),
            "thresholds": {
                measure: {level.name: _number(v) for level, v in values.items()}
                for measure, values in perf.thresholds.items()
            },
        }

    return {
        "model": report.model,
        "level": report.level.name,
        "features": {
            name: _feature_to_json(drift) for name, drift in report.features.items()
        },
        "score": None if report.score is None else _feature_to_json(report.score),
        "performance": performance,
        "root_causes": [
            {
                "feature": cause.feature,
                "score": _number(cause.score),
                "drift_ratio": _number(cause.drift_ratio),
                "correlation": _number(cause.correlation),
                "importance": _number(cause.importance),
            }
            for cause in report.root_causes
        ],
    }


def render_table(report: DriftReport) -> str:
    """Render a report as a fixed-width text table.

    Args:
        report: the report.

    Returns:
        Lines: a header, one row per feature (score last) with its window
        size ``n`` and missing values (count and share of all values), then a
        line per feature at WARNING or above naming its top bins (and its
        missing share when that raised it), errors, performance and the top
        root causes when present.
    """
    columns = (
        "feature",
        "level",
        "raw",
        *STATISTIC_NAMES,
        "warn",
        "crit",
        "n",
        "missing",
    )
    rows: list[tuple[str, ...]] = [columns]
    drifts = list(report.features.values())
    if report.score is not None:
        drifts.append(report.score)
    for drift in drifts:
        rows.append(_table_row(drift))

    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [f"model {report.model}: {report.level.name}"]
    lines.extend(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )
    lines.extend(_flagged_lines(drifts))
    lines.extend(_error_lines(drifts))

    if report.performance is not None:
        perf = report.performance
        lines.append(
            f"performance {perf.level.name}: AUC {perf.auc:.3f} (reference "
            f"{perf.reference_auc:.3f}), ECE {perf.ece:.3f} (reference "
            f"{perf.reference_ece:.3f}), Brier {perf.brier:.3f} (reference "
            f"{perf.reference_brier:.3f}), {perf.n_labelled:g} labelled"
        )
    if report.root_causes:
        causes = ", ".join(
            f"{cause.feature} ({cause.score:.2f})" for cause in report.root_causes[:3]
        )
        lines.append(f"root causes: {causes}")
    return "\n".join(lines)


def _feature_to_json(drift: FeatureDrift) -> dict[str, object]:
    return {
        "name": drift.name,
        "level": drift.level.name,
        "raw_level": drift.raw_level.name,
        "statistics": {k: _number(v) for k, v in drift.statistics.items()},
        "sample_size": _number(drift.sample_size),
        "missing": _number(drift.missing),
        "thresholds": {
            level.name: _number(value) for level, value in drift.thresholds.items()
        },
        "noise_floor": _number(drift.noise_floor),
        "top_bins": [[label, _number(value)] for label, value in drift.top_bins],
        "error": drift.error,
        "level_statistic": drift.level_statistic,
        "missing_share": _number(drift.missing_share),
        "reference_missing_share": _number(drift.reference_missing_share),
        "missing_level": drift.missing_level.name,
        "missing_thresholds": {
            level.name: _number(value)
            for level, value in drift.missing_thresholds.items()
        },
    }


def _table_row(drift: FeatureDrift) -> tuple[str, ...]:
    values = tuple(_cell(drift.statistics.get(name)) for name in STATISTIC_NAMES)
    return (
        drift.name,
        drift.level.name if drift.error is None else "ERROR",
        drift.raw_level.name,
        *values,
        _cell(drift.thresholds.get(Level.WARNING)),
        _cell(drift.thresholds.get(Level.CRITICAL)),
        f"{drift.sample_size:g}",
        _missing_cell(drift),
    )


def _missing_cell(drift: FeatureDrift) -> str:
    if not math.isfinite(drift.missing):
        return "-"
    if not math.isfinite(drift.missing_share):
        return f"{drift.missing:g}"
    return f"{drift.missing:g} ({drift.missing_share:.1%})"


def _flagged_lines(drifts: list[FeatureDrift]) -> list[str]:
    lines = []
    for drift in drifts:
        if drift.error is not None or max(drift.level, drift.raw_level) < Level.WARNING:
            continue
        bins = ", ".join(f"{label} {value:.3g}" for label, value in drift.top_bins)
        line = f"{drift.name}: top bins {bins or '-'}"
        if drift.missing_level >= Level.WARNING:
            line += (
                f"; missing {drift.missing_share:.1%} (reference "
                f"{drift.reference_missing_share:.1%})"
            )
        lines.append(line)
    return lines


def _error_lines(drifts: list[FeatureDrift]) -> list[str]:
    return [f"{d.name}: {d.error}" for d in drifts if d.error is not None]


def _cell(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def _number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)
