"""What runs inside an instrumented service.

The error taxonomy and its registry, the span and log record processors that
attach it, PHI scrubbing, and the one-call set-up. Crash capture lives in
``otel_processors.crash`` and the feature and score histogram recorder in
``otel_processors.histograms``; ``opentelemetry-instrument`` reaches all of it
through ``otel_processors.configurator``.
"""

from __future__ import annotations

from otel_processors.classifier import Classification, Classifier
from otel_processors.enable import EnabledPipeline, enable
from otel_processors.errors import (
    ConfigurationError,
    HealthAITelemetryError,
    RegistryError,
)
from otel_processors.exceptions import (
    ConfigurationInvalidError,
    DataError,
    DependencyUnavailableError,
    FeatureExtractionError,
    HealthAIError,
    InferenceError,
    InfrastructureError,
    MissingValueError,
    ModelError,
    ModelLoadError,
    ModelVersionMismatchError,
    NumericInstabilityError,
    OperationTimeoutError,
    OutOfRangeError,
    PermissionDeniedError,
    PostProcessingError,
    PredictionError,
    ResourceExhaustedError,
    SchemaViolationError,
    ScoreCalculationError,
    StaleInputError,
    UnitMismatchError,
    UnknownCodeError,
)
from otel_processors.logs import (
    HealthAILoggingHandler,
    ScrubbingLogRecordProcessor,
    TaxonomyLogRecordProcessor,
)
from otel_processors.pipeline import PipelineSettings
from otel_processors.registry import ErrorCode, Registry
from otel_processors.scrubber import Scrubber
from otel_processors.spans import (
    ScrubbingSpanExporter,
    TaxonomySpanExporter,
    TaxonomySpanProcessor,
)
from otel_processors.tagging import log_extra, tag_error
from otel_processors.taxonomy import Category, Severity, Subcategory

__all__ = [
    "Category",
    "Classification",
    "Classifier",
    "ConfigurationError",
    "ConfigurationInvalidError",
    "DataError",
    "DependencyUnavailableError",
    "EnabledPipeline",
    "ErrorCode",
    "FeatureExtractionError",
    "HealthAIError",
    "HealthAILoggingHandler",
    "HealthAITelemetryError",
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
    "PipelineSettings",
    "PostProcessingError",
    "PredictionError",
    "Registry",
    "RegistryError",
    "ResourceExhaustedError",
    "SchemaViolationError",
    "ScoreCalculationError",
    "Scrubber",
    "ScrubbingLogRecordProcessor",
    "ScrubbingSpanExporter",
    "Severity",
    "StaleInputError",
    "Subcategory",
    "TaxonomyLogRecordProcessor",
    "TaxonomySpanExporter",
    "TaxonomySpanProcessor",
    "UnitMismatchError",
    "UnknownCodeError",
    "enable",
    "log_extra",
    "tag_error",
]
