"""A small model service for the end-to-end test, run under opentelemetry-instrument.

It contains no OpenTelemetry set-up of its own: everything it exports is
configured by the project's distro and configurator. Every error carries
planted patient identifiers, which must not reach the receiver.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from otel_processors.exceptions import FeatureExtractionError
from otel_processors.tagging import tag_error

_logger = logging.getLogger("sample_service")
tracer = trace.get_tracer("sample_service")

PATIENT = "patient John Smith, SSN 123-45-6789, MRN: 00451234, jane.doe@example.org"


def extract_features() -> None:
    with tracer.start_as_current_span("extract_features"):
        msg = f"creatinine missing for {PATIENT}"
        raise FeatureExtractionError(msg)


def main() -> None:
    with tracer.start_as_current_span("healthy_request") as span:
        span.set_attribute("model.version", "2.3.1")

    try:
        extract_features()
    except FeatureExtractionError:
        _logger.exception("Scoring failed for %s", PATIENT)

    with tracer.start_as_current_span("load_model"):
        try:
            raise MemoryError(f"cannot allocate for {PATIENT}")
        except MemoryError:
            _logger.error("Model load failed", exc_info=True)  # noqa: G201 - the path under test

    with tracer.start_as_current_span("explicit") as span:
        tag_error("HAI-SYS-101")
        span.set_status(Status(StatusCode.ERROR, f"upstream refused {PATIENT}"))

    with tracer.start_as_current_span("unknown_failure") as span:
        span.set_attribute("patient_name", "John Smith")
        try:
            raise LookupError("no such thing (call (617) 555-0123)")
        except LookupError as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR))


if __name__ == "__main__":
    main()
