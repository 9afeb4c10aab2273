"""The example model of the demo: 30-day readmission risk after discharge.

A logistic model over a handful of numeric and one categorical feature, with a
synthetic patient generator. The generator can shift chosen features, which is
how the demo produces drift. Nothing here is clinically meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CATEGORICAL_FEATURES",
    "DISPOSITIONS",
    "NUMERIC_FEATURES",
    "PatientGenerator",
    "ReadmissionModel",
]

NUMERIC_FEATURES = (
    "age_years",
    "length_of_stay_days",
    "prior_admissions_12m",
    "hba1c_percent",
    "creatinine_mg_dl",
    "systolic_bp_mmhg",
    "medication_count",
)
CATEGORICAL_FEATURES = ("discharge_disposition",)
DISPOSITIONS = ("home", "home_health", "skilled_nursing", "rehab", "against_advice")

_WEIGHTS: Mapping[str, float] = {
    "age_years": 0.02,
    "length_of_stay_days": 0.08,
    "prior_admissions_12m": 0.35,
    "hba1c_percent": 0.12,
    "creatinine_mg_dl": 0.4,
    "systolic_bp_mmhg": -0.004,
    "medication_count": 0.05,
}
_DISPOSITION_WEIGHTS: Mapping[str, float] = {
    "home": 0.0,
    "home_health": 0.3,
    "skilled_nursing": 0.5,
    "rehab": 0.2,
    "against_advice": 0.9,
}
_INTERCEPT = -5.2


@dataclass(frozen=True)
class ReadmissionModel:
    """Score a discharge: the probability of readmission within 30 days."""

    version: str = "2.3.1"

    def score(self, features: Mapping[str, object]) -> float:
        """Return the readmission probability for one patient's features.

        Raises:
            KeyError: when a feature is absent.
            ValueError: when a numeric feature is not a finite number.
        """
        logit = _INTERCEPT
        for name, weight in _WEIGHTS.items():
            value = float(features[name])  # type: ignore[arg-type]  # validated below
            if not math.isfinite(value):
                msg = f"feature {name} is not finite: {value}"
                raise ValueError(msg)
            logit += weight * value
        logit += _DISPOSITION_WEIGHTS.get(str(features["discharge_disposition"]), 0.0)
        return 1.0 / (1.0 + math.exp(-logit))


@dataclass
class PatientGenerator:
    """Draw synthetic discharges; ``shift`` moves features by that many std units.

    Attributes:
        seed: seed of the random generator.
        shift: per-feature shift, in units of the feature's standard deviation.
    """

    seed: int = 7
    shift: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def columns(self, n: int) -> dict[str, npt.NDArray[Any]]:
        """Return ``n`` discharges as columns: numeric float64, categorical str."""
        rng = self._rng
        columns: dict[str, npt.NDArray[Any]] = {
            "age_years": np.clip(rng.normal(64, 14, n), 18, 104),
            "length_of_stay_days": rng.gamma(2.0, 2.4, n),
            "prior_admissions_12m": rng.poisson(0.9, n).astype(np.float64),
            "hba1c_percent": rng.normal(6.6, 1.1, n),
            "creatinine_mg_dl": rng.lognormal(0.05, 0.35, n),
            "systolic_bp_mmhg": rng.normal(132, 18, n),
            "medication_count": rng.poisson(7, n).astype(np.float64),
        }
        for name, units in self.shift.items():
            if name in columns:
                columns[name] = columns[name] + units * float(np.std(columns[name]))
        columns["discharge_disposition"] = rng.choice(
            DISPOSITIONS, size=n, p=(0.55, 0.2, 0.15, 0.07, 0.03)
        )
        return columns

    def patients(self, n: int) -> list[dict[str, object]]:
        """Return ``n`` discharges as one mapping per patient."""
        columns = self.columns(n)
        return [
            {name: _scalar(values[i]) for name, values in columns.items()}
            for i in range(n)
        ]


def _scalar(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value
