"""Evaluate windows of a model's histograms against its reference.

``DriftMonitor`` holds one reference and the state that spans windows: the
noise-floor cache, the hysteresis of every feature and of the score, and the
recent history of each level statistic that root-cause ranking correlates.
``evaluate`` takes one ``Window`` of counts, already in the reference layouts,
and returns a ``DriftReport``.

What the report contains:

- every reference feature present in the window, in reference order; a
  feature the window leaves out is absent from the report (its hysteresis is
  left as it was), and a window feature unknown to the reference is ignored
  with a warning logged once;
- each feature's missing share (missing over all values) is compared with
  the reference's: a rise above ``missing_rise_warning`` / ``_critical``, above
  sampling noise and significant after Benjamini-Hochberg across the model's
  features (a family of its own) raises the feature like drift does; the
  feature's raw level is the worse of the two, through one hysteresis;
- the performance level (when labelled score counts are given) goes through
  the same hysteresis as the features and the score;
- a feature whose counts do not fit (wrong length, NaN, infinite or negative
  counts) gets a ``FeatureDrift`` with ``error`` set and empty statistics, and
  is OK; ``evaluate`` does not raise on bad data.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from exporters.drift.levels import (
    DriftPolicy,
    FeaturePolicy,
    Hysteresis,
    classify,
)
from exporters.drift.performance import assess_performance, performance_ratios
from exporters.drift.reference import FeatureReference, Reference
from exporters.drift.report import (
    DriftReport,
    FeatureDrift,
    Level,
    PerformanceReport,
)
from exporters.drift.root_cause import rank_root_causes, top_bin_indices
from exporters.drift.significance import (
    MissingShareTest,
    NoiseFloorCalibrator,
    benjamini_hochberg,
    missing_share_test,
)
from exporters.drift.statistics import (
    STATISTIC_NAMES,
    bin_centres,
    compute_statistics,
    pad_rows,
)
from otel_processors.errors import ConfigurationError

__all__ = ["DriftMonitor", "Window"]

_logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_TOP_BINS = 3
_LEVELS = tuple(Level)


@dataclass(frozen=True)
class Window:
    """Counts of one window, in the reference's bin layouts.

    Attributes:
        features: counts per bin, by feature name.
        missing: count of missing values, by feature name.
        score: counts of the model score per bin, when recorded.
        score_by_outcome: score counts of labelled rows, keyed by outcome
            (``"0"``, ``"1"``).
    """

    features: Mapping[str, npt.NDArray[np.float64]]
    missing: Mapping[str, float] = field(default_factory=dict)
    score: npt.NDArray[np.float64] | None = None
    score_by_outcome: Mapping[str, npt.NDArray[np.float64]] = field(
        default_factory=dict
    )


class DriftMonitor:
    """Evaluates a model's windows against its reference, window after window.

    Args:
        reference: the model's reference distributions.
        policy: thresholds, FDR and hysteresis; the defaults when None.
        feature_importance: importance by feature, for root-cause ranking.
        history_windows: windows of statistic history kept for root cause.

    Raises:
        ValueError: when ``history_windows`` is below 1.
        ConfigurationError: when the policy levels a categorical feature on
            the Wasserstein distance.
    """

    def __init__(
        self,
        reference: Reference,
        policy: DriftPolicy | None = None,
        *,
        feature_importance: Mapping[str, float] | None = None,
        history_windows: int = 24,
    ) -> None:
        if history_windows < 1:
            msg = f"history_windows must be at least 1, got {history_windows}"
            raise ValueError(msg)
        self._reference = reference
        self._policy = policy if policy is not None else DriftPolicy()
        self._importance = dict(feature_importance) if feature_importance else None
        self._unknown_logged: set[str] = set()

        features = list(reference.features.values())
        _check_statistics_defined(features, self._policy)
        self._features = _Group(
            features,
            [self._policy.for_feature(f.name) for f in features],
            self._policy,
            history_windows,
        )
        self._score: _Group | None = None
        self._score_centres: FloatArray | None = None
        if reference.score is not None:
            self._score = _Group(
                [reference.score],
                [self._policy.for_score()],
                self._policy,
                history_windows,
            )
            self._score_centres = bin_centres(reference.score.layout)
        self._reference_performance = _reference_performance(reference)
        self._performance_skips = 0
        self._performance_hysteresis = Hysteresis(
            self._policy.raise_after,
            self._policy.raise_window,
            self._policy.clear_after,
            self._policy.clear_ratio,
        )

    @property
    def policy(self) -> DriftPolicy:
        """The policy in force."""
        return self._policy

    def evaluate(self, window: Window) -> DriftReport:
        """Evaluate one window and update hysteresis and history.

        Args:
            window: the window's counts.

        Returns:
            The drift report of the window.
        """
        self._log_unknown(window.features)
        features = self._features.evaluate(window.features, window.missing)

        score: FeatureDrift | None = None
        if self._score is not None:
            name = self._score.names[0]
            counts = {} if window.score is None else {name: window.score}
            score = self._score.evaluate(counts, {}).get(name)

        performance = self._performance(window)
        score_history = None
        if self._score is not None:
            score_history = list(self._score.history[self._score.names[0]])
        root_causes = rank_root_causes(
            {
                name: self._features.drift_ratio(drift)
                for name, drift in features.items()
                if drift.error is None
            },
            {name: list(values) for name, values in self._features.history.items()},
            score_history,
            self._importance,
        )

        levels = [drift.level for drift in features.values()]
        if score is not None:
            levels.append(score.level)
        if performance is not None:
            levels.append(performance.level)
        return DriftReport(
            model=self._reference.model,
            features=features,
            score=score,
            performance=performance,
            root_causes=root_causes,
            level=max(levels, default=Level.OK),
        )

    def _performance(self, window: Window) -> PerformanceReport | None:
        reference = self._reference_performance
        if self._score_centres is None or reference is None:
            return None
        if not window.score_by_outcome:
            return None
        n_bins = self._score_centres.shape[0]
        for outcome, counts in window.score_by_outcome.items():
            problem = _counts_problem(counts, n_bins)
            if problem is not None:
                self._performance_skips += 1
                if self._performance_skips == 1:
                    _logger.warning(
                        "Performance skipped for model %s: outcome %s: %s; later "
                        "skips are not logged",
                        self._reference.model,
                        outcome,
                        problem,
                    )
                return None
        report = assess_performance(
            {
                k: np.asarray(v, dtype=np.float64)
                for k, v in window.score_by_outcome.items()
            },
            reference,
            self._score_centres,
            self._policy.performance,
            self._policy.alpha,
        )
        if report is None:
            return None
        level = self._performance_hysteresis.update_ratios(
            report.raw_level, performance_ratios(report)
        )
        return dataclasses.replace(report, level=level)

    def _log_unknown(self, features: Mapping[str, object]) -> None:
        for name in features:
            if (
                name not in self._reference.features
                and name not in self._unknown_logged
            ):
                self._unknown_logged.add(name)
                _logger.warning(
                    "Feature %s is not in the reference of model %s; ignored",
                    name,
                    self._reference.model,
                )


class _Group:
    """Features evaluated together: one padded matrix, one FDR family."""

    def __init__(
        self,
        references: Sequence[FeatureReference],
        policies: Sequence[FeaturePolicy],
        policy: DriftPolicy,
        history_windows: int,
    ) -> None:
        self.names = [ref.name for ref in references]
        self._index = {name: i for i, name in enumerate(self.names)}
        self._references = list(references)
        self._policies = list(policies)
        self._policy = policy
        self._labels = [ref.layout.bin_labels() for ref in references]
        self._counts, self._mask = pad_rows(
            [np.asarray(ref.counts, dtype=np.float64) for ref in references]
        )
        self._centres, _ = pad_rows(
            [bin_centres(ref.layout) for ref in references], repeat_last=True
        )
        self._reference_missing = np.asarray(
            [float(ref.missing) for ref in references], dtype=np.float64
        )
        self._reference_present = np.nansum(
            np.where(self._mask, self._counts, 0.0), axis=1
        )
        self._reference_errors = {
            ref.name: problem
            for ref in references
            if (problem := _reference_problem(ref)) is not None
        }
        self._calibrator = NoiseFloorCalibrator(
            np.nan_to_num(self._counts, nan=0.0, posinf=0.0).clip(min=0.0),
            self._mask,
            self._centres,
            draws=policy.noise_draws,
        )
        self._hysteresis = {
            name: Hysteresis(
                policy.raise_after,
                policy.raise_window,
                policy.clear_after,
                policy.clear_ratio,
            )
            for name in self.names
        }
        self.history: dict[str, deque[float]] = {
            name: deque(maxlen=history_windows) for name in self.names
        }
        self._warning: dict[str, float] = {}

    def drift_ratio(self, drift: FeatureDrift) -> float:
        """The level statistic over its effective WARNING threshold."""
        statistic = self._policies[self._index[drift.name]].statistic
        value = drift.statistics.get(statistic, math.nan)
        threshold = drift.thresholds.get(Level.WARNING, math.nan)
        if not threshold > 0:
            return math.nan
        return value / threshold

    def evaluate(
        self, counts: Mapping[str, FloatArray], missing: Mapping[str, float]
    ) -> dict[str, FeatureDrift]:
        """Evaluate the group's features present in ``counts``."""
        present = [name for name in self.names if name in counts]
        errors: dict[str, str] = {}
        valid: list[str] = []
        for name in present:
            problem = self._reference_errors.get(name) or _counts_problem(
                counts[name], self._references[self._index[name]].layout.n_bins
            )
            if problem is None:
                valid.append(name)
            else:
                errors[name] = problem

        results = self._evaluate_valid(valid, counts, missing)
        for name, problem in errors.items():
            statistic = self._policies[self._index[name]].statistic
            results[name] = _error_drift(
                name, counts[name], missing, problem, statistic
            )

        values = dict.fromkeys(self.names, math.nan)
        for name, drift in results.items():
            if drift.error is None:
                statistic = self._policies[self._index[name]].statistic
                values[name] = drift.statistics[statistic]
        for name, value in values.items():
            self.history[name].append(value)
        return {name: results[name] for name in present}

    def _evaluate_valid(
        self,
        names: list[str],
        counts: Mapping[str, FloatArray],
        missing: Mapping[str, float],
    ) -> dict[str, FeatureDrift]:
        if not names:
            return {}
        rows = np.asarray([self._index[name] for name in names], dtype=np.intp)
        current, _ = pad_rows([np.asarray(counts[n], dtype=np.float64) for n in names])
        width = self._counts.shape[1]
        current = np.pad(current, ((0, 0), (0, width - current.shape[1])))

        found = compute_statistics(
            self._counts[rows], current, self._mask[rows], self._centres[rows]
        )
        policies = [self._policies[row] for row in rows]
        values = np.asarray([found.get(p.statistic)[i] for i, p in enumerate(policies)])
        noise, null_p = self._calibrate(rows, policies, found.current_size, values)
        # The chi-square p-value is too small on sparse bins and small windows;
        # the simulated null's is not, but fits the tail only approximately.
        significant = benjamini_hochberg(
            np.fmax(found.p_value, null_p), self._policy.fdr_q
        )
        warning = np.maximum([p.warning for p in policies], noise)
        critical = np.maximum([p.critical for p in policies], noise)
        raw = classify(values, warning, critical, significant)
        share = self._missing_share(rows, names, missing, found.current_size)
        rise = share.share - share.reference_share
        missing_warning = np.maximum(self._policy.missing_rise_warning, share.margin)
        missing_critical = np.maximum(self._policy.missing_rise_critical, share.margin)
        missing_raw = classify(
            rise,
            missing_warning,
            missing_critical,
            benjamini_hochberg(share.p_value, self._policy.fdr_q),
        )
        combined = np.maximum(raw, missing_raw)
        with np.errstate(invalid="ignore", divide="ignore"):
            warning_ratio = np.fmax(values / warning, rise / missing_warning)
            critical_ratio = np.fmax(values / critical, rise / missing_critical)

        columns = {key: found.get(key).tolist() for key in STATISTIC_NAMES}
        terms = np.nan_to_num(found.psi_terms, nan=0.0)
        tops = top_bin_indices(terms, _TOP_BINS)
        raw_values = combined.tolist()
        missing_values = missing_raw.tolist()
        results = {}
        for i, name in enumerate(names):
            thresholds = {
                Level.WARNING: float(warning[i]),
                Level.CRITICAL: float(critical[i]),
            }
            raw_level = _LEVELS[raw_values[i]]
            ratios = {
                Level.WARNING: float(warning_ratio[i]),
                Level.CRITICAL: float(critical_ratio[i]),
            }
            level = self._hysteresis[name].update_ratios(raw_level, ratios)
            results[name] = FeatureDrift(
                name=name,
                statistics={key: column[i] for key, column in columns.items()},
                sample_size=float(found.current_size[i]),
                missing=_missing_count(missing, name),
                level=level,
                raw_level=raw_level,
                thresholds=thresholds,
                noise_floor=float(noise[i]),
                top_bins=tuple(
                    (self._labels[rows[i]][j], float(terms[i, j]))
                    for j in tops[i]
                    if terms[i, j] > 0
                ),
                level_statistic=policies[i].statistic,
                missing_share=float(share.share[i]),
                reference_missing_share=float(share.reference_share[i]),
                missing_level=_LEVELS[missing_values[i]],
                missing_thresholds={
                    Level.WARNING: float(missing_warning[i]),
                    Level.CRITICAL: float(missing_critical[i]),
                },
            )
        return results

    def _missing_share(
        self,
        rows: npt.NDArray[np.intp],
        names: list[str],
        missing: Mapping[str, float],
        present: FloatArray,
    ) -> MissingShareTest:
        """Compare each row's missing share with its reference's."""
        current_missing = np.asarray([_missing_count(missing, n) for n in names])
        return missing_share_test(
            self._reference_missing[rows],
            self._reference_present[rows],
            current_missing,
            present,
            self._policy.alpha,
        )

    def _calibrate(
        self,
        rows: npt.NDArray[np.intp],
        policies: list[FeaturePolicy],
        sizes: FloatArray,
        values: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """Noise floors and null p-values of each row's level statistic."""
        floors = np.zeros(rows.size)
        p_values = np.ones(rows.size)
        for statistic in {p.statistic for p in policies}:
            chosen = np.asarray([p.statistic == statistic for p in policies])
            floors[chosen] = self._calibrator.noise_floors(
                statistic, rows[chosen], sizes[chosen], self._policy.alpha
            )
            p_values[chosen] = self._calibrator.null_p_values(
                statistic, rows[chosen], sizes[chosen], values[chosen]
            )
        return floors, p_values


def _reference_performance(
    reference: Reference,
) -> Mapping[str, FloatArray] | None:
    """The reference's score counts by outcome, or None when unusable."""
    if reference.score is None or not reference.score_by_outcome:
        return None
    n_bins = reference.score.layout.n_bins
    for outcome, counts in reference.score_by_outcome.items():
        problem = _counts_problem(counts, n_bins)
        if problem is not None:
            _logger.warning(
                "Reference score counts of outcome %s are unusable (%s); "
                "performance of model %s is not assessed",
                outcome,
                problem,
                reference.model,
            )
            return None
    return {
        outcome: np.asarray(counts, dtype=np.float64)
        for outcome, counts in reference.score_by_outcome.items()
    }


def _check_statistics_defined(
    features: Sequence[FeatureReference], policy: DriftPolicy
) -> None:
    """Refuse a Wasserstein level on a categorical feature: it is never defined."""
    for feature in features:
        statistic = policy.for_feature(feature.name).statistic
        if feature.layout.kind == "categorical" and statistic == "wasserstein":
            msg = (
                f"drift policy: features.{feature.name}.statistic={statistic!r}: "
                "Wasserstein is not defined for a categorical feature"
            )
            raise ConfigurationError(msg)


def _counts_problem(counts: object, n_bins: int) -> str | None:
    """Why counts cannot be compared with the reference, or None."""
    try:
        array = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):
        return "counts are not numbers"
    if array.ndim != 1 or array.shape[0] != n_bins:
        return f"{array.size} counts for {n_bins} reference bins"
    # One reduction each: a NaN or an infinity makes the sum non-finite.
    if not math.isfinite(float(array.sum())):
        return "counts contain NaN or infinite values"
    if float(array.min()) < 0:
        return "counts contain negative values"
    return None


def _reference_problem(reference: FeatureReference) -> str | None:
    problem = _counts_problem(reference.counts, reference.layout.n_bins)
    if problem is not None:
        return f"reference {problem}"
    if float(np.sum(reference.counts)) <= 0:
        return "reference has no counts"
    return None


def _error_drift(
    name: str,
    counts: object,
    missing: Mapping[str, float],
    problem: str,
    statistic: str,
) -> FeatureDrift:
    try:
        size = float(np.nansum(np.asarray(counts, dtype=np.float64)))
    except (TypeError, ValueError):
        size = math.nan
    return FeatureDrift(
        name=name,
        statistics={},
        sample_size=size,
        missing=_missing_count(missing, name),
        level=Level.OK,
        raw_level=Level.OK,
        thresholds={},
        noise_floor=math.nan,
        top_bins=(),
        error=problem,
        level_statistic=statistic,
    )


def _missing_count(missing: Mapping[str, float], name: str) -> float:
    try:
        return float(missing.get(name, 0.0))
    except (TypeError, ValueError):
        return math.nan
