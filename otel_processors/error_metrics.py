"""The counter of classified errors, as an OpenTelemetry metric.

``healthai.errors.classified`` counts every classified error by service,
category, subcategory, code and signal (span or log). Its cardinality is bounded
by the registry: codes come from a fixed catalogue plus user files, never from
messages. Unclassified errors are counted too, under their fallback code.
"""

from __future__ import annotations

import threading

from opentelemetry import metrics

from otel_processors import attributes as attrs
from otel_processors.classifier import Classification

__all__ = ["ClassifiedErrorCounter"]

_METER_NAME = "healthai-telemetry"
_INSTRUMENT_NAME = "healthai.errors.classified"


class ClassifiedErrorCounter:
    """Count classified errors; the instrument is created on first use.

    Creating the instrument lazily matters under ``opentelemetry-instrument``:
    the span pipeline is built before the meter provider is set.

    Args:
        meter_provider: the provider to use; the global one when None.
    """

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._meter_provider = meter_provider
        self._counter: metrics.Counter | None = None
        self._lock = threading.Lock()

    def add(self, classification: Classification, *, service: str, signal: str) -> None:
        """Count one error.

        Args:
            classification: what the error was classified as.
            service: the emitting service's ``service.name``.
            signal: ``"span"`` or ``"log"``.
        """
        code = classification.code
        self._instrument().add(
            1,
            {
                "service.name": service,
                attrs.ERROR_CATEGORY: code.category.value,
                attrs.ERROR_SUBCATEGORY: code.subcategory.value,
                attrs.ERROR_CODE: code.id,
                "healthai.signal": signal,
            },
        )

    def _instrument(self) -> metrics.Counter:
        if self._counter is not None:
            return self._counter

        with self._lock:
            if self._counter is None:
                provider = self._meter_provider or metrics.get_meter_provider()
                meter = provider.get_meter(_METER_NAME)
                self._counter = meter.create_counter(
                    _INSTRUMENT_NAME,
                    unit="{error}",
                    description="Errors on spans and log records, by taxonomy code.",
                )
            return self._counter
