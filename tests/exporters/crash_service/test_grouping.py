"""Tests for exporters.crash_service.grouping: which group a record joins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporters.crash_service.grouping import (
    CrashGrouper,
    InvalidRecordError,
    group_id_for,
    is_exception_record,
)
from exporters.crash_service.otlp import LogEvent
from exporters.symbolication import Symbolicator
from otel_processors.crash.fingerprint import fingerprint_text
from otel_processors.scrubber import Scrubber
from tests.exporters.crash_service.otlp_builders import STACKTRACE

NOW = 1_700_000_000.0


def event(attributes: dict[str, object], *, event_name: str = "") -> LogEvent:
    """A log event from the risk-api service."""
    return LogEvent(
        resource={"service.name": "risk-api", "service.version": "1.4.0"},
        scope_name="tests",
        attributes=attributes,
        body=None,
        event_name=event_name,
        severity_text="ERROR",
        severity_number=17,
        time_unix_nano=0,
        observed_time_unix_nano=0,
    )


def grouper(
    *, symbolicator: Symbolicator | None = None, title_max_chars: int = 200
) -> CrashGrouper:
    """A grouper with the project's scrubber."""
    return CrashGrouper(
        Scrubber(), symbolicator=symbolicator, title_max_chars=title_max_chars
    )


def test_exception_records_are_recognised() -> None:
    """Event name ``exception`` or an ``exception.type`` marks an exception record."""
    result = [
        is_exception_record(event({}, event_name="exception")),
        is_exception_record(event({"exception.type": "KeyError"})),
        is_exception_record(event({"http.route": "/predict"})),
    ]

    expected = [True, True, False]
    assert expected == result


def test_reported_fingerprint_wins() -> None:
    """The fingerprint the process computed is used as is, with its version."""
    attributes = {
        "exception.type": "ValueError",
        "exception.stacktrace": STACKTRACE,
        "healthai.crash.fingerprint": "f" * 32,
        "healthai.crash.fingerprint_version": 7,
    }

    result = grouper().report(event(attributes), now=NOW)

    expected = (group_id_for("f" * 32, 7), "reported", 7)
    assert expected == (result.group_id, result.basis, result.fingerprint_version)


def test_stacktrace_is_fingerprinted_when_no_fingerprint_was_reported() -> None:
    """Without a reported fingerprint the stack text decides the group."""
    attributes = {"exception.type": "ValueError", "exception.stacktrace": STACKTRACE}

    result = grouper().report(event(attributes), now=NOW)

    expected = fingerprint_text(STACKTRACE).value
    assert expected == result.fingerprint
    assert result.basis == "frames"


def test_message_groups_ignore_numbers_when_there_is_no_stack() -> None:
    """Type plus normalised message groups messages differing only in numbers."""
    first = grouper().report(
        event({"exception.type": "TimeoutError", "exception.message": "after 30 s"}),
        now=NOW,
    )
    second = grouper().report(
        event({"exception.type": "TimeoutError", "exception.message": "after 45 s"}),
        now=NOW,
    )

    expected = (first.group_id, "message")
    assert expected == (second.group_id, second.basis)


def test_message_group_matches_the_in_process_fingerprint() -> None:
    """A frameless crash hashes as otel_processors.crash.fingerprint does."""
    text = "ValueError: feature 7 out of range"
    in_process = fingerprint_text(text)

    result = grouper().report(
        event(
            {
                "exception.type": "ValueError",
                "exception.message": "feature 7 out of range",
            }
        ),
        now=NOW,
    )

    assert in_process.basis == "message"
    assert in_process.value == result.fingerprint


def test_title_is_scrubbed_and_truncated() -> None:
    """The title keeps type and first message line, scrubbed, within the limit."""
    message = "no admission for MRN 12345678, e-mail jane.roe@example.org " + "x" * 200

    result = grouper(title_max_chars=60).report(
        event({"exception.type": "KeyError", "exception.message": message}), now=NOW
    )

    expected = "KeyError: no admission for MRN [REDACTED:MRN], e-mail [REDA…"
    assert expected == result.title


@pytest.mark.parametrize(
    ("attributes", "match"),
    [
        ({"healthai.crash.repeats": 2}, "no exception.type"),
        ({"exception.type": "E", "healthai.crash.repeats": 0}, "positive integer"),
        ({"exception.type": "E", "healthai.crash.repeats": "x"}, "positive integer"),
        ({"exception.type": "E", "healthai.crash.fingerprint": "a/b"}, "fingerprint"),
        (
            {
                "exception.type": "E",
                "healthai.crash.fingerprint": "a" * 32,
                "healthai.crash.fingerprint_version": "v2",
            },
            "not a version number",
        ),
        ({"exception.type": "E", "healthai.crash.native_frames": "[1]"}, r"\[0\]"),
        ({"exception.type": "E", "healthai.crash.native_frames": "{"}, "JSON list"),
    ],
    ids=[
        "no-type",
        "zero-repeats",
        "text-repeats",
        "unsafe-fingerprint",
        "bad-version",
        "bad-frame",
        "bad-frames-json",
    ],
)
def test_malformed_exception_record_is_invalid(
    attributes: dict[str, object], match: str
) -> None:
    """Malformed crash attributes reject the record with a reason."""
    with pytest.raises(InvalidRecordError, match=match):
        grouper().report(event(attributes, event_name="exception"), now=NOW)


SYMBOLS = """\
MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 libdemo.so
FILE 0 /src/demo/predict.c
FUNC 1000 40 0 predict_risk
1000 40 12 0
"""


def test_native_frames_are_symbolicated_into_the_sample(tmp_path: Path) -> None:
    """Native frames are resolved from the symbol store and group by function."""
    module_dir = tmp_path / "libdemo.so" / "0123456789ABCDEF0123456789ABCDEF0"
    module_dir.mkdir(parents=True)
    (module_dir / "libdemo.so.sym").write_text(SYMBOLS, encoding="ascii")
    symbolicator = Symbolicator([str(tmp_path)])

    def native_crash(offset: str) -> dict[str, object]:
        frame = {
            "module": "libdemo.so",
            "debug_id": "0123456789ABCDEF0123456789ABCDEF0",
            "offset": offset,
        }
        return {
            "exception.type": "SIGSEGV",
            "healthai.crash.native_frames": json.dumps([frame]),
        }

    first = grouper(symbolicator=symbolicator).report(
        event(native_crash("0x1004")), now=NOW
    )
    second = grouper(symbolicator=symbolicator).report(
        event(native_crash("0x1020")), now=NOW
    )

    expected = {
        "module": "libdemo.so",
        "debug_id": "0123456789ABCDEF0123456789ABCDEF0",
        "offset": "0x1004",
        "function": "predict_risk",
        "file": "/src/demo/predict.c",
        "line": 12,
    }
    assert [expected] == first.sample["native_frames"]
    assert (first.group_id, "native") == (second.group_id, second.basis)
