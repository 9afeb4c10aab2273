"""Each kind of unhandled exception, raised in a real process, becomes one record."""

from __future__ import annotations

import asyncio
import json
import operator
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)

from otel_processors import crash
from otel_processors.crash.fingerprint import FINGERPRINT_VERSION
from otel_processors.crash.hooks import CrashHooks

from .conftest import AppRun

_CRASH_KINDS = [
    ("main", "main_thread", "FATAL"),
    ("thread", "thread", "ERROR"),
    ("asyncio_task", "asyncio_task", "ERROR"),
    ("asyncio_callback", "asyncio_task", "ERROR"),
    ("unraisable", "unraisable", "ERROR"),
    ("executor", "executor", "ERROR"),
]


@pytest.mark.parametrize(("scenario", "kind", "severity"), _CRASH_KINDS)
def test_unhandled_exception_becomes_one_scrubbed_classified_record(
    run_app: Callable[..., AppRun], scenario: str, kind: str, severity: str
) -> None:
    """An unhandled exception of each kind is emitted once, scrubbed and classified."""
    run = run_app(scenario)

    result = [
        (
            record["severity"],
            record["event_name"],
            record["attributes"]["healthai.crash.kind"],
            record["attributes"]["exception.type"],
            record["attributes"]["exception.message"],
            "MRN-4711" in record["attributes"]["exception.stacktrace"],
            record["attributes"]["healthai.error.subcategory"],
            record["attributes"]["healthai.crash.fingerprint_version"],
            len(record["attributes"]["healthai.crash.fingerprint"]),
        )
        for record in run.records
    ]
    expected = [
        (
            severity,
            "exception",
            kind,
            "ValueError",
            "no record for patient <mrn>",
            False,
            "CRASH",
            FINGERPRINT_VERSION,
            32,
        )
    ]
    assert expected == result


def test_crash_record_carries_its_python_frames_scrubbed(
    run_app: Callable[..., AppRun],
) -> None:
    """The frames of a crash are on its record as JSON, source lines scrubbed."""
    run = run_app("main")
    frames = [
        json.loads(record["attributes"]["healthai.crash.frames"])
        for record in run.records
    ]

    result = [
        [
            (
                frame["module"],
                frame["function"],
                frame["filename"].endswith("crash_app.py"),
                isinstance(frame["lineno"], int),
                frame["context_line"],
                frame["in_app"],
            )
            for frame in record_frames
        ]
        for record_frames in frames
    ]

    expected = [
        [
            ("crash_app", "<module>", True, True, "main(sys.argv[1])", True),
            ("crash_app", "main", True, True, 'fail("<mrn>")', True),
            (
                "crash_app",
                "fail",
                True,
                True,
                'raise ValueError(f"no record for patient {value}")',
                True,
            ),
        ]
    ]
    assert expected == result


def test_main_thread_crash_still_calls_the_previous_excepthook(
    run_app: Callable[..., AppRun],
) -> None:
    """The excepthook in place before install runs after the crash is reported."""
    run = run_app("main")

    result = (run.returncode, "previous excepthook called" in run.stderr)

    expected = (1, True)

    assert expected == result


def test_asyncio_crash_still_reaches_the_default_loop_handler(
    run_app: Callable[..., AppRun],
) -> None:
    """With no handler set before, the loop's default handler still logs the error."""
    run = run_app("asyncio_callback")

    result = "Exception in callback" in run.stderr

    assert result is True


def test_running_loop_handler_is_chained_and_restored(
    memory_reporter: tuple[crash.CrashReporter, InMemoryLogRecordExporter],
) -> None:
    """Installed inside a running loop, the loop's own handler is chained, then
    restored by uninstall."""
    reporter, exporter = memory_reporter
    seen: list[str] = []

    def own_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        seen.append(type(context["exception"]).__name__)

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(own_handler)
        hooks = CrashHooks(reporter)
        hooks.install()
        try:
            loop.call_soon(operator.truediv, 1, 0)
            await asyncio.sleep(0.01)
        finally:
            hooks.uninstall()
        return loop.get_exception_handler() is own_handler

    restored = asyncio.run(scenario())

    result = (seen, len(exporter.get_finished_logs()), restored)

    expected = (["ZeroDivisionError"], 1, True)
    assert expected == result


def test_fatal_crash_is_flushed_before_the_process_dies(
    run_app: Callable[..., AppRun],
) -> None:
    """A batched FATAL record is exported by the reporter's bounded flush."""
    run = run_app("main", env={"CRASH_APP_BATCH": "1"})

    result = [record["severity"] for record in run.records]

    assert result == ["FATAL"]


def test_batched_error_waits_for_the_batch(run_app: Callable[..., AppRun]) -> None:
    """A non-fatal record is not force-flushed (control for the test above)."""
    run = run_app("thread", env={"CRASH_APP_BATCH": "1"})

    result = run.records

    assert result == []


def test_release_option_overrides_service_version(
    run_app: Callable[..., AppRun],
) -> None:
    """``release=`` is written as ``service.version`` on the crash record."""
    run = run_app("thread", env={"CRASH_APP_RELEASE": "2026.12.1"})

    result = [record["attributes"]["service.version"] for record in run.records]

    expected = ["2026.12.1"]

    assert expected == result


