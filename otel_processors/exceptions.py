"""Exceptions for application code, one per place in the error taxonomy.

Raising one of these classifies the error explicitly: the classifier uses the
exception's ``code`` before trying any registry rule. Each class carries the id
of a built-in error code (see ``catalogue.yaml``); an instance may name another
code with ``code=``, e.g. a code from the service's own registry file.

::

    HealthAIError                        HAI-UNCL-000
    ├── PredictionError                  HAI-PRED-000
    │   ├── FeatureExtractionError       HAI-PRED-101
    │   ├── ScoreCalculationError        HAI-PRED-201
    │   └── PostProcessingError          HAI-PRED-301
    ├── DataError                        HAI-DATA-000
    │   ├── SchemaViolationError         HAI-DATA-101
    │   ├── MissingValueError            HAI-DATA-201
    │   ├── OutOfRangeError              HAI-DATA-301
    │   ├── StaleInputError              HAI-DATA-401
    │   ├── UnitMismatchError            HAI-DATA-501
    │   └── UnknownCodeError             HAI-DATA-601
    ├── ModelError                       HAI-MODEL-000
    │   ├── ModelLoadError               HAI-MODEL-101
    │   ├── ModelVersionMismatchError    HAI-MODEL-201
    │   ├── NumericInstabilityError      HAI-MODEL-301
    │   └── InferenceError               HAI-MODEL-401
    └── InfrastructureError              HAI-SYS-000
        ├── DependencyUnavailableError   HAI-SYS-101
        ├── OperationTimeoutError        HAI-SYS-201
        ├── ResourceExhaustedError       HAI-SYS-301
        ├── ConfigurationInvalidError    HAI-SYS-401
        └── PermissionDeniedError        HAI-SYS-501

``InfrastructureError`` is not called ``SystemError`` so as not to shadow the
builtin of that name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from otel_processors.taxonomy import Category

__all__ = [
    "ConfigurationInvalidError",
    "DataError",
    "DependencyUnavailableError",
    "FeatureExtractionError",
    "HealthAIError",
    "InferenceError",
    "InfrastructureError",
    "MissingValueError",
    "ModelError",
    "ModelLoadError",
    "ModelVersionMismatchError",
    "NumericInstabilityError",
    "OperationTimeoutError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PostProcessingError",
    "PredictionError",
    "ResourceExhaustedError",
    "SchemaViolationError",
    "ScoreCalculationError",
    "StaleInputError",
    "UnitMismatchError",
    "UnknownCodeError",
]


class HealthAIError(Exception):
    """Base of the taxonomy's exceptions.

    Args:
        *args: the usual exception arguments; the first is the message.
        code: an error-code id that replaces the class's ``code`` for this
            instance, e.g. ``"ACME-DATA-014"`` from the service's registry file.

    Attributes:
        code: the error-code id the classifier uses for this exception.
        category: the category whose fallback code applies when ``code`` is not
            in the registry.
    """

    code: str = "HAI-UNCL-000"
    category: ClassVar[Category] = Category.UNCLASSIFIED

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction replays only ``args``: keep an instance's code
        # across pickling (multiprocessing, concurrent.futures).
        return (_rebuild, (type(self), self.args, self.__dict__.get("code")))


def _rebuild(
    cls: type[HealthAIError], args: tuple[object, ...], code: str | None
) -> HealthAIError:
    return cls(*args, code=code)


class PredictionError(HealthAIError):
    """Producing a prediction failed at one of its stages."""

    code = "HAI-PRED-000"
    category = Category.PREDICTION_ERROR


class FeatureExtractionError(PredictionError):
    """Building the model's feature vector from the request failed."""

    code = "HAI-PRED-101"


class ScoreCalculationError(PredictionError):
    """The scoring function or forward pass failed."""

    code = "HAI-PRED-201"


class PostProcessingError(PredictionError):
    """Calibrating, thresholding, explaining or formatting a score failed."""

    code = "HAI-PRED-301"


class DataError(HealthAIError):
    """The input violates what the model was trained and validated on."""

    code = "HAI-DATA-000"
    category = Category.DATA_ERROR


class SchemaViolationError(DataError):
    """A field is absent, extra or of the wrong type."""

    code = "HAI-DATA-101"


class MissingValueError(DataError):
    """A required value is null, empty or NaN."""

    code = "HAI-DATA-201"


class OutOfRangeError(DataError):
    """A value is physiologically or logically impossible."""

    code = "HAI-DATA-301"


class StaleInputError(DataError):
    """An input is older than the model's freshness window."""

    code = "HAI-DATA-401"


class UnitMismatchError(DataError):
    """A measurement arrived in units the model does not expect."""

    code = "HAI-DATA-501"


class UnknownCodeError(DataError):
    """A clinical code is not in the model's vocabulary."""

    code = "HAI-DATA-601"


class ModelError(HealthAIError):
    """The model artefact is unusable or misbehaves."""

    code = "HAI-MODEL-000"
    category = Category.MODEL_ERROR


class ModelLoadError(ModelError):
    """The artefact cannot be found, read, deserialised or verified."""

    code = "HAI-MODEL-101"


class ModelVersionMismatchError(ModelError):
    """Model, feature pipeline or runtime versions disagree."""

    code = "HAI-MODEL-201"


class NumericInstabilityError(ModelError):
    """NaN or infinite values, overflow or a singular matrix appeared."""

    code = "HAI-MODEL-301"


class InferenceError(ModelError):
    """The inference runtime failed while predicting."""

    code = "HAI-MODEL-401"


class InfrastructureError(HealthAIError):
    """The infrastructure around the model failed."""

    code = "HAI-SYS-000"
    category = Category.SYSTEM_ERROR


class DependencyUnavailableError(InfrastructureError):
    """A feature store, EHR interface, database or API is unreachable."""

    code = "HAI-SYS-101"


class OperationTimeoutError(InfrastructureError):
    """An operation ran past its deadline."""

    code = "HAI-SYS-201"


class ResourceExhaustedError(InfrastructureError):
    """Memory, GPU memory, disk, descriptors or a pool ran out."""

    code = "HAI-SYS-301"


class ConfigurationInvalidError(InfrastructureError):
    """A setting, secret or environment variable is missing or invalid."""

    code = "HAI-SYS-401"


class PermissionDeniedError(InfrastructureError):
    """Authentication or authorisation was refused."""

    code = "HAI-SYS-501"
