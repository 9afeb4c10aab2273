"""Tests for exporters.crash_service.otlp: decoding OTLP/HTTP log bodies."""

from __future__ import annotations

import gzip
import json

import pytest

from exporters.crash_service.otlp import (
    PayloadError,
    decode_body,
    decode_logs_request,
    iter_log_events,
)
from tests.exporters.crash_service.otlp_builders import (
    exception_attributes,
    log_record,
    logs_request,
)


def test_protobuf_round_trip_gives_plain_values() -> None:
    """A protobuf body decodes to events with Python values and hex ids."""
    body = logs_request([log_record({"a": 1, "b": True, "c": 0.5, "d": "x"})])

    events = list(
        iter_log_events(
            decode_logs_request(body.SerializeToString(), "application/x-protobuf")
        )
    )

    expected = (
        {"a": 1, "b": True, "c": 0.5, "d": "x"},
        {"service.name": "risk-api", "service.version": "1.4.0"},
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )
    result = (
        events[0].attributes,
        events[0].resource,
        events[0].trace_id,
        events[0].span_id,
    )
    assert expected == result


def test_json_accepts_snake_case_and_nested_values() -> None:
    """OTLP/JSON decoding accepts snake_case keys and kvlist/array values."""
    document = {
        "resource_logs": [
            {
                "scope_logs": [
                    {
                        "log_records": [
                            {
                                "span_id": "b7ad6b7169203331",
                                "body": {
                                    "kvlistValue": {
                                        "values": [
                                            {
                                                "key": "ids",
                                                "value": {
                                                    "arrayValue": {
                                                        "values": [{"intValue": "3"}]
                                                    }
                                                },
                                            }
                                        ]
                                    }
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }

    request = decode_logs_request(json.dumps(document).encode(), "application/json")
    events = list(iter_log_events(request))

    expected = ({"ids": [3]}, "b7ad6b7169203331")
    assert expected == (events[0].body, events[0].span_id)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
            "application/json",
            "bad_json",
        ),
        (b"[1, 2]", "application/json", "bad_json"),
        (b'{"resourceLogs": 5}', "application/json", "bad_json"),
        (b"\x0a\xff", "application/x-protobuf", "bad_protobuf"),
        (b"", "text/plain", "unsupported_media_type"),
        (b"", "", "unsupported_media_type"),
    ],
    ids=["bad-hex-id", "not-an-object", "wrong-shape", "bad-protobuf", "text", "none"],
)
def test_undecodable_body_raises_payload_error(
    body: bytes, content_type: str, reason: str
) -> None:
    """Each kind of undecodable body has its own bounded reason."""
    with pytest.raises(PayloadError) as caught:
        decode_logs_request(body, content_type)

    assert reason == caught.value.reason


def test_content_type_parameters_are_ignored() -> None:
    """``application/json; charset=utf-8`` is JSON."""
    request = decode_logs_request(b"{}", "Application/JSON; charset=utf-8")

    expected = 0
    assert expected == len(request.resource_logs)


def test_gzip_bomb_stops_at_the_limit() -> None:
    """Inflating stops as soon as the output passes the limit."""
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))

    with pytest.raises(PayloadError) as caught:
        decode_body(bomb, "gzip", 1024 * 1024)

    expected = ("too_large", 413)
    assert expected == (caught.value.reason, caught.value.status)


def test_truncated_gzip_is_rejected() -> None:
    """A gzip stream cut short is a bad_gzip, not an empty body."""
    payload = gzip.compress(
        logs_request([log_record(exception_attributes())]).SerializeToString()
    )

    with pytest.raises(PayloadError) as caught:
        decode_body(payload[: len(payload) // 2], "gzip", 1024 * 1024)

    assert caught.value.reason == "bad_gzip"


def test_gzip_within_the_limit_is_inflated() -> None:
    """A gzip body inflates to its original bytes."""
    original = b"crash report " * 1000

    result = decode_body(gzip.compress(original), "GZIP", 1024 * 1024)

    assert original == result