def test_storm_repeats_are_reported_at_exit(run_app: Callable[..., AppRun]) -> None:
    """50 crashes of one bug: 10 records, then the 40 repeats at interpreter exit."""
    run = run_app("storm")

    result = [
        (record["severity"], record["attributes"].get("healthai.crash.repeats"))
        for record in run.records
    ]

    expected = [("ERROR", None)] * 10 + [("WARN", 40)]
    assert expected == result


@pytest.fixture
def memory_reporter() -> Iterator[
    tuple[crash.CrashReporter, InMemoryLogRecordExporter]
]:
    """A reporter over an in-memory exporter, hooks not installed."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    reporter = crash.CrashReporter(
        logger_provider=provider,
        scrubber=lambda text: text,
        classifier=lambda kind: {"healthai.error.subcategory": "CRASH"},
    )
    yield reporter, exporter
    provider.shutdown()


def test_thread_hook_chains_the_previous_threading_excepthook(
    memory_reporter: tuple[crash.CrashReporter, InMemoryLogRecordExporter],
) -> None:
    """The threading.excepthook in place before install is still called."""
    reporter, exporter = memory_reporter
    seen: list[str] = []
    original = threading.excepthook
    threading.excepthook = lambda args: seen.append(type(args.exc_value).__name__)
    hooks = CrashHooks(reporter)
    hooks.install()
    try:
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
    finally:
        hooks.uninstall()
        restored = threading.excepthook
        threading.excepthook = original

    result = (seen, len(exporter.get_finished_logs()), restored is not original)

    expected = (["ZeroDivisionError"], 1, True)

    assert expected == result


def test_interactive_shell_keeps_its_excepthook(
    memory_reporter: tuple[crash.CrashReporter, InMemoryLogRecordExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``sys.ps1`` set, sys.excepthook is not replaced."""
    reporter, _ = memory_reporter
    import sys

    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    before = sys.excepthook
    hooks = CrashHooks(reporter)
    hooks.install()
    during = sys.excepthook
    hooks.uninstall()

    result = during is before

    assert result is True


def test_shell_started_after_install_only_chains_its_errors(
    memory_reporter: tuple[crash.CrashReporter, InMemoryLogRecordExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once ``sys.ps1`` appears, an error at the prompt is passed on, not reported."""
    reporter, exporter = memory_reporter
    import sys

    passed_on: list[str] = []
    monkeypatch.setattr(
        sys, "excepthook", lambda t, e, tb: passed_on.append(t.__name__)
    )
    hooks = CrashHooks(reporter)
    hooks.install()
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    try:
        raise NameError("undefined_name")
    except NameError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        hooks.uninstall()

    result = (passed_on, len(exporter.get_finished_logs()))

    expected = (["NameError"], 0)
    assert expected == result


def test_uninstall_restores_every_hook(
    memory_reporter: tuple[crash.CrashReporter, InMemoryLogRecordExporter],
) -> None:
    """After uninstall, the three interpreter hooks are the ones from before."""
    import sys

    reporter, _ = memory_reporter
    before = (sys.excepthook, threading.excepthook, sys.unraisablehook)
    hooks = CrashHooks(reporter)
    hooks.install()
    during = (sys.excepthook, threading.excepthook, sys.unraisablehook)
    hooks.uninstall()

    after = (sys.excepthook, threading.excepthook, sys.unraisablehook)

    result = (after, [a is not b for a, b in zip(before, during, strict=True)])

    expected = (before, [True, True, True])
    assert expected == result


def test_uninstall_leaves_a_later_hook_in_place_and_stops_reporting(
    memory_reporter: tuple[crash.CrashReporter, InMemoryLogRecordExporter],
) -> None:
    """A hook installed after ours survives uninstall; ours then only chains."""
    reporter, exporter = memory_reporter
    original = threading.excepthook
    seen: list[str] = []
    threading.excepthook = lambda args: seen.append("before")
    hooks = CrashHooks(reporter)
    hooks.install()
    ours = threading.excepthook

    def later(args: threading.ExceptHookArgs) -> None:
        seen.append("later")
        ours(args)

    threading.excepthook = later
    hooks.uninstall()
    try:
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
        survived = threading.excepthook is later
    finally:
        threading.excepthook = original

    result = (survived, seen, len(exporter.get_finished_logs()))

    expected = (True, ["later", "before"], 0)
    assert expected == result


def _inner_span_ids(stderr: str) -> tuple[int, int]:
    line = next(line for line in stderr.splitlines() if line.startswith("inner span"))
    trace_id, span_id = line.split()[2:4]
    return int(trace_id), int(span_id)


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [("thread_in_span", "thread"), ("main_in_span", "main_thread")],
)
def test_crash_that_escaped_spans_carries_the_innermost_span_context(
    run_app: Callable[..., AppRun], scenario: str, kind: str
) -> None:
    """A crash leaving two spans is emitted in the context of the inner one."""
    run = run_app(scenario)

    result = [
        (r["attributes"]["healthai.crash.kind"], r["trace_id"], r["span_id"])
        for r in run.records
    ]

    expected = [(kind, *_inner_span_ids(run.stderr))]
    assert expected == result


def test_crash_of_another_exception_does_not_borrow_an_earlier_span(
    run_app: Callable[..., AppRun],
) -> None:
    """After a handled error in a span, a different crash carries no trace id."""
    run = run_app("handled_then_thread")

    result = [
        (r["attributes"]["exception.message"], r["trace_id"], r["span_id"])
        for r in run.records
    ]

    expected = [("no record for patient MRN-0042", 0, 0)]
    assert expected == result
