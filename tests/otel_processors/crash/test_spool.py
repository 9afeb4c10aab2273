"""The crash spool on disk: collection, claiming and bounds."""

from __future__ import annotations

import os
from pathlib import Path

from otel_processors.crash import CrashSpool

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
