"""Tests for the crash service over HTTP, with a real OTLP/HTTP log exporter."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from google.rpc.status_pb2 import Status
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from exporters.crash_service import CrashService
from tests.exporters.crash_service.otlp_builders import (
    TOKEN,
    exception_attributes,
    log_record,
    logs_request,
)

StartService = Callable[..., tuple[CrashService, str]]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTOBUF = {"Content-Type": "application/x-protobuf", **AUTH}


def metric_value(url: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Read one sample from the service's /metrics page (0 when absent)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    wanted = name
    if labels:
        wanted += "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def provider_for(url: str, *, compression: Compression) -> LoggerProvider:
    """An SDK LoggerProvider exporting synchronously to the crash service."""
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "risk-api", "service.version": "2.0"})
    )
    exporter = OTLPLogExporter(
        endpoint=f"{url}/v1/logs", headers=AUTH, compression=compression, timeout=5
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider


def fail_at_patient(mrn: str) -> None:
    """Raise the same error from the same line, whatever the patient."""
    raise KeyError(f"no admission for MRN {mrn}")


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_real_exporter_records_are_grouped_and_counted(
    start_service: StartService, compression: Compression
) -> None:
    """Exception records from the SDK exporter form groups; others are ignored."""
    service, url = start_service()
    provider = provider_for(url, compression=compression)
    logger = provider.get_logger("tests.crash_service")

    try:
        for mrn in ("1001", "1002", "1003"):
            try:
                fail_at_patient(mrn)
            except KeyError as exc:
                logger.emit(
                    event_name="exception",
                    severity_number=SeverityNumber.ERROR,
                    body="scoring failed",
                    exception=exc,
                )
        logger.emit(severity_number=SeverityNumber.WARN, body="slow feature store")
        logger.emit(
            event_name="exception",
            severity_number=SeverityNumber.FATAL,
            attributes={"exception.type": "MemoryError", "exception.message": "oom"},
        )
    finally:
        provider.shutdown()
    groups = service.store.list_groups()

    expected = [
        ("KeyError", 3, "frames", ("risk-api",), ("2.0",)),
        ("MemoryError", 1, "message", ("risk-api",), ("2.0",)),
    ]
    result = sorted(
        (g.exception_type, g.count, g.basis, g.services, g.releases) for g in groups
    )
    assert expected == result
    assert "1001" not in json.dumps([g.to_json(include_sample=True) for g in groups])
    expected_metrics = (4.0, 1.0, 2.0, 2.0)
    result_metrics = (
        metric_value(
            url,
            "healthai_crash_reports_total",
            {"category": "none", "service": "risk-api"},
        ),
        metric_value(url, "healthai_crash_ignored_records_total"),
        metric_value(url, "healthai_crash_new_groups_total"),
        metric_value(url, "healthai_crash_groups", {"status": "open"}),
    )
    assert expected_metrics == result_metrics


def test_json_encoding_with_hex_ids_is_accepted(start_service: StartService) -> None:
    """OTLP/JSON is decoded and answered in JSON; a record with 5 repeats counts 6."""
    service, url = start_service()
    payload = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "triage"}}
                    ]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "json-client"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1780000000000000000",
                                "eventName": "exception",
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "unknownFutureField": 1,
                                "attributes": [
                                    {
                                        "key": "exception.type",
                                        "value": {"stringValue": "TimeoutError"},
                                    },
                                    {
                                        "key": "healthai.crash.repeats",
                                        "value": {"intValue": "5"},
                                    },
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }

    response = requests.post(
        f"{url}/v1/logs",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json", **AUTH},
        timeout=5,
    )
    group = service.store.list_groups()[0]

    expected = (200, "application/json", 6, "5b8efff798038103d269b633813fc60c")
    result = (
        response.status_code,
        response.headers["Content-Type"],
        group.count,
        group.sample["trace_id"],
    )
    assert expected == result
    assert group.first_seen == pytest.approx(1_780_000_000.0)


def test_partial_batch_keeps_valid_records(start_service: StartService) -> None:
    """Invalid records are rejected with partial_success; the rest are stored."""
    service, url = start_service()
    request = logs_request(
        [
            log_record(exception_attributes()),
            log_record({"healthai.crash.repeats": 2}, event_name="exception"),
            log_record(exception_attributes(healthai__crash__repeats="-3")),
            log_record({"http.route": "/predict"}),
        ]
    )

    response = requests.post(
        f"{url}/v1/logs", data=request.SerializeToString(), headers=PROTOBUF, timeout=5
    )
    answer = ExportLogsServiceResponse.FromString(response.content)

    expected = (200, 2, 1)
    result = (
        response.status_code,
        answer.partial_success.rejected_log_records,
        sum(g.count for g in service.store.list_groups()),
    )
    assert expected == result
    assert "record 1" in answer.partial_success.error_message
    rejected = metric_value(
        url, "healthai_crash_rejected_payloads_total", {"reason": "invalid_record"}
    )
    assert rejected == 2.0


BAD_REQUESTS: list[tuple[str, dict[str, str], bytes, int, str]] = [
    ("garbage", PROTOBUF, b"\xff\xff\xff\xff garbage", 400, "bad_protobuf"),
    (
        "truncated",
        PROTOBUF,
        logs_request([log_record(exception_attributes())]).SerializeToString()[:-7],
        400,
        "bad_protobuf",
    ),
    ("bad-json", {"Content-Type": "application/json", **AUTH}, b"{", 400, "bad_json"),
    (
        "wrong-type",
        {"Content-Type": "text/plain", **AUTH},
        b"x",
        415,
        "unsupported_media_type",
    ),
    (
        "bad-encoding",
        {"Content-Encoding": "br", **PROTOBUF},
        b"x",
        415,
        "unsupported_encoding",
    ),
    ("bad-gzip", {"Content-Encoding": "gzip", **PROTOBUF}, b"notgzip", 400, "bad_gzip"),
    (
        "gzip-bomb",
        {"Content-Encoding": "gzip", **PROTOBUF},
        gzip.compress(b"\0" * (8 * 1024 * 1024)),
        413,
        "too_large",
    ),
    ("oversized", PROTOBUF, b"\0" * (64 * 1024 + 1), 413, "too_large"),
    ("no-token", {"Content-Type": "application/x-protobuf"}, b"", 401, "unauthorized"),
    (
        "wrong-token",
        {"Content-Type": "application/x-protobuf", "Authorization": "Bearer nope"},
        logs_request([log_record(exception_attributes())]).SerializeToString(),
        401,
        "unauthorized",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_payload_gets_4xx_counted_and_service_keeps_serving(
    start_service: StartService,
    headers: dict[str, str],
    body: bytes,
    status: int,
    reason: str,
) -> None:
    """A bad payload is refused with its status and reason; a good one follows."""
    service, url = start_service(max_body_bytes=64 * 1024)
    good = logs_request([log_record(exception_attributes())]).SerializeToString()

    with requests.Session() as session:
        bad = session.post(f"{url}/v1/logs", data=body, headers=headers, timeout=5)
        after = session.post(f"{url}/v1/logs", data=good, headers=PROTOBUF, timeout=5)

    expected = (status, 200, 1.0, 1)
    result = (
        bad.status_code,
        after.status_code,
        metric_value(url, "healthai_crash_rejected_payloads_total", {"reason": reason}),
        len(service.store.list_groups()),
    )
    assert expected == result


def test_undecodable_protobuf_is_answered_with_a_status_message(
    start_service: StartService,
) -> None:
    """A 400 carries a google.rpc.Status in protobuf saying what was wrong."""
    _, url = start_service()

    response = requests.post(
        f"{url}/v1/logs", data=b"\xff\xff", headers=PROTOBUF, timeout=5
    )
    status = Status.FromString(response.content)

    expected = (400, "application/x-protobuf", 3)
    assert expected == (
        response.status_code,
        response.headers["Content-Type"],
        status.code,
    )
    assert "not a valid protobuf" in status.message


def test_gzip_body_is_inflated(start_service: StartService) -> None:
    """A gzip-encoded protobuf body is accepted."""
    service, url = start_service()
    body = gzip.compress(
        logs_request([log_record(exception_attributes())]).SerializeToString()
    )

    response = requests.post(
        f"{url}/v1/logs",
        data=body,
        headers={"Content-Encoding": "gzip", **PROTOBUF},
        timeout=5,
    )

    expected = (200, 1)
    assert expected == (response.status_code, len(service.store.list_groups()))


def post_crashes(url: str, count: int = 1, **extra: object) -> None:
    """Send ``count`` identical exception records."""
    request = logs_request(
        [log_record(exception_attributes(**extra)) for _ in range(count)]
    )
    response = requests.post(
        f"{url}/v1/logs", data=request.SerializeToString(), headers=PROTOBUF, timeout=5
    )
    response.raise_for_status()


def test_api_lists_shows_and_resolves_a_group(start_service: StartService) -> None:
    """The JSON API lists groups, shows one with its scrubbed sample, resolves it."""
    _, url = start_service()
    post_crashes(url, 2, patient__name="Jane Roe")
    listed = requests.get(f"{url}/api/groups?status=open", headers=AUTH, timeout=5)
    group_id = listed.json()["groups"][0]["id"]

    shown = requests.get(f"{url}/api/groups/{group_id}", headers=AUTH, timeout=5)
    patched = requests.patch(
        f"{url}/api/groups/{group_id}",
        json={"status": "resolved"},
        headers=AUTH,
        timeout=5,
    )
    still_open = requests.get(f"{url}/api/groups?status=open", headers=AUTH, timeout=5)

    sample = shown.json()["sample"]
    expected = (
        "ValueError: feature out of range for MRN [REDACTED:MRN]",
        2,
        "resolved",
        [],
    )
    result = (
        shown.json()["title"],
        shown.json()["count"],
        patched.json()["status"],
        still_open.json()["groups"],
    )
    assert expected == result
    assert sample["attributes"]["patient.name"] == "[REDACTED:NAME]"
    assert "[REDACTED:MRN]" in sample["attributes"]["exception.stacktrace"]
    assert "12345678" not in shown.text


API_ERRORS: list[tuple[str, str, str, dict[str, Any], int, str | None]] = [
    ("bad-status-filter", "GET", "/api/groups?status=closed", {}, 400, "bad_request"),
    ("bad-limit", "GET", "/api/groups?limit=abc", {}, 400, "bad_request"),
    ("limit-too-big", "GET", "/api/groups?limit=100000", {}, 400, "bad_request"),
    ("unknown-group", "GET", "/api/groups/" + "0" * 32, {}, 404, None),
    ("bad-id", "GET", "/api/groups/../../etc", {}, 404, None),
    ("patch-bad-json", "PATCH", "/api/groups/{id}", {"data": b"{"}, 400, "bad_request"),
    (
        "patch-bad-status",
        "PATCH",
        "/api/groups/{id}",
        {"json": {"status": "closed"}},
        400,
        "bad_request",
    ),
    (
        "patch-extra-key",
        "PATCH",
        "/api/groups/{id}",
        {"json": {"status": "open", "count": 0}},
        400,
        "bad_request",
    ),
    (
        "patch-no-token",
        "PATCH",
        "/api/groups/{id}",
        {"json": {"status": "resolved"}, "headers": {}},
        401,
        "unauthorized",
    ),
    ("get-no-token", "GET", "/api/groups", {"headers": {}}, 401, "unauthorized"),
]


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "reason"),
    [case[1:] for case in API_ERRORS],
    ids=[case[0] for case in API_ERRORS],
)
def test_invalid_api_request_gets_4xx(
    start_service: StartService,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    reason: str | None,
) -> None:
    """Invalid API requests are refused with a 4xx (counted) and change nothing."""
    service, url = start_service()
    post_crashes(url)
    group_id = service.store.list_groups()[0].group_id
    headers = options.pop("headers", {"Content-Type": "application/json", **AUTH})

    response = requests.request(
        method, url + path.format(id=group_id), headers=headers, timeout=5, **options
    )

    group = service.store.get_group(group_id)
    assert group is not None
    expected = (status, "open", 1.0 if reason else 0.0)
    result = (
        response.status_code,
        group.status,
        metric_value(
            url, "healthai_crash_rejected_payloads_total", {"reason": reason or "x"}
        ),
    )
    assert expected == result


def test_restart_keeps_groups(start_service: StartService) -> None:
    """A service restarted on the same file still has its groups and adds to them."""
    first, url = start_service()
    post_crashes(url, 3)
    first.stop()

    second, url = start_service()
    post_crashes(url, 2)
    groups = second.store.list_groups()

    expected = [5]
    assert expected == [g.count for g in groups]


def test_healthz_and_metrics_need_no_token(start_service: StartService) -> None:
    """Health and metrics are readable without the token."""
    _, url = start_service()

    result = (
        requests.get(f"{url}/healthz", timeout=5).status_code,
        requests.get(f"{url}/metrics", timeout=5).status_code,
    )

    expected = (200, 200)
    assert expected == result


def test_service_label_is_bounded(start_service: StartService) -> None:
    """Services past the label cap are counted as ``other``."""
    _, url = start_service(max_service_labels=2)
    for name in ("a", "b", "c", "d"):
        request = logs_request([log_record(exception_attributes())], service=name)
        requests.post(
            f"{url}/v1/logs",
            data=request.SerializeToString(),
            headers=PROTOBUF,
            timeout=5,
        ).raise_for_status()

    result = metric_value(
        url, "healthai_crash_reports_total", {"category": "none", "service": "other"}
    )

    expected = 2.0
    assert expected == result


def test_no_auth_service_accepts_requests_without_token(
    start_service: StartService,
) -> None:
    """With --no-auth explicitly chosen, no token is needed."""
    service, url = start_service(token=None, allow_no_auth=True)
    body = logs_request([log_record(exception_attributes())]).SerializeToString()

    response = requests.post(
        f"{url}/v1/logs",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=5,
    )

    expected = (200, 1)
    assert expected == (response.status_code, len(service.store.list_groups()))


SYMBOLS = """\
MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 libdemo.so
FILE 0 /src/demo/predict.c
FUNC 1000 40 0 predict_risk
1000 40 12 0
"""


def test_native_frames_are_symbolicated_by_the_service(
    start_service: StartService, tmp_path: Path
) -> None:
    """With a symbol store configured, stored samples carry resolved native frames."""
    module_dir = (
        tmp_path / "symbols" / "libdemo.so" / "0123456789ABCDEF0123456789ABCDEF0"
    )
    module_dir.mkdir(parents=True)
    (module_dir / "libdemo.so.sym").write_text(SYMBOLS, encoding="ascii")
    service, url = start_service(symbol_sources=(str(tmp_path / "symbols"),))
    frames = [
        {
            "module": "libdemo.so",
            "debug_id": "0123456789ABCDEF0123456789ABCDEF0",
            "offset": 4100,
        },
        {
            "module": "libgone.so",
            "debug_id": "0123456789ABCDEF0123456789ABCDEF0",
            "offset": 16,
        },
    ]
    attributes = {
        "exception.type": "SIGSEGV",
        "healthai.crash.native_frames": json.dumps(frames),
    }

    post = requests.post(
        f"{url}/v1/logs",
        data=logs_request([log_record(attributes)]).SerializeToString(),
        headers=PROTOBUF,
        timeout=5,
    )
    group = service.store.list_groups()[0]

    expected = [("predict_risk", 12), (None, None)]
    result = [(f["function"], f["line"]) for f in group.sample["native_frames"]]
    assert post.status_code == 200
    assert expected == result
    assert group.basis == "native"


def test_concurrent_clients_lose_no_record(start_service: StartService) -> None:
    """Requests from several threads at once are all counted exactly."""
    service, url = start_service()
    body = logs_request(
        [log_record(exception_attributes()) for _ in range(10)]
    ).SerializeToString()

    def send(_: int) -> int:
        with requests.Session() as session:
            return sum(
                session.post(
                    f"{url}/v1/logs", data=body, headers=PROTOBUF, timeout=10
                ).status_code
                for _ in range(5)
            )

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(send, range(6)))

    expected = ([200 * 5] * 6, [300])
    assert expected == (statuses, [g.count for g in service.store.list_groups()])


def test_store_failure_answers_503_so_the_exporter_retries(
    start_service: StartService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A locked store gives a retryable 503 with Retry-After, then recovers."""
    service, url = start_service()
    body = logs_request([log_record(exception_attributes())]).SerializeToString()

    def locked(*_: object) -> list[str]:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(service.store, "record", locked)
        refused = requests.post(
            f"{url}/v1/logs", data=body, headers=PROTOBUF, timeout=5
        )
    accepted = requests.post(
        f"{service.endpoint}/v1/logs", data=body, headers=PROTOBUF, timeout=5
    )

    expected = (503, "5", 200, 1)
    result = (
        refused.status_code,
        refused.headers.get("Retry-After"),
        accepted.status_code,
        len(service.store.list_groups()),
    )
    assert expected == result


def test_bearer_scheme_is_case_insensitive(start_service: StartService) -> None:
    """``bearer`` and ``Bearer`` are the same scheme; the token itself is exact."""
    _, url = start_service()

    result = [
        requests.get(
            f"{url}/api/groups", headers={"Authorization": value}, timeout=5
        ).status_code
        for value in (f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer {TOKEN.upper()}")
    ]

    expected = [200, 200, 401]
    assert expected == result
