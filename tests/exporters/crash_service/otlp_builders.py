"""Builders of OTLP log requests for the crash service tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

TOKEN = "test-token-0123456789abcdef"

STACKTRACE = """\
Traceback (most recent call last):
  File "/srv/app/risk/service.py", line 41, in predict
    score = model.score(features)
  File "/srv/app/risk/model.py", line 88, in score
    raise ValueError(f"feature out of range for MRN {mrn}")
ValueError: feature out of range for MRN 12345678
"""


def any_value(value: object) -> AnyValue:
    """Build an OTLP AnyValue from a Python value."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def log_record(
    attributes: Mapping[str, object],
    *,
    event_name: str = "",
    body: str | None = None,
    time_unix_nano: int = 1_780_000_000_000_000_000,
) -> LogRecord:
    """Build one OTLP log record."""
    record = LogRecord(
        time_unix_nano=time_unix_nano,
        event_name=event_name,
        severity_number=17,
        severity_text="ERROR",
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()],
    )
    if body is not None:
        record.body.string_value = body
    return record


def logs_request(
    records: Sequence[LogRecord],
    *,
    service: str = "risk-api",
    version: str | None = "1.4.0",
) -> ExportLogsServiceRequest:
    """Wrap records in a request with one resource and one scope."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(
        KeyValue(key="service.name", value=any_value(service))
    )
    if version is not None:
        resource_logs.resource.attributes.append(
            KeyValue(key="service.version", value=any_value(version))
        )
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "tests"
    scope_logs.log_records.extend(records)
    return request


def exception_attributes(
    exc_type: str = "ValueError",
    message: str = "feature out of range for MRN 12345678",
    stacktrace: str | None = STACKTRACE,
    **extra: object,
) -> dict[str, object]:
    """Attributes of an exception record as the SDK's logging handler writes them."""
    result: dict[str, object] = {
        "exception.type": exc_type,
        "exception.message": message,
    }
    if stacktrace is not None:
        result["exception.stacktrace"] = stacktrace
    result.update({key.replace("__", "."): value for key, value in extra.items()})
    return result
