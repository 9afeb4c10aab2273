"""The crash spool on disk: collection, claiming and bounds."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource

from otel_processors import crash
from otel_processors.crash import CrashSpool
from tests.otlp_receiver import OTLPReceiver

_DEAD_PID = 4_194_304 + 1  # above Linux's pid_max: never a live process


def _leave_crash_file(spool: CrashSpool, pid: int, start_ns: int, text: str) -> None:
    crash_file, sidecar = spool.active_paths(pid, start_ns)
    crash_file.write_text(text, encoding="utf-8")
    sidecar.write_text('{"release": "1"}', encoding="utf-8")


def test_collect_keeps_live_files_and_drops_empty_ones(tmp_path: Path) -> None:
    """Only non-empty files of dead processes become pending reports."""
    spool = CrashSpool(tmp_path)
    _leave_crash_file(spool, _DEAD_PID, 10, "Fatal Python error: Aborted\n")
    _leave_crash_file(spool, _DEAD_PID, 11, "")
    _leave_crash_file(spool, os.getppid(), 12, "")

    collected = spool.collect(own_pid=os.getpid(), own_start_ns=13)

    result = (
        collected,
        [report.path.name for report in spool.pending()],
        sorted(path.name for path in spool.state_dir("active").iterdir()),
    )
    expected = (
        1,
        [f"10-{_DEAD_PID}"],
        [f"12-{os.getppid()}.json", f"12-{os.getppid()}.txt"],
    )
    assert expected == result


def test_earlier_process_with_our_pid_counts_as_dead(tmp_path: Path) -> None:
    """A file with our pid but another start time (pid reuse) is collected."""
    spool = CrashSpool(tmp_path)
    _leave_crash_file(spool, os.getpid(), 5, "Fatal Python error: Aborted\n")

    result = spool.collect(own_pid=os.getpid(), own_start_ns=6)

    assert result == 1


def test_completed_reports_are_bounded(tmp_path: Path) -> None:
    """Completing 60 reports keeps the 50 most recent."""
    spool = CrashSpool(tmp_path, keep_completed=50)
    for start_ns in range(1_000, 1_060):
        _leave_crash_file(spool, _DEAD_PID, start_ns, "Fatal Python error: Aborted\n")
    spool.collect(own_pid=os.getpid(), own_start_ns=1)
    for report in spool.pending():
        spool.complete(report)

    completed = sorted(path.name for path in spool.state_dir("completed").iterdir())

    result = (len(completed), completed[0])
    expected = (50, f"1010-{_DEAD_PID}")
    assert expected == result


def test_lock_is_exclusive_between_holders(tmp_path: Path) -> None:
    """While one holder has the lock, a second attempt is refused at once."""
    spool = CrashSpool(tmp_path)
    with spool.locked() as first, CrashSpool(tmp_path).locked() as second:
        result = (first, second)

    expected = (True, False)
    assert expected == result


class _CountingOTLPLogExporter(OTLPLogExporter):
    """The OTLP/HTTP exporter, counting its export calls."""

    calls = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.calls += 1
        return super().export(batch)


def test_install_does_not_wait_for_spooled_reports_to_a_dead_endpoint(
    tmp_path: Path,
) -> None:
    """Install returns at once; the sender stops at the first failure, all kept."""
    spool = CrashSpool(tmp_path)
    for start_ns in (10, 11, 12):
        _leave_crash_file(spool, _DEAD_PID, start_ns, "Fatal Python error: Aborted\n")
    with OTLPReceiver() as closed:
        endpoint = f"{closed.endpoint}/v1/logs"
    # The receiver is closed: its port now refuses connections.
    exporter = _CountingOTLPLogExporter(endpoint=endpoint, timeout=1)

    started = time.monotonic()
    crash.install(
        logger_provider=LoggerProvider(shutdown_on_exit=False),
        spool_dir=tmp_path,
        spool_exporter=exporter,
        scrubber=str,
    )
    install_seconds = time.monotonic() - started
    try:
        finished = crash.wait_for_spooled_reports(timeout_seconds=10)
    finally:
        crash.uninstall()

    result = (
        install_seconds < 0.5,
        finished,
        exporter.calls,
        len(spool.pending()),
        list(spool.state_dir("completed").iterdir()),
    )

    expected = (True, True, 1, 3, [])
    assert expected == result


def test_default_spool_is_a_folder_per_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without HEALTHAI_CRASH_DIR, each service name gets its own, safe folder."""
    monkeypatch.delenv("HEALTHAI_CRASH_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    crashes = tmp_path / ".cache" / "healthai-telemetry" / "crashes"

    result = [
        crash.default_spool_dir(name)
        for name in ("readmission-risk", "../billing api/v2", "..", None)
    ]

    expected = [
        crashes / "readmission-risk",
        crashes / "billing_api_v2",
        crashes / "unknown_service",
        crashes,
    ]
    assert expected == result


def test_install_writes_its_crash_file_in_the_spool_of_its_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash file and sidecar of a running service sit in its own folder."""
    monkeypatch.delenv("HEALTHAI_CRASH_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "risk", "service.version": "4.2"}),
        shutdown_on_exit=False,
    )
    crash.install(logger_provider=provider, scrubber=str)
    try:
        active = crash.default_spool_dir("risk") / "active"
        sidecars = [json.loads(path.read_text()) for path in active.glob("*.json")]
    finally:
        crash.uninstall()

    result = [(meta["service_name"], meta["release"]) for meta in sidecars]

    expected = [("risk", "4.2")]
    assert expected == result


def _spool_with_report_of(tmp_path: Path, service_name: str, release: str) -> Path:
    spool = CrashSpool(tmp_path)
    crash_file, sidecar = spool.active_paths(_DEAD_PID, 10)
    crash_file.write_text("Fatal Python error: Aborted\n", encoding="utf-8")
    sidecar.write_text(
        json.dumps({"service_name": service_name, "release": release, "pid": 7}),
        encoding="utf-8",
    )
    return tmp_path


def _reporter_of_another_service(
    exporter: InMemoryLogRecordExporter,
) -> crash.CrashReporter:
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "risk", "service.version": "1.0"}),
        shutdown_on_exit=False,
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return crash.CrashReporter(logger_provider=provider, scrubber=str, release="1.0")


def test_spooled_report_is_sent_as_the_service_and_release_that_crashed(
    tmp_path: Path,
) -> None:
    """Through the spool exporter, the record's resource is the crashed service's."""
    spool = CrashSpool(_spool_with_report_of(tmp_path, "billing", "3.1"))
    sent = InMemoryLogRecordExporter()
    reporter = _reporter_of_another_service(InMemoryLogRecordExporter())

    delivered = crash.send_spooled_reports(spool, reporter, spool_exporter=sent)

    result = [
        (
            delivered,
            item.resource.attributes["service.name"],
            item.resource.attributes["service.version"],
            (item.log_record.attributes or {})["service.version"],
        )
        for item in sent.get_finished_logs()
    ]

    expected = [(1, "billing", "3.1", "3.1")]
    assert expected == result


def test_spooled_report_without_spool_exporter_names_the_crashed_service(
    tmp_path: Path,
) -> None:
    """Through the reporter's provider, the record's attributes name the service."""
    spool = CrashSpool(_spool_with_report_of(tmp_path, "billing", "3.1"))
    sent = InMemoryLogRecordExporter()
    reporter = _reporter_of_another_service(sent)

    crash.send_spooled_reports(spool, reporter)

    result = [
        (
            (item.log_record.attributes or {})["service.name"],
            (item.log_record.attributes or {})["service.version"],
        )
        for item in sent.get_finished_logs()
    ]

    expected = [("billing", "3.1")]
    assert expected == result
