"""The demo's crash phase: worker threads die, the crash service groups them.

A crash service is started in this process on a loopback port, and the demo's
logger provider gains an OTLP/HTTP log exporter pointed at it, as the
Collector's routing of exception records would do in a deployment. The crash
hooks are installed, then worker threads crash: several with one bug (different
patients, different values) and one with another. The crash service should form
exactly two groups.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from exporters.crash_service import CrashService, CrashServiceSettings
from exporters.demo.service import Patient
from otel_processors import crash
from otel_processors.scrubber import Scrubber

__all__ = ["CrashPhaseSummary", "run_crash_phase"]


@dataclass(frozen=True)
class CrashGroupLine:
    """One crash group as the demo shows it."""

    title: str
    count: int
    fingerprint: str
    code: str | None


@dataclass
class CrashPhaseSummary:
    """What the crash phase produced."""

    crashes: int = 0
    groups: list[CrashGroupLine] = field(default_factory=list)


class _DischargeQueue:
    """The worker's work: summarise discharges for the care team."""

    def summarise(self, patient: Patient, lab_results: dict[str, float]) -> str:
        creatinine = lab_results["creatinine_mg_dl"]
        return f"{patient.mrn}: creatinine {creatinine:.1f}"

    def notify(self, patient: Patient) -> None:
        channel = {"email": patient.email}["pager"]
        print(channel)


def _summarise_worker(index: int) -> None:
    patient = Patient.synthetic(index)
    _DischargeQueue().summarise(patient, {"age_years": 60.0 + index})


def _notify_worker(index: int) -> None:
    _DischargeQueue().notify(Patient.synthetic(index))


def run_crash_phase(
    out: TextIO,
    *,
    logger_provider: LoggerProvider,
    tracer_provider: TracerProvider,
    scrubber: Scrubber,
    same_bug_crashes: int = 4,
) -> CrashPhaseSummary:
    """Crash worker threads and show the groups the crash service formed.

    Args:
        out: where to print.
        logger_provider: the demo's provider; an exporter to the crash
            service is added to it.
        tracer_provider: flushed with the logs after a crash.
        scrubber: the demo's scrubber, used by the crash hooks.
        same_bug_crashes: how many threads die of the same bug.

    Returns:
        The crashes caused and the groups formed.
    """
    out.write(
        f"\n[crash] {same_bug_crashes + 1} worker threads crash, "
        f"{same_bug_crashes} of them with the same bug\n"
    )
    summary = CrashPhaseSummary()
    with tempfile.TemporaryDirectory(prefix="healthai-demo-") as workdir:
        service = CrashService(
            CrashServiceSettings(
                db_path=str(Path(workdir) / "crashes.db"), port=0, allow_no_auth=True
            )
        )
        host, port = service.start()
        out.write(f"  crash service listening on http://{host}:{port}\n")
        try:
            exporter = OTLPLogExporter(endpoint=f"http://{host}:{port}/v1/logs")
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
            # The crash hooks call the hook they replace; here that is one that
            # only counts, so the demo's output stays readable.
            previous_hook = threading.excepthook
            threading.excepthook = _count_quietly
            crash.install(
                logger_provider=logger_provider,
                tracer_provider=tracer_provider,
                scrubber=scrubber,
                spool_dir=Path(workdir) / "spool",
                in_app_prefixes=("exporters.demo",),
            )
            try:
                summary.crashes = _crash_workers(same_bug_crashes)
                logger_provider.force_flush()
            finally:
                crash.uninstall()
                threading.excepthook = previous_hook

            for group in service.store.list_groups():
                summary.groups.append(
                    CrashGroupLine(
                        group.title, group.count, group.fingerprint, group.code
                    )
                )
        finally:
            service.stop()

    for line in summary.groups:
        out.write(
            f"  group {line.fingerprint[:12]}  x{line.count}  {line.code}  "
            f"{line.title}\n"
        )
    return summary


_quiet_crashes = 0


def _count_quietly(args: threading.ExceptHookArgs) -> None:
    global _quiet_crashes
    _quiet_crashes += 1


def _crash_workers(same_bug_crashes: int) -> int:
    threads = [
        threading.Thread(target=_summarise_worker, args=(i,), name=f"summary-{i}")
        for i in range(same_bug_crashes)
    ]
    threads.append(threading.Thread(target=_notify_worker, args=(99,), name="notify"))
    for thread in threads:
        thread.start()
        thread.join()
    return len(threads)
