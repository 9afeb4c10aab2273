"""Decode OTLP/HTTP log export requests, protobuf or JSON, plain or gzip.

The receiving side of https://opentelemetry.io/docs/specs/otlp/#otlphttp: the body
is an ``ExportLogsServiceRequest`` in binary protobuf (``application/x-protobuf``)
or in the OTLP/JSON encoding (``application/json``), which differs from the
protobuf JSON mapping in one place: trace and span ids are hex strings, not
base64. Unknown JSON fields are ignored, as the specification requires of
receivers.

Decoded records are flattened into ``LogEvent`` values with plain Python
attribute values, so the rest of the service never touches protobuf types.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# protobuf ships no type stubs and types-protobuf is not a dependency.
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "LogEvent",
    "PayloadError",
    "decode_body",
    "decode_logs_request",
    "iter_log_events",
]

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"
CONTENT_TYPE_JSON = "application/json"

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_INFLATE_CHUNK_BYTES = 64 * 1024


class PayloadError(Exception):
    """A request body cannot be decoded.

    Args:
        reason: a short, bounded label for the metrics (``bad_protobuf``, ...).
        status: the HTTP status to answer with.
        message: what is wrong, for the client.
    """

    def __init__(self, reason: str, status: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LogEvent:
    """One log record with its resource, as plain Python values."""

    resource: dict[str, Any]
    scope_name: str
    attributes: dict[str, Any]
    body: Any
    event_name: str
    severity_text: str
    severity_number: int
    time_unix_nano: int
    observed_time_unix_nano: int
    trace_id: str = ""
    span_id: str = ""
    dropped_attributes_count: int = field(default=0)


def media_type(content_type: str | None) -> str:
    """Return the media type of a ``Content-Type`` header, lower case, no params."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(
    body: bytes, content_encoding: str | None, max_body_bytes: int
) -> bytes:
    """Undo the ``Content-Encoding`` of a body, refusing to inflate past a limit.

    Args:
        body: the bytes read from the request.
        content_encoding: the header value; ``None``, ``identity`` or ``gzip``.
        max_body_bytes: the largest decompressed size accepted.

    Returns:
        The decoded bytes.

    Raises:
        PayloadError: unknown encoding (415), corrupt gzip (400) or a body that
            inflates past the limit (413).
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        msg = f"unsupported Content-Encoding {encoding!r}; use gzip or none"
        raise PayloadError("unsupported_encoding", 415, msg)

    # Inflate in bounded steps so that a small bomb cannot allocate gigabytes
    # before the size check runs.
    inflater = zlib.decompressobj(_GZIP_WBITS)
    parts: list[bytes] = []
    total = 0
    pending = body
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK_BYTES)
            pending = inflater.unconsumed_tail
            total += len(chunk)
            if total > max_body_bytes:
                msg = f"decompressed body exceeds the limit of {max_body_bytes} bytes"
                raise PayloadError("too_large", 413, msg)
            parts.append(chunk)
    except zlib.error as exc:
        msg = f"body is not valid gzip: {exc}"
        raise PayloadError("bad_gzip", 400, msg) from exc

    if not inflater.eof:
        msg = "gzip body is truncated"
        raise PayloadError("bad_gzip", 400, msg)
    return b"".join(parts)


def decode_logs_request(
    data: bytes, content_type: str | None
) -> ExportLogsServiceRequest:
    """Parse an ``ExportLogsServiceRequest`` in the encoding the header names.

    Args:
        data: the decompressed body.
        content_type: the ``Content-Type`` header.

    Returns:
        The request message.

    Raises:
        PayloadError: unknown media type (415) or an undecodable body (400).
    """
    kind = media_type(content_type)
    if kind == CONTENT_TYPE_PROTOBUF:
        return _parse_protobuf(data)
    if kind == CONTENT_TYPE_JSON:
        return _parse_json(data)
    msg = (
        f"unsupported Content-Type {kind or '(none)'!r}; use "
        f"{CONTENT_TYPE_PROTOBUF} or {CONTENT_TYPE_JSON}"
    )
    raise PayloadError("unsupported_media_type", 415, msg)


def _parse_protobuf(data: bytes) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        msg = f"body is not a valid protobuf ExportLogsServiceRequest: {exc}"
        raise PayloadError("bad_protobuf", 400, msg) from exc
    return request


def _parse_json(data: bytes) -> ExportLogsServiceRequest:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"body is not valid JSON: {exc}"
        raise PayloadError("bad_json", 400, msg) from exc
    if not isinstance(document, dict):
        msg = "body must be a JSON object with resourceLogs"
        raise PayloadError("bad_json", 400, msg)

    request = ExportLogsServiceRequest()
    try:
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        msg = f"body is not a valid OTLP/JSON ExportLogsServiceRequest: {exc}"
        raise PayloadError("bad_json", 400, msg) from exc
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON hex ids into the base64 the protobuf JSON mapping expects."""
    for resource_logs in _as_list(_get(document, "resourceLogs")):
        for scope_logs in _as_list(_get(resource_logs, "scopeLogs")):
            for record in _as_list(_get(scope_logs, "logRecords")):
                if not isinstance(record, dict):
                    continue
                for key in ("traceId", "spanId", "trace_id", "span_id"):
                    value = record.get(key)
                    if isinstance(value, str) and value:
                        record[key] = _hex_to_base64(key, value)


def _hex_to_base64(key: str, value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        msg = f"{key} {value[:40]!r} is not a hex string"
        raise ValueError(msg) from exc
    return base64.b64encode(raw).decode("ascii")


def _get(mapping: object, key: str) -> object:
    if not isinstance(mapping, dict):
        return None
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
    return mapping.get(key, mapping.get(snake))


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def iter_log_events(request: ExportLogsServiceRequest) -> Iterator[LogEvent]:
    """Yield every log record of a request as a ``LogEvent``."""
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope_name = scope_logs.scope.name
            for record in scope_logs.log_records:
                yield LogEvent(
                    resource=resource,
                    scope_name=scope_name,
                    attributes=_attributes(record.attributes),
                    body=any_value(record.body) if record.HasField("body") else None,
                    event_name=record.event_name,
                    severity_text=record.severity_text,
                    severity_number=int(record.severity_number),
                    time_unix_nano=record.time_unix_nano,
                    observed_time_unix_nano=record.observed_time_unix_nano,
                    trace_id=binascii.hexlify(record.trace_id).decode("ascii"),
                    span_id=binascii.hexlify(record.span_id).decode("ascii"),
                    dropped_attributes_count=record.dropped_attributes_count,
                )


def _attributes(pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    item: KeyValue
    for item in pairs:
        result[item.key] = any_value(item.value)
    return result


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` to str, bool, int, float, list, dict or None.

    Bytes values become their base64 text, as in OTLP/JSON.
    """
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)
