"""Exceptions raised by ``exporters``.

::

    ExportersError
    ├── CommandError              a command cannot do what was asked (exit 2)
    └── exporters-specific errors are added under ExportersError by each module

Configuration errors from ``otel_processors.errors`` (``ConfigurationError``)
are also reported by the command line as a ``CommandError``.
"""

from __future__ import annotations

__all__ = ["CommandError", "ExportersError"]


class ExportersError(Exception):
    """Base of the errors this package raises."""


class CommandError(ExportersError):
    """A command failed for a reason the user can fix; the message says how."""
