"""Attribute names this project writes on spans, log records and metrics.

Custom attributes live in the ``healthai.`` namespace: the semantic conventions
reserve ``error.`` and ``otel.`` for themselves. The one standard attribute
written is ``error.type``, which must stay low-cardinality, so it carries the
error code rather than a message or an exception type.
See https://opentelemetry.io/docs/specs/semconv/general/naming/ and
https://opentelemetry.io/docs/specs/semconv/attributes-registry/error/.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "healthai"

# Classification, written by the taxonomy processors.
ERROR_CATEGORY: Final = "healthai.error.category"
ERROR_SUBCATEGORY: Final = "healthai.error.subcategory"
ERROR_CODE: Final = "healthai.error.code"
ERROR_SEVERITY: Final = "healthai.error.severity"
ERROR_RETRYABLE: Final = "healthai.error.retryable"
ERROR_REMEDIATION: Final = "healthai.error.remediation"
ERROR_RUNBOOK_URL: Final = "healthai.error.runbook_url"
ERROR_FALLBACK: Final = "healthai.error.fallback"
"""True when no registry rule matched and a fallback code was used."""

# Standard attributes read or written.
ERROR_TYPE: Final = "error.type"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EXCEPTION_ESCAPED: Final = "exception.escaped"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"

# Crash reports.
CRASH_FINGERPRINT: Final = "healthai.crash.fingerprint"
CRASH_FINGERPRINT_VERSION: Final = "healthai.crash.fingerprint_version"
CRASH_KIND: Final = "healthai.crash.kind"
CRASH_REPEATS: Final = "healthai.crash.repeats"
CRASH_FRAMES: Final = "healthai.crash.frames"
"""Python frames of a crash, oldest first, as a JSON list of {module, function,
filename, lineno, context_line, in_app}; at most the 64 innermost."""
CRASH_NATIVE_FRAMES: Final = "healthai.crash.native_frames"
"""Native frames of a crash, as a JSON list of {module, debug_id, offset}."""
