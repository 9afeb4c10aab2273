"""The demo's instrumented model service and the faults it meets.

``ReadmissionService.predict`` runs the three stages of a prediction, each in
its own span: feature extraction, score calculation, post-processing. A
``FaultPlan`` decides, per request, which failure to inject, so that a run meets
every category of the taxonomy, through taxonomy exceptions raised by the
service itself and through plain library exceptions that the built-in
catalogue classifies. Requests carry synthetic patient identifiers, which the
scrubber must remove before anything is exported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opentelemetry import trace

from exporters.demo.model import ReadmissionModel
from otel_processors.exceptions import (
    FeatureExtractionError,
    ModelVersionMismatchError,
    NumericInstabilityError,
    OutOfRangeError,
    PostProcessingError,
    SchemaViolationError,
    ScoreCalculationError,
    StaleInputError,
)
from otel_processors.tagging import tag_error

__all__ = ["FAULTS", "FaultPlan", "Patient", "ReadmissionService", "apply_fault"]

_logger = logging.getLogger("readmission_service")


_FIRST_NAMES = ("Maria", "James", "Aiko", "Oluwaseun", "Elena", "Rahul", "Grace")
_LAST_NAMES = ("Garcia", "Okafor", "Tanaka", "Novak", "Haddad", "Lindqvist", "Osei")


@dataclass(frozen=True)
class Patient:
    """Synthetic identifiers of one patient; every one of them is PHI."""

    name: str
    mrn: str
    ssn: str
    phone: str
    email: str
    birth_date: str

    @classmethod
    def synthetic(cls, index: int) -> Patient:
        """Return the ``index``-th synthetic patient (deterministic)."""
        first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        return cls(
            name=f"{first} {last}",
            mrn=f"{4_000_000 + index:08d}",
            ssn=f"{500 + index % 400:03d}-{10 + index % 89:02d}-{1000 + index:04d}",
            phone=f"(617) 555-{index % 10_000:04d}",
            email=f"{first.lower()}.{last.lower()}{index}@example.org",
            birth_date=f"19{40 + index % 50}-0{1 + index % 9}-1{index % 10}",
        )


def _missing_feature(features: dict[str, object]) -> None:
    del features["creatinine_mg_dl"]


def _impossible_age(features: dict[str, object]) -> None:
    features["age_years"] = 212.0


def _stale_vitals(features: dict[str, object]) -> None:
    features["vitals_age_hours"] = 170.0


def _wrong_type(features: dict[str, object]) -> None:
    features["medication_count"] = "seven"


def _overflow(features: dict[str, object]) -> None:
    features["length_of_stay_days"] = math.inf


def _feature_store_down(features: dict[str, object]) -> None:
    features["feature_store"] = "unreachable"


def _slow_feature_store(features: dict[str, object]) -> None:
    features["feature_store"] = "slow"


def _old_pipeline(features: dict[str, object]) -> None:
    features["pipeline_version"] = "1.9.0"


def _bad_calibration(features: dict[str, object]) -> None:
    features["calibration"] = "missing"


def _corrupt_explainer(features: dict[str, object]) -> None:
    features["explainer"] = "corrupt"


def _no_comorbidity_weights(features: dict[str, object]) -> None:
    features["comorbidity_weights"] = ()


class ExplainerStateError(Exception):
    """Raised by the (fictional) explanation library; no registry rule knows it."""


# Fault name → how it changes a request. Applied to one request in eight.
FAULTS: Mapping[str, Callable[[dict[str, object]], None]] = {
    "missing_feature": _missing_feature,
    "impossible_age": _impossible_age,
    "stale_vitals": _stale_vitals,
    "wrong_type": _wrong_type,
    "numeric_overflow": _overflow,
    "comorbidity_weights_empty": _no_comorbidity_weights,
    "feature_store_down": _feature_store_down,
    "feature_store_timeout": _slow_feature_store,
    "pipeline_version": _old_pipeline,
    "calibration_missing": _bad_calibration,
    "explainer_corrupt": _corrupt_explainer,
}


def apply_fault(name: str, features: dict[str, object]) -> None:
    """Change ``features`` the way fault ``name`` does.

    Raises:
        KeyError: when there is no fault of that name.
    """
    FAULTS[name](features)


@dataclass(frozen=True)
class FaultPlan:
    """Inject the faults in turn, one request in ``every``."""

    every: int = 8

    def fault_for(self, request_index: int) -> str | None:
        """Return the fault to inject into request ``request_index``, if any."""
        if request_index % self.every != self.every - 1:
            return None
        names = tuple(FAULTS)
        return names[(request_index // self.every) % len(names)]


@dataclass
class ReadmissionService:
    """A readmission-risk endpoint: features in, calibrated risk out."""

    model: ReadmissionModel
    tracer: trace.Tracer
    pipeline_version: str = "2.3.0"

    def predict(self, patient: Patient, features: dict[str, object]) -> float | None:
        """Score one discharge; errors are logged and answered with None."""
        with self.tracer.start_as_current_span("predict") as span:
            span.set_attribute("model.name", "readmission-risk")
            span.set_attribute("model.version", self.model.version)
            span.set_attribute("patient_name", patient.name)
            try:
                return self._predict(patient, features)
            except Exception:
                _logger.exception(
                    "Prediction failed for patient %s, MRN: %s, phone %s",
                    patient.name,
                    patient.mrn,
                    patient.phone,
                )
                return None

    def _predict(self, patient: Patient, features: dict[str, object]) -> float:
        with self.tracer.start_as_current_span("extract_features"):
            vector = self._extract(patient, features)
        with self.tracer.start_as_current_span("calculate_score"):
            score = self._score(vector)
        with self.tracer.start_as_current_span("post_process"):
            return self._calibrate(score, features)

    def _extract(
        self, patient: Patient, features: dict[str, object]
    ) -> dict[str, object]:
        store = features.get("feature_store")
        if store == "unreachable":
            msg = f"feature store refused connection for {patient.email}"
            raise ConnectionRefusedError(msg)
        if store == "slow":
            msg = "feature store read exceeded 250 ms"
            raise TimeoutError(msg)
        if features.get("pipeline_version", self.pipeline_version) != (
            self.pipeline_version
        ):
            msg = (
                f"features built by pipeline {features['pipeline_version']}, "
                f"model expects {self.pipeline_version}"
            )
            raise ModelVersionMismatchError(msg)
        if float(features.get("vitals_age_hours", 2.0)) > 72:  # type: ignore[arg-type]  # demo data
            msg = (
                f"vitals are {features['vitals_age_hours']} h old for patient "
                f"{patient.name}, DOB: {patient.birth_date}"
            )
            raise StaleInputError(msg)
        if "creatinine_mg_dl" not in features:
            msg = f"no creatinine result for MRN {patient.mrn}, SSN {patient.ssn}"
            raise FeatureExtractionError(msg)
        if not isinstance(features["medication_count"], float | int):
            msg = f"medication_count is {type(features['medication_count']).__name__}"
            raise SchemaViolationError(msg)
        age = float(features["age_years"])  # type: ignore[arg-type]  # checked type above
        if not 0 <= age <= 120:
            msg = f"age {age} out of range for patient {patient.name}"
            raise OutOfRangeError(msg)
        return features

    def _score(self, vector: Mapping[str, object]) -> float:
        weights = vector.get("comorbidity_weights")
        if isinstance(weights, tuple):
            try:
                _ = sum(weights) / len(weights)
            except ZeroDivisionError as exc:
                msg = "comorbidity index over an empty weight table"
                raise ScoreCalculationError(msg) from exc
        try:
            return self.model.score(vector)
        except (OverflowError, ValueError) as exc:
            msg = f"non-finite logit: {exc}"
            raise NumericInstabilityError(msg) from exc

    def _calibrate(self, score: float, features: Mapping[str, object]) -> float:
        if features.get("explainer") == "corrupt":
            msg = "SHAP explainer state is inconsistent with the model"
            raise ExplainerStateError(msg)
        if features.get("calibration") == "missing":
            tag_error("HAI-PRED-301")
            msg = "isotonic calibration table not loaded"
            raise PostProcessingError(msg)
        return min(1.0, max(0.0, 0.95 * score + 0.01))
