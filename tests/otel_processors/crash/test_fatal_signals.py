"""Fatal signals are written to the spool and reported exactly once on a later start."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_processors.crash import CrashSpool
from tests.otlp_receiver import OTLPReceiver, attributes_of

from .conftest import AppRun


def _reports(spool: Path, state: str) -> list[str]:
    return sorted(path.name for path in (spool / state).iterdir())


@pytest.mark.parametrize(
    ("scenario", "returncode", "exception_type"),
    [
        ("segv", -11, "SIGSEGV"),
        ("abort", -6, "SIGABRT"),
        ("SIGBUS", -signal.SIGBUS, "SIGBUS"),
        ("SIGFPE", -signal.SIGFPE, "SIGFPE"),
        ("SIGILL", -signal.SIGILL, "SIGILL"),
    ],
)
def test_fatal_signal_is_reported_once_on_the_next_start(
    run_app: Callable[..., AppRun],
    spool_dir: Path,
    scenario: str,
    returncode: int,
    exception_type: str,
) -> None:
    """The crash file of a process killed by a signal becomes one FATAL record."""
    crashed = run_app(scenario)
    first = run_app("start", output="first.jsonl")
    second = run_app("start", output="second.jsonl")

    result = (
        crashed.returncode,
        crashed.records,
        [
            (
                record["severity"],
                record["attributes"]["exception.type"],
                record["attributes"]["healthai.crash.kind"],
                record["attributes"]["healthai.error.code"],
            )
            for record in first.records
        ],
        second.records,
        len(_reports(spool_dir, "completed")),
        _reports(spool_dir, "pending"),
        _reports(spool_dir, "active"),
    )

    expected = (
        returncode,
        [],
        [("FATAL", exception_type, "signal", "HAI-SYS-602")],
        [],
        1,
        [],
        [],
    )
    assert expected == result


def test_segfault_report_groups_on_the_python_stack(
    run_app: Callable[..., AppRun],
) -> None:
    """The report's fingerprint is built from the in-app frames faulthandler wrote."""
    run_app("segv")
    first = run_app("start")

    result = [
        "in crash_now" in record["attributes"]["exception.stacktrace"]
        for record in first.records
    ]

    expected = [True]

    assert expected == result


def test_process_starting_while_another_holds_the_lock_sends_nothing(
    run_app: Callable[..., AppRun], spool_dir: Path
) -> None:
    """While another holder has the spool lock a start sends nothing; later, once."""
    run_app("segv")
    crash_files = _reports(spool_dir, "active")
    with CrashSpool(spool_dir).locked() as held:
        while_held = run_app("start", output="held.jsonl")
        unsent = (
            _reports(spool_dir, "active"),
            _reports(spool_dir, "pending"),
            _reports(spool_dir, "completed"),
        )
    released = run_app("start", output="released.jsonl")

    result = (
        held,
        len(while_held.records),
        unsent,
        [record["attributes"]["exception.type"] for record in released.records],
        len(_reports(spool_dir, "completed")),
    )

    expected = (True, 0, (crash_files, [], []), ["SIGSEGV"], 1)
    assert expected == result


def test_report_stays_pending_while_the_endpoint_is_down_then_is_sent(
    run_app: Callable[..., AppRun], spool_dir: Path
) -> None:
    """With the OTLP endpoint down at start the report is kept, and sent later."""
    run_app("segv")
    with OTLPReceiver() as receiver:
        endpoint = receiver.endpoint
    # The receiver is closed: its port now refuses connections.
    run_app("start", env={"CRASH_APP_OTLP_ENDPOINT": endpoint})
    pending_while_down = len(_reports(spool_dir, "pending"))

    with OTLPReceiver() as receiver:
        run_app("start", env={"CRASH_APP_OTLP_ENDPOINT": receiver.endpoint})
        received = [
            (
                attributes_of(record)["exception.type"],
                attributes_of(record)["healthai.crash.kind"],
            )
            for record in receiver.received.log_records()
        ]

    result = (
        pending_while_down,
        received,
        len(_reports(spool_dir, "pending")),
        len(_reports(spool_dir, "completed")),
    )

    expected = (1, [("SIGSEGV", "signal")], 0, 1)

    assert expected == result


def test_clean_exit_leaves_no_crash_file(
    run_app: Callable[..., AppRun], spool_dir: Path
) -> None:
    """A process that exits normally removes its empty crash file and sidecar."""
    run_app("start")

    result = _reports(spool_dir, "active")

    expected = []

    assert expected == result


def test_unparsable_crash_file_is_still_reported_and_completed(
    run_app: Callable[..., AppRun], spool_dir: Path
) -> None:
    """A truncated crash file becomes a FatalError report instead of staying."""
    run_app("garbage_crash_file")
    first = run_app("start")

    result = (
        [record["attributes"]["exception.type"] for record in first.records],
        _reports(spool_dir, "pending"),
        len(_reports(spool_dir, "completed")),
    )

    expected = (["FatalError"], [], 1)
    assert expected == result
