"""Drift levels: thresholds, the policy that sets them, and hysteresis.

A window raises a feature to a level when three things hold at once:

1. the level statistic (PSI by default) is at or above the level's effect-size
   floor, so tiny but significant shifts on large windows stay quiet;
2. it is at or above the noise floor, what sampling noise alone would give at
   this window size (``exporters.drift.significance``), so small windows with
   their upward-biased distances stay quiet;
3. its p-value survives Benjamini-Hochberg at ``fdr_q`` across the model's
   features. The p-value is the larger of the chi-square test's and the
   tail probability of the statistic under the simulated null: the first is
   too small on sparse bins and small windows, the second rests on a
   two-moment fit of the tail; the larger of two valid p-values is valid.

Hysteresis then turns these raw levels into the reported one: a level is
raised when the raw level reached it in ``raise_after`` of the last
``raise_window`` windows, and dropped one step after ``clear_after``
consecutive windows below ``clear_ratio`` times its threshold.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from exporters.drift.report import Level
from exporters.drift.statistics import STATISTIC_NAMES
from otel_processors.errors import ConfigurationError

__all__ = [
    "DEFAULT_FLOORS",
    "DriftPolicy",
    "FeaturePolicy",
    "Hysteresis",
    "PerformancePolicy",
    "classify",
]

_logger = logging.getLogger(__name__)

LEVEL_STATISTICS = tuple(name for name in STATISTIC_NAMES if name != "p_value")

# Warning and critical floors per statistic. PSI 0.1 / 0.25 is the industry
# convention (Siddiqi, Credit Risk Scorecards, 2006); the others are set to the
# same shifts through the small-shift equivalences KL ~ PSI / 2,
# JSD ~ Hellinger**2 ~ PSI / 8 (nats) and, for a normal mean shift of d sd,
# PSI ~ d**2 while Wasserstein / sd ~ d.
DEFAULT_FLOORS: Mapping[str, tuple[float, float]] = {
    "psi": (0.1, 0.25),
    "kl_divergence": (0.05, 0.125),
    "js_distance": (0.13, 0.21),
    "hellinger": (0.11, 0.18),
    "linf": (0.1, 0.2),
    "wasserstein": (0.3, 0.5),
}


@dataclass(frozen=True)
class FeaturePolicy:
    """The level statistic and floors of one feature (or of the score).

    Attributes:
        statistic: the statistic levels are decided on.
        warning: effect-size floor of WARNING.
        critical: effect-size floor of CRITICAL.
    """

    statistic: str = "psi"
    warning: float = 0.1
    critical: float = 0.25


@dataclass(frozen=True)
class PerformancePolicy:
    """Thresholds of the performance degradation level.

    Attributes:
        auc_drop_warning: AUC drop from the reference that warns.
        auc_drop_critical: AUC drop that is critical.
        ece_rise_warning: rise of the expected calibration error that warns.
        ece_rise_critical: rise of the calibration error that is critical.
        min_labelled: fewer labelled rows than this never raise a level.
    """

    auc_drop_warning: float = 0.05
    auc_drop_critical: float = 0.10
    ece_rise_warning: float = 0.05
    ece_rise_critical: float = 0.10
    min_labelled: float = 200.0


@dataclass(frozen=True)
class DriftPolicy:
    """How drift levels are decided for one model.

    Attributes:
        statistic: default level statistic. PSI: its 0.1 / 0.25 convention is
            what risk teams already read, it is additive over bins (so the top
            bins explain it) and ``n_eff * PSI`` has a known chi-square limit.
        warning: default WARNING floor; None takes ``DEFAULT_FLOORS``.
        critical: default CRITICAL floor; None takes ``DEFAULT_FLOORS``.
        alpha: tail probability above the noise floor.
        fdr_q: Benjamini-Hochberg false discovery rate across features.
        raise_after: raw hits needed among the last ``raise_window`` windows.
        raise_window: windows looked at when raising.
        clear_after: consecutive quiet windows needed to drop a level.
        clear_ratio: a window is quiet below this fraction of the threshold.
        noise_draws: simulated windows per noise floor.
        missing_rise_warning: rise of a feature's missing share (missing over
            all values) from the reference's that warns, when also above
            sampling noise and significant after FDR control.
        missing_rise_critical: rise of the missing share that is critical.
        features: per-feature overrides.
        score: policy of the model score; None uses the defaults.
        performance: thresholds of performance degradation.
    """

    statistic: str = "psi"
    warning: float | None = None
    critical: float | None = None
    alpha: float = 0.01
    fdr_q: float = 0.01
    raise_after: int = 2
    raise_window: int = 3
    clear_after: int = 3
    clear_ratio: float = 0.8
    noise_draws: int = 200
    missing_rise_warning: float = 0.1
    missing_rise_critical: float = 0.25
    features: Mapping[str, FeaturePolicy] = field(default_factory=dict)
    score: FeaturePolicy | None = None
    performance: PerformancePolicy = field(default_factory=PerformancePolicy)

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            key, value, reason = problem
            msg = f"drift policy: {key}={value!r}: {reason}"
            raise ValueError(msg)

    def default_feature_policy(self) -> FeaturePolicy:
        """The policy of a feature without an override."""
        warning, critical = DEFAULT_FLOORS[self.statistic]
        return FeaturePolicy(
            statistic=self.statistic,
            warning=warning if self.warning is None else self.warning,
            critical=critical if self.critical is None else self.critical,
        )

    def for_feature(self, name: str) -> FeaturePolicy:
        """The policy of feature ``name``, override or default."""
        return self.features.get(name, self.default_feature_policy())

    def for_score(self) -> FeaturePolicy:
        """The policy of the model score."""
        return self.score if self.score is not None else self.default_feature_policy()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> DriftPolicy:
        """Build a policy from a YAML-loaded mapping, validating every key.

        The mapping has the fields of this class; ``features`` maps names to
        ``{statistic, warning, critical}`` (missing keys take the model's
        defaults, floors for the named statistic); ``score`` has the same
        shape; ``performance`` has the fields of ``PerformancePolicy``.

        Args:
            data: the mapping, e.g. ``yaml.safe_load`` of a file.
            source: where it came from, named in errors.

        Returns:
            The policy.

        Raises:
            ConfigurationError: naming ``source``, the key and the value.
        """
        if not isinstance(data, Mapping):
            msg = f"{source}: the drift policy must be a mapping, got {data!r}"
            raise ConfigurationError(msg)

        allowed = {f.name for f in fields(cls)}
        scalars = allowed - {"features", "score", "performance"}
        _reject_unknown(data, allowed, source, "")
        values: dict[str, Any] = {
            key: _scalar(data[key], source, key) for key in scalars if key in data
        }
        if "statistic" in values:
            _check_statistic(values["statistic"], source, "statistic")
        values = _coerce(values, source)

        statistic = values.get("statistic", "psi")
        defaults = FeaturePolicy(
            statistic=statistic,
            warning=values.get("warning") or DEFAULT_FLOORS[statistic][0],
            critical=values.get("critical") or DEFAULT_FLOORS[statistic][1],
        )
        features = data.get("features") or {}
        if not isinstance(features, Mapping):
            msg = f"{source}: features must be a mapping, got {features!r}"
            raise ConfigurationError(msg)
        values["features"] = {
            str(name): _feature_policy(entry, defaults, source, f"features.{name}")
            for name, entry in features.items()
        }
        if data.get("score") is not None:
            values["score"] = _feature_policy(data["score"], defaults, source, "score")
        if data.get("performance") is not None:
            values["performance"] = _performance_policy(data["performance"], source)

        try:
            return cls(**values)
        except ValueError as exc:
            msg = f"{source}: {exc}"
            raise ConfigurationError(msg) from exc


def classify(
    values: npt.NDArray[np.float64],
    warning: npt.NDArray[np.float64],
    critical: npt.NDArray[np.float64],
    significant: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    """Raw level of each feature in one window.

    Args:
        values: the level statistic per feature.
        warning: effective WARNING threshold per feature.
        critical: effective CRITICAL threshold per feature.
        significant: whether the feature survived the FDR control.

    Returns:
        ``Level`` values as integers; NaN statistics give OK.
    """
    finite = np.isfinite(values) & significant
    level = np.where(finite & (values >= warning), int(Level.WARNING), int(Level.OK))
    result: npt.NDArray[np.int64] = np.where(
        finite & (values >= critical), int(Level.CRITICAL), level
    ).astype(np.int64)
    return result


class Hysteresis:
    """The level of one feature across windows, with hysteresis.

    Args:
        raise_after: raw hits needed among the last ``raise_window`` windows.
        raise_window: windows looked at when raising.
        clear_after: consecutive quiet windows needed to drop one level.
        clear_ratio: quiet means below this fraction of the current level's
            threshold.
    """

    def __init__(
        self,
        raise_after: int,
        raise_window: int,
        clear_after: int,
        clear_ratio: float,
    ) -> None:
        if not 1 <= raise_after <= raise_window:
            msg = f"need 1 <= raise_after <= raise_window, got {raise_after}, "
            msg += f"{raise_window}"
            raise ValueError(msg)
        self._raise_after = raise_after
        self._recent: deque[Level] = deque(maxlen=raise_window)
        self._clear_after = clear_after
        self._clear_ratio = clear_ratio
        self._quiet = 0
        self.level = Level.OK

    def update(
        self, raw_level: Level, value: float, thresholds: Mapping[Level, float]
    ) -> Level:
        """Take one window into account and return the level after it.

        Args:
            raw_level: the level of this window alone.
            value: the level statistic of this window.
            thresholds: the effective threshold per level in this window.

        Returns:
            The level after hysteresis.
        """
        ratios = {
            level: _ratio(value, threshold) for level, threshold in thresholds.items()
        }
        return self.update_ratios(raw_level, ratios)

    def update_ratios(self, raw_level: Level, ratios: Mapping[Level, float]) -> Level:
        """Take one window into account, given its statistic over each threshold.

        For levels decided on more than one measure (performance), where no
        single statistic and threshold exist: ``ratios[level]`` is 1 at that
        level's line, and a window is quiet below ``clear_ratio``.

        Args:
            raw_level: the level of this window alone.
            ratios: per level, the window's statistic over its threshold.

        Returns:
            The level after hysteresis.
        """
        self._recent.append(raw_level)
        ranked = sorted(self._recent, reverse=True)
        # The raise_after-th highest raw level is the highest one reached often
        # enough; fewer windows than that reach nothing yet.
        reached = (
            ranked[self._raise_after - 1]
            if len(ranked) >= self._raise_after
            else Level.OK
        )
        if reached > self.level:
            self.level = reached
            self._quiet = 0
            return self.level
        if self.level == Level.OK:
            return self.level

        quiet = not ratios.get(self.level, 0.0) >= self._clear_ratio
        self._quiet = self._quiet + 1 if quiet else 0
        if self._quiet >= self._clear_after:
            self.level = Level(self.level - 1)
            self._quiet = 0
            # Hits from before the clear must not raise the level straight back.
            self._recent.clear()
            _logger.debug("Drift level cleared down to %s", self.level.name)
        return self.level


def _ratio(value: float, threshold: float) -> float:
    """``value / threshold``, where a zero threshold is passed by any value."""
    if threshold > 0:
        return value / threshold
    return math.inf if value >= threshold else 0.0


def _problem(policy: DriftPolicy) -> tuple[str, object, str] | None:
    """The first invalid field of a policy, as ``(key, value, reason)``."""
    checks: list[tuple[str, object, bool, str]] = [
        (
            "statistic",
            policy.statistic,
            policy.statistic in DEFAULT_FLOORS,
            f"must be one of {list(DEFAULT_FLOORS)}",
        ),
        ("alpha", policy.alpha, 0.0 < policy.alpha < 0.5, "must be in (0, 0.5)"),
        ("fdr_q", policy.fdr_q, 0.0 < policy.fdr_q < 1.0, "must be in (0, 1)"),
        (
            "raise_after",
            policy.raise_after,
            1 <= policy.raise_after <= policy.raise_window,
            "must be between 1 and raise_window",
        ),
        ("clear_after", policy.clear_after, policy.clear_after >= 1, "must be >= 1"),
        (
            "clear_ratio",
            policy.clear_ratio,
            0.0 < policy.clear_ratio <= 1.0,
            "must be in (0, 1]",
        ),
        ("noise_draws", policy.noise_draws, policy.noise_draws >= 20, "must be >= 20"),
        (
            "missing_rise_warning",
            policy.missing_rise_warning,
            0.0 < policy.missing_rise_warning < policy.missing_rise_critical <= 1.0,
            "need 0 < missing_rise_warning < missing_rise_critical <= 1",
        ),
    ]
    for key, value, ok, reason in checks:
        if not ok:
            return key, value, reason

    default = policy.default_feature_policy()
    overrides = [
        ("", default),
        *((f"features.{k}.", v) for k, v in policy.features.items()),
    ]
    if policy.score is not None:
        overrides.append(("score.", policy.score))
    for prefix, feature in overrides:
        if feature.statistic not in DEFAULT_FLOORS:
            return f"{prefix}statistic", feature.statistic, "unknown statistic"
        if not 0.0 < feature.warning < feature.critical:
            return (
                f"{prefix}warning",
                feature.warning,
                f"need 0 < warning < critical ({feature.critical})",
            )
    return None


def _reject_unknown(
    data: Mapping[str, Any], allowed: set[str], source: str, prefix: str
) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        key = unknown[0]
        msg = (
            f"{source}: unknown key {prefix}{key}={data[key]!r}; "
            f"expected some of {sorted(allowed)}"
        )
        raise ConfigurationError(msg)


def _scalar(value: object, source: str, key: str) -> object:
    if isinstance(value, (Mapping, list)):
        msg = f"{source}: {key}={value!r}: expected a single value"
        raise ConfigurationError(msg)
    return value


def _check_statistic(value: object, source: str, key: str) -> None:
    if value not in DEFAULT_FLOORS:
        msg = f"{source}: {key}={value!r}: expected one of {list(LEVEL_STATISTICS)}"
        raise ConfigurationError(msg)


_INTEGER_KEYS = frozenset({"raise_after", "raise_window", "clear_after", "noise_draws"})
_FLOAT_KEYS = frozenset(
    {
        "warning",
        "critical",
        "alpha",
        "fdr_q",
        "clear_ratio",
        "missing_rise_warning",
        "missing_rise_critical",
    }
)


def _coerce(values: dict[str, Any], source: str) -> dict[str, Any]:
    coerced = dict(values)
    for key, value in values.items():
        if key in _INTEGER_KEYS:
            coerced[key] = _number(value, source, key, integer=True)
        elif key in _FLOAT_KEYS:
            coerced[key] = _number(value, source, key, integer=False)
    return coerced


def _number(value: object, source: str, key: str, *, integer: bool) -> float:
    kind = "an integer" if integer else "a number"
    msg = f"{source}: {key}={value!r}: expected {kind}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(msg)
    if not integer:
        return float(value)
    if float(value) != int(value):
        raise ConfigurationError(msg)
    return int(value)


def _feature_policy(
    entry: object, defaults: FeaturePolicy, source: str, key: str
) -> FeaturePolicy:
    if not isinstance(entry, Mapping):
        msg = f"{source}: {key}={entry!r}: expected a mapping"
        raise ConfigurationError(msg)
    _reject_unknown(entry, {"statistic", "warning", "critical"}, source, f"{key}.")

    statistic = entry.get("statistic", defaults.statistic)
    _check_statistic(statistic, source, f"{key}.statistic")
    same = statistic == defaults.statistic
    floors = (
        (defaults.warning, defaults.critical) if same else DEFAULT_FLOORS[statistic]
    )
    warning = entry.get("warning", floors[0])
    critical = entry.get("critical", floors[1])
    policy = FeaturePolicy(
        statistic=str(statistic),
        warning=_number(warning, source, f"{key}.warning", integer=False),
        critical=_number(critical, source, f"{key}.critical", integer=False),
    )
    if not 0.0 < policy.warning < policy.critical:
        msg = (
            f"{source}: {key}.warning={policy.warning!r}: need 0 < warning < "
            f"critical ({policy.critical!r})"
        )
        raise ConfigurationError(msg)
    return policy


def _performance_policy(entry: object, source: str) -> PerformancePolicy:
    if not isinstance(entry, Mapping):
        msg = f"{source}: performance={entry!r}: expected a mapping"
        raise ConfigurationError(msg)
    allowed = {f.name for f in fields(PerformancePolicy)}
    _reject_unknown(entry, allowed, source, "performance.")
    values = {
        key: _number(value, source, f"performance.{key}", integer=False)
        for key, value in entry.items()
    }
    policy = PerformancePolicy(**values)
    pairs = [
        ("auc_drop", policy.auc_drop_warning, policy.auc_drop_critical),
        ("ece_rise", policy.ece_rise_warning, policy.ece_rise_critical),
    ]
    for name, warning, critical in pairs:
        if not 0.0 < warning < critical:
            msg = (
                f"{source}: performance.{name}_warning={warning!r}: need 0 < "
                f"warning < critical ({critical!r})"
            )
            raise ConfigurationError(msg)
    return policy
