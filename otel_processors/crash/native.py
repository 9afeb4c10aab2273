"""Capture fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) to a crash file.

A fatal signal runs no Python code: ``faulthandler`` can only write the
stacks to a file descriptor, and ``atexit`` does not run. Each process
therefore writes to its own file in the spool's ``active/`` directory, named
after its start time and pid, beside a JSON sidecar (service name, release,
argv[0], start time). A clean exit removes the still-empty file; a leftover,
non-empty file is turned into a report by the next process that starts (see
``spool``).
"""

from __future__ import annotations

import atexit
import faulthandler
import json
import logging
import os
import sys
import time
from typing import IO, Any

from otel_processors.crash.spool import CrashSpool

__all__ = ["FatalSignalCapture"]

_logger = logging.getLogger(__name__)


class FatalSignalCapture:
    """Point ``faulthandler`` at this process's crash file.

    Args:
        spool: the spool whose ``active/`` directory receives the file.
        service_name: written to the sidecar.
        release: written to the sidecar.
        start_ns: the process's start time (default: now).
    """

    def __init__(
        self,
        spool: CrashSpool,
        *,
        service_name: str,
        release: str | None,
        start_ns: int | None = None,
    ) -> None:
        self.spool = spool
        self.service_name = service_name
        self.release = release
        self.pid = os.getpid()
        self.start_ns = start_ns or time.time_ns()
        self.crash_file, self.sidecar = spool.active_paths(self.pid, self.start_ns)
        self._handle: IO[str] | None = None
        self._faulthandler_was_enabled = False

    def enable(self) -> None:
        """Write the sidecar, open the crash file and enable faulthandler on it."""
        if self._handle is not None:
            return
        metadata: dict[str, Any] = {
            "service_name": self.service_name,
            "release": self.release,
            "argv0": sys.argv[0] if sys.argv else "",
            "pid": self.pid,
            "start_ns": self.start_ns,
            "python": sys.version.split()[0],
        }
        self.sidecar.write_text(json.dumps(metadata), encoding="utf-8")

        self._faulthandler_was_enabled = faulthandler.is_enabled()
        self._handle = open(self.crash_file, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the process's life
        faulthandler.enable(file=self._handle, all_threads=True)
        atexit.register(self.disable)

    def disable(self) -> None:
        """Stop capturing; remove the crash file if nothing was written to it."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        atexit.unregister(self.disable)

        faulthandler.disable()
        if self._faulthandler_was_enabled and sys.stderr is not None:
            try:
                faulthandler.enable(file=sys.stderr, all_threads=True)
            except (ValueError, OSError, AttributeError):
                _logger.debug("Could not re-enable faulthandler on stderr")
        handle.close()

        if self.crash_file.exists() and self.crash_file.stat().st_size == 0:
            self.crash_file.unlink(missing_ok=True)
            self.sidecar.unlink(missing_ok=True)
