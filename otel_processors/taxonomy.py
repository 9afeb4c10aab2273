"""The error taxonomy: categories, their subcategories and severities.

Every error seen on a span or a log record is placed in exactly one category and
one of that category's subcategories. The taxonomy is closed (users add error
codes in the registry, not categories), so dashboards and alert rules can rely on
a fixed, low-cardinality set of label values.

``UNCLASSIFIED`` is not a category of the taxonomy: it is what an error carries
when no registry rule matched and nothing else tells its category. It is kept
apart so that gaps in the registry show on dashboards instead of inflating
``SYSTEM_ERROR``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = [
    "SUBCATEGORIES",
    "Category",
    "Severity",
    "Subcategory",
    "category_of",
]


class Category(str, enum.Enum):
    """Top-level error categories."""

    PREDICTION_ERROR = "PREDICTION_ERROR"
    """The model ran but producing a prediction failed at one of its stages."""
    DATA_ERROR = "DATA_ERROR"
    """The input violates what the model was trained and validated on."""
    MODEL_ERROR = "MODEL_ERROR"
    """The model artefact itself is unusable or misbehaves."""
    SYSTEM_ERROR = "SYSTEM_ERROR"
    """The infrastructure around the model failed."""
    UNCLASSIFIED = "UNCLASSIFIED"
    """No rule matched; see the module docstring."""

    def __str__(self) -> str:
        return self.value


class Subcategory(str, enum.Enum):
    """Subcategories; each belongs to one category (see ``SUBCATEGORIES``)."""

    # PREDICTION_ERROR
    FEATURE_EXTRACTION = "FEATURE_EXTRACTION"
    """Turning the request into the model's feature vector failed."""
    SCORE_CALCULATION = "SCORE_CALCULATION"
    """The model's forward pass or scoring function failed."""
    POST_PROCESSING = "POST_PROCESSING"
    """Thresholding, calibration, explanation or formatting of the score failed."""

    # DATA_ERROR
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    """A field is absent, extra, or of the wrong type (e.g. a FHIR resource that
    does not validate)."""
    MISSING_VALUE = "MISSING_VALUE"
    """A required value is null, empty or NaN (e.g. no recent creatinine lab)."""
    OUT_OF_RANGE = "OUT_OF_RANGE"
    """A value is physiologically or logically impossible (age 212, SpO2 140 %)."""
    STALE_INPUT = "STALE_INPUT"
    """Inputs are older than the model's freshness window (vitals from last week)."""
    UNIT_MISMATCH = "UNIT_MISMATCH"
    """A measurement arrived in unexpected units (glucose in mmol/L, not mg/dL)."""
    UNKNOWN_CODE = "UNKNOWN_CODE"
    """A clinical code (ICD-10, LOINC, RxNorm, ...) is not in the model's
    vocabulary."""

    # MODEL_ERROR
    LOAD_FAILURE = "LOAD_FAILURE"
    """The artefact cannot be found, read, deserialised or verified."""
    VERSION_MISMATCH = "VERSION_MISMATCH"
    """Model, feature pipeline or runtime library versions disagree."""
    NUMERIC_INSTABILITY = "NUMERIC_INSTABILITY"
    """NaN or infinite activations, overflow, a singular matrix."""
    INFERENCE_FAILURE = "INFERENCE_FAILURE"
    """The runtime (ONNX Runtime, PyTorch, XGBoost, ...) failed while predicting."""

    # SYSTEM_ERROR
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
    """A feature store, EHR interface, database or downstream API is unreachable."""
    TIMEOUT = "TIMEOUT"
    """An operation ran past its deadline."""
    RESOURCE_EXHAUSTION = "RESOURCE_EXHAUSTION"
    """Memory, GPU memory, disk, file descriptors or a pool ran out."""
    CONFIGURATION = "CONFIGURATION"
    """A setting, secret or environment variable is missing or invalid."""
    PERMISSION = "PERMISSION"
    """Authentication or authorisation was refused."""
    CRASH = "CRASH"
    """The process, a thread or a task died of an unhandled error or a signal."""

    # UNCLASSIFIED
    UNKNOWN = "UNKNOWN"
    """Nothing is known about the error beyond its type and message."""

    def __str__(self) -> str:
        return self.value


class Severity(str, enum.Enum):
    """How urgently an error needs a human, from most to least urgent."""

    CRITICAL = "critical"
    """Patients may be affected now: page."""
    ERROR = "error"
    """Requests fail: open a ticket."""
    WARNING = "warning"
    """Degraded but served (a fallback score, a retried call)."""
    INFO = "info"
    """Expected and handled; counted only."""

    def __str__(self) -> str:
        return self.value


SUBCATEGORIES: Mapping[Category, tuple[Subcategory, ...]] = {
    Category.PREDICTION_ERROR: (
        Subcategory.FEATURE_EXTRACTION,
        Subcategory.SCORE_CALCULATION,
        Subcategory.POST_PROCESSING,
    ),
    Category.DATA_ERROR: (
        Subcategory.SCHEMA_VIOLATION,
        Subcategory.MISSING_VALUE,
        Subcategory.OUT_OF_RANGE,
        Subcategory.STALE_INPUT,
        Subcategory.UNIT_MISMATCH,
        Subcategory.UNKNOWN_CODE,
    ),
    Category.MODEL_ERROR: (
        Subcategory.LOAD_FAILURE,
        Subcategory.VERSION_MISMATCH,
        Subcategory.NUMERIC_INSTABILITY,
        Subcategory.INFERENCE_FAILURE,
    ),
    Category.SYSTEM_ERROR: (
        Subcategory.DEPENDENCY_UNAVAILABLE,
        Subcategory.TIMEOUT,
        Subcategory.RESOURCE_EXHAUSTION,
        Subcategory.CONFIGURATION,
        Subcategory.PERMISSION,
        Subcategory.CRASH,
    ),
    Category.UNCLASSIFIED: (Subcategory.UNKNOWN,),
}

_CATEGORY_OF: dict[Subcategory, Category] = {
    sub: category for category, subs in SUBCATEGORIES.items() for sub in subs
}


def category_of(subcategory: Subcategory) -> Category:
    """Return the category a subcategory belongs to."""
    return _CATEGORY_OF[subcategory]
