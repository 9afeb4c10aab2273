"""A spool of crash reports on disk, laid out like Crashpad's database.

::

    <root>/
      spool.lock     flock'ed by the process that collects and sends reports
      active/        crash files of running processes (see ``native``)
      new/           reports being collected from dead processes' files
      pending/       complete reports waiting to be sent
      completed/     sent reports; only the most recent ``keep_completed`` kept

A report is a directory ``<start_ns>-<pid>/`` holding ``crash.txt`` (what
faulthandler wrote) and ``meta.json`` (service name, release, argv[0], start
time). Directories move between states with ``os.rename``, atomic on one
file system. The lock is taken without blocking: when two processes start
together, one collects and sends, the other skips, so a report is never sent
twice; a report leaves ``pending/`` only once its delivery was confirmed.
See https://chromium.googlesource.com/crashpad/crashpad/+/HEAD/doc/overview_design.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

try:
    import fcntl
except ImportError:  # Windows: no flock, so no spool processing
    fcntl = None  # type: ignore[assignment]  # checked before each use

__all__ = ["CrashSpool", "SpoolReport", "default_spool_dir"]

_logger = logging.getLogger(__name__)

CRASH_DIR_ENV: Final = "HEALTHAI_CRASH_DIR"
CRASH_FILE: Final = "crash.txt"
META_FILE: Final = "meta.json"


_UNSAFE_NAME_CHARACTERS: Final = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_LENGTH: Final = 100


def default_spool_dir(service_name: str | None = None) -> Path:
    """Return ``$HEALTHAI_CRASH_DIR``, else a folder of the service in the cache.

    The folder is ``~/.cache/healthai-telemetry/crashes/<service_name>``, the
    name reduced to letters, digits, ``.``, ``_`` and ``-``: services of one
    user do not share a spool, so no service sends another's reports.

    Args:
        service_name: the service's ``service.name``; without it, the
            ``crashes`` folder itself.

    Returns:
        The spool directory (not created here).
    """
    configured = os.environ.get(CRASH_DIR_ENV)
    if configured:
        return Path(configured)
    root = Path.home() / ".cache" / "healthai-telemetry" / "crashes"
    if not service_name:
        return root
    folder = _UNSAFE_NAME_CHARACTERS.sub("_", service_name).strip("._")
    return root / (folder[:_MAX_NAME_LENGTH] or "unknown_service")


@dataclass(frozen=True)
class SpoolReport:
    """A report waiting in ``pending/``.

    Attributes:
        path: its directory.
        text: what faulthandler wrote.
        metadata: the sidecar's content.
        crashed_at_ns: when the crash file was last written.
    """

    path: Path
    text: str
    metadata: dict[str, Any]
    crashed_at_ns: int


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CrashSpool:
    """The spool directory of one service.

    Args:
        root: the directory; created if missing.
        keep_completed: how many sent reports to keep.
        max_pending: reports beyond this many are dropped, oldest first, with
            a warning (a crash loop must not fill the disk).

    Raises:
        ValueError: a bound is not positive.
    """

    def __init__(
        self, root: Path | str, *, keep_completed: int = 50, max_pending: int = 100
    ) -> None:
        if keep_completed <= 0 or max_pending <= 0:
            msg = (
                f"keep_completed and max_pending must be positive, got "
                f"{keep_completed!r} and {max_pending!r}"
            )
            raise ValueError(msg)
        self.root = Path(root)
        self.keep_completed = keep_completed
        self.max_pending = max_pending
        for state in ("active", "new", "pending", "completed"):
            (self.root / state).mkdir(parents=True, exist_ok=True)

    def state_dir(self, state: str) -> Path:
        """Return the directory of a state: active, new, pending or completed."""
        return self.root / state

    def active_paths(self, pid: int, start_ns: int) -> tuple[Path, Path]:
        """Return the crash file and sidecar paths of a running process."""
        stem = f"{start_ns}-{pid}"
        active = self.state_dir("active")
        return active / f"{stem}.txt", active / f"{stem}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the spool lock if no other process does.

        Yields:
            Whether the lock was acquired; when false, do not touch reports.
            Always false where ``fcntl`` is missing (Windows).
        """
        if fcntl is None:
            yield False
            return
        with open(self.root / "spool.lock", "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def collect(self, *, own_pid: int, own_start_ns: int) -> int:
        """Turn dead processes' crash files into pending reports (hold the lock).

        An empty crash file (the process was killed without a fatal error, or
        never crashed) is removed. A file with the caller's pid but another
        start time belongs to an earlier process (pids are reused, e.g. pid 1
        in containers).

        Args:
            own_pid: the caller's pid.
            own_start_ns: the caller's start time.

        Returns:
            The number of new pending reports.
        """
        collected = 0
        for crash_file in sorted(self.state_dir("active").glob("*.txt")):
            start_text, _, pid_text = crash_file.stem.partition("-")
            if not (start_text.isdigit() and pid_text.isdigit()):
                continue
            pid, start_ns = int(pid_text), int(start_text)
            if (pid, start_ns) == (own_pid, own_start_ns):
                continue
            if pid != own_pid and _pid_alive(pid):
                continue
            if self._collect_one(crash_file):
                collected += 1

        for report_dir in sorted(self.state_dir("new").iterdir()):
            if report_dir.is_dir() and not report_dir.name.endswith(".tmp"):
                os.rename(report_dir, self.state_dir("pending") / report_dir.name)
        self._bound_pending()
        return collected

    def _collect_one(self, crash_file: Path) -> bool:
        sidecar = crash_file.with_suffix(".json")
        if crash_file.stat().st_size == 0:
            crash_file.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            return False

        staging = self.state_dir("new") / f"{crash_file.stem}.tmp"
        staging.mkdir(exist_ok=True)
        os.rename(crash_file, staging / CRASH_FILE)
        if sidecar.exists():
            os.rename(sidecar, staging / META_FILE)
        os.rename(staging, self.state_dir("new") / crash_file.stem)
        return True

    def _bound_pending(self) -> None:
        reports = sorted(p for p in self.state_dir("pending").iterdir() if p.is_dir())
        excess = len(reports) - self.max_pending
        if excess > 0:
            _logger.warning(
                "Crash spool %s holds %s pending reports; dropping the %s oldest",
                self.root,
                len(reports),
                excess,
            )
            for report_dir in reports[:excess]:
                shutil.rmtree(report_dir, ignore_errors=True)

    def pending(self) -> list[SpoolReport]:
        """Return the pending reports, oldest first (hold the lock)."""
        reports = []
        for report_dir in sorted(self.state_dir("pending").iterdir()):
            if not report_dir.is_dir():
                continue
            crash_file = report_dir / CRASH_FILE
            meta_file = report_dir / META_FILE
            try:
                text = crash_file.read_text(encoding="utf-8", errors="replace")
                crashed_at_ns = crash_file.stat().st_mtime_ns
                metadata = (
                    json.loads(meta_file.read_text(encoding="utf-8"))
                    if meta_file.exists()
                    else {}
                )
            except (OSError, ValueError) as exc:
                _logger.warning("Unreadable crash report %s: %s", report_dir, exc)
                continue
            reports.append(SpoolReport(report_dir, text, metadata, crashed_at_ns))
        return reports

    def complete(self, report: SpoolReport) -> None:
        """Move a delivered report to ``completed/`` and prune old ones."""
        os.rename(report.path, self.state_dir("completed") / report.path.name)
        completed = sorted(self.state_dir("completed").iterdir())
        for old in completed[: max(0, len(completed) - self.keep_completed)]:
            shutil.rmtree(old, ignore_errors=True)
