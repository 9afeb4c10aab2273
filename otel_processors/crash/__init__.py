"""Crash capture: unhandled exceptions and fatal signals as grouped, scrubbed logs.

``install()`` turns it on; ``uninstall()`` restores the previous hooks. Each
crash becomes one OpenTelemetry log record (event ``exception``) carrying the
taxonomy classification, a fingerprint that groups repeats of one bug, and the
trace context. See docs/crashes.md.
"""

from __future__ import annotations

from otel_processors.crash.executor import ReportingThreadPoolExecutor, report_future
from otel_processors.crash.fingerprint import (
    FINGERPRINT_VERSION,
    Fingerprint,
    Frame,
    InAppPolicy,
    ParsedException,
    TracebackNotFoundError,
    fingerprint_exception,
    fingerprint_parsed,
    fingerprint_text,
    normalise_message,
    parse_traceback,
)
from otel_processors.crash.lifecycle import (
    install,
    installed_reporter,
    send_spooled_reports,
    uninstall,
    wait_for_spooled_reports,
)
from otel_processors.crash.ratelimit import FingerprintRateLimiter
from otel_processors.crash.report import CRASH_KINDS, CrashReporter, CrashStats
from otel_processors.crash.spool import CrashSpool, default_spool_dir

__all__ = [
    "CRASH_KINDS",
    "FINGERPRINT_VERSION",
    "CrashReporter",
    "CrashSpool",
    "CrashStats",
    "Fingerprint",
    "FingerprintRateLimiter",
    "Frame",
    "InAppPolicy",
    "ParsedException",
    "ReportingThreadPoolExecutor",
    "TracebackNotFoundError",
    "default_spool_dir",
    "fingerprint_exception",
    "fingerprint_parsed",
    "fingerprint_text",
    "install",
    "installed_reporter",
    "normalise_message",
    "parse_traceback",
    "report_future",
    "send_spooled_reports",
    "uninstall",
    "wait_for_spooled_reports",
]
