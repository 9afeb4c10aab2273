"""An ``opentelemetry_distro`` that makes this project's configurator the default.

``opentelemetry-instrument`` configures the SDK through one
``opentelemetry_configurator`` entry point. ``opentelemetry-distro`` registers
one too, and when both are installed the first found wins unless
``OTEL_PYTHON_CONFIGURATOR`` names one. This distro sets that variable to
``healthai`` (when unset) and the same exporter defaults as
``opentelemetry-distro``, except that OTLP goes over HTTP/protobuf, the
protocol the specification recommends as the default.

With ``opentelemetry-distro`` also installed, set ``OTEL_PYTHON_DISTRO=healthai``
(or ``OTEL_PYTHON_CONFIGURATOR=healthai``) to choose this one.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import (  # type: ignore[attr-defined]  # the module opts out of type checking
    BaseDistro,
)

__all__ = ["HealthAIDistro"]

_DEFAULTS = {
    "OTEL_PYTHON_CONFIGURATOR": "healthai",
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}


class HealthAIDistro(BaseDistro):  # type: ignore[misc]  # BaseDistro is untyped
    """Set environment defaults before the configurator runs."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in _DEFAULTS.items():
            os.environ.setdefault(name, value)
