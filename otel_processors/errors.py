"""Exceptions raised by ``otel_processors`` itself (not the taxonomy hierarchy).

::

    HealthAITelemetryError
    └── ConfigurationError        bad settings, found at start
        └── RegistryError         a registry file cannot be loaded

Errors inside a running processor are never raised: they are logged once and
counted (see ``otel_processors._guard``).
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "HealthAITelemetryError", "RegistryError"]


class HealthAITelemetryError(Exception):
    """Base of the errors this package raises."""


class ConfigurationError(HealthAITelemetryError, ValueError):
    """A setting is invalid; the message names where it came from and its value."""


class RegistryError(ConfigurationError):
    """A registry file is invalid; the message names the file, entry and problem."""
