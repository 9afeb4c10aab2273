"""A small service that crashes on demand, for the crash capture tests.

Run as ``python crash_app.py SCENARIO``. It sets up a real OpenTelemetry
LoggerProvider whose records go to a JSON-lines file (``CRASH_APP_OUTPUT``), or
over OTLP/HTTP to ``CRASH_APP_OTLP_ENDPOINT`` when that is set, installs crash
reporting on the spool ``CRASH_APP_SPOOL``, then runs the scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from otel_processors import crash


class JsonLinesLogRecordExporter(LogRecordExporter):
    """Append each record as one JSON line to a file."""

    def __init__(self, path: str) -> None:
        self._path = path

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        with open(self._path, "a", encoding="utf-8") as handle:
            for item in batch:
                record = item.log_record
                line = {
                    "severity": record.severity_text,
                    "event_name": record.event_name,
                    "body": record.body,
                    "trace_id": record.trace_id,
                    "span_id": record.span_id,
                    "attributes": dict(record.attributes or {}),
                    "resource": dict(item.resource.attributes),
                    "pid": os.getpid(),
                }
                handle.write(json.dumps(line) + "\n")
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _scrub(text: str) -> str:
    return text.replace("MRN-4711", "<mrn>")


def setup(tracer_provider: TracerProvider | None = None) -> crash.CrashReporter:
    endpoint = os.environ.get("CRASH_APP_OTLP_ENDPOINT")
    exporter: LogRecordExporter
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (
            OTLPLogExporter,
        )

        exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=1)
    else:
        exporter = JsonLinesLogRecordExporter(os.environ["CRASH_APP_OUTPUT"])

    resource = Resource.create({"service.name": "crash-app", "service.version": "1"})
    if os.environ.get("CRASH_APP_BATCH"):
        # Nothing but the crash reporter's own flush sends this batch: the
        # delay is a minute and the provider is not shut down at exit.
        provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000)
        )
    else:
        provider = LoggerProvider(resource=resource)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return crash.install(
        logger_provider=provider,
        tracer_provider=tracer_provider,
        scrubber=_scrub,
        spool_dir=os.environ["CRASH_APP_SPOOL"],
        in_app_prefixes=["crash_app"],
        release=os.environ.get("CRASH_APP_RELEASE"),
        spool_exporter=exporter if endpoint else None,
    )


def fail(value: str) -> None:
    raise ValueError(f"no record for patient {value}")


def crash_now() -> None:
    ctypes.string_at(0)


class Leaky:
    def __del__(self) -> None:
        fail("MRN-4711")


async def _task_never_awaited() -> None:
    task = asyncio.get_running_loop().create_task(_failing_task())
    await asyncio.sleep(0.01)
    del task
    gc.collect()
    await asyncio.sleep(0)


async def _failing_task() -> None:
    fail("MRN-4711")


async def _failing_callback() -> None:
    asyncio.get_running_loop().call_soon(fail, "MRN-4711")
    await asyncio.sleep(0.01)


def _fail_in_spans(tracer: Tracer) -> None:
    with (
        tracer.start_as_current_span("predict"),
        tracer.start_as_current_span("score") as inner,
    ):
        context = inner.get_span_context()
        print(
            f"inner span {context.trace_id} {context.span_id}",
            file=sys.stderr,
            flush=True,
        )
        fail("MRN-4711")


def _handled_then_fail(tracer: Tracer) -> None:
    # A handled error in a span, then another crash outside any span: the
    # crash must not borrow the earlier span's context.
    with contextlib.suppress(ValueError):
        _fail_in_spans(tracer)
    fail("MRN-0042")


def _in_span(scenario: str) -> None:
    tracer_provider = TracerProvider()
    setup(tracer_provider)
    tracer = tracer_provider.get_tracer("crash_app")
    if scenario == "thread_in_span":
        worker = threading.Thread(target=_fail_in_spans, args=(tracer,))
        worker.start()
        worker.join()
        crash.uninstall()
        return
    if scenario == "handled_then_thread":
        worker = threading.Thread(target=_handled_then_fail, args=(tracer,))
        worker.start()
        worker.join()
        crash.uninstall()
        return
    _fail_in_spans(tracer)


def main(scenario: str) -> None:
    if scenario in ("thread_in_span", "main_in_span", "handled_then_thread"):
        _in_span(scenario)
        return
    if scenario == "garbage_crash_file":
        # Written without installing: this process's own sender would send it.
        spool = crash.CrashSpool(os.environ["CRASH_APP_SPOOL"])
        crash_file, _ = spool.active_paths(999_999_999, 1)
        crash_file.write_text("\x00\x00 truncated", encoding="utf-8")
        return
    if scenario == "main":

        def previous_hook(*args: object) -> None:
            print("previous excepthook called", file=sys.stderr)

        sys.excepthook = previous_hook
    setup()

    if scenario == "main":
        fail("MRN-4711")
    elif scenario == "thread":
        worker = threading.Thread(target=fail, args=("MRN-4711",))
        worker.start()
        worker.join()
    elif scenario == "asyncio_task":
        asyncio.run(_task_never_awaited())
    elif scenario == "asyncio_callback":
        asyncio.run(_failing_callback())
    elif scenario == "unraisable":
        Leaky()
        gc.collect()
    elif scenario == "executor":
        with crash.ReportingThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(fail, "MRN-4711")
    elif scenario == "segv":
        crash_now()
    elif scenario == "abort":
        os.abort()
    elif scenario.startswith("SIG"):
        os.kill(os.getpid(), signal.Signals[scenario])
    elif scenario == "storm":
        for _ in range(50):
            worker = threading.Thread(target=fail, args=("MRN-4711",))
            worker.start()
            worker.join()
        return
    elif scenario == "start":
        time.sleep(float(os.environ.get("CRASH_APP_SLEEP", "0")))
    crash.uninstall()


if __name__ == "__main__":
    main(sys.argv[1])
