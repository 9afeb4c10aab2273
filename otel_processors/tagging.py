"""Name an error's code by hand, on a span or a log record.

Application code that knows what went wrong can say so, and the classifier
then uses that code before any registry rule::

    from otel_processors.tagging import log_extra, tag_error

    try:
        creatinine = labs["2160-0"]
    except KeyError:
        tag_error("ACME-DATA-014")
        logger.error("No creatinine lab", extra=log_extra("ACME-DATA-014"))

Tagging is meant to be cheap and never to fail: the id is not checked here.
An id the registry does not know is handled by the classifier (fallback code,
with the reason saying so).
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.trace import Span

from otel_processors import attributes as attrs
from otel_processors._guard import record_failure

__all__ = ["log_extra", "tag_error"]

_logger = logging.getLogger(__name__)


def tag_error(code_id: str, *, span: Span | None = None) -> None:
    """Set ``healthai.error.code`` on a span.

    Does nothing when the span is not recording (ended, or not sampled); never
    raises.

    Args:
        code_id: the error-code id, e.g. ``"HAI-DATA-301"``.
        span: the span to tag; default the current span.
    """
    try:
        target = span if span is not None else trace.get_current_span()
        if target.is_recording():
            target.set_attribute(attrs.ERROR_CODE, code_id)
    except Exception as exc:
        record_failure("taxonomy.tag_error", exc)


def log_extra(code_id: str) -> dict[str, str]:
    """Return ``extra`` for a logging call that names the error's code.

    OpenTelemetry's logging handler turns ``extra`` keys into log-record
    attributes, so ``logger.error(..., extra=log_extra("HAI-SYS-101"))``
    classifies the record as ``HAI-SYS-101``.

    Args:
        code_id: the error-code id.

    Returns:
        A new dict; merge it with other ``extra`` keys if needed.
    """
    return {attrs.ERROR_CODE: code_id}
