"""Tests for exporters.crash_service.store on real SQLite files."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from exporters.crash_service.grouping import CrashReport, group_id_for
from exporters.crash_service.store import MIGRATIONS, CrashStore


def report(
    fingerprint: str = "a" * 32,
    *,
    seen_at: float = 1000.0,
    service: str = "risk-api",
    release: str | None = "1.4.0",
    occurrences: int = 1,
) -> CrashReport:
    """A report of one occurrence of the group ``fingerprint``."""
    return CrashReport(
        group_id=group_id_for(fingerprint, 1),
        fingerprint=fingerprint,
        fingerprint_version=1,
        basis="frames",
        title="ValueError: feature out of range",
        exception_type="ValueError",
        service=service,
        release=release,
        category="DATA_ERROR",
        code="DATA_RANGE",
        seen_at=seen_at,
        occurrences=occurrences,
        sample={"attributes": {"exception.type": "ValueError"}},
    )


def test_batch_adds_counts_repeats_and_sets(tmp_path: Path) -> None:
    """Reports of one group add up; services and releases are kept as sets."""
    store = CrashStore(tmp_path / "crashes.db")
    batch = [
        report(seen_at=1000.0),
        report(seen_at=990.0, service="triage-api", occurrences=4),
        report(seen_at=1010.0, release="1.5.0"),
    ]

    created = store.record(batch)
    group = store.get_group(batch[0].group_id)
    store.close()

    assert [batch[0].group_id] == created
    assert group is not None
    expected = (6, 3, 990.0, 1010.0, ("risk-api", "triage-api"), ("1.4.0", "1.5.0"))
    result = (
        group.count,
        group.records,
        group.first_seen,
        group.last_seen,
        group.services,
        group.releases,
    )
    assert expected == result


def test_second_batch_updates_without_creating(tmp_path: Path) -> None:
    """A group seen again is updated, not created again."""
    store = CrashStore(tmp_path / "crashes.db")
    store.record([report()])

    created = store.record([report(seen_at=2000.0, occurrences=2)])
    group = store.get_group(report().group_id)
    store.close()

    expected = ([], 3, 2000.0)
    assert group is not None
    assert expected == (created, group.count, group.last_seen)


def test_summary_first_makes_a_group_that_a_later_record_describes(
    tmp_path: Path,
) -> None:
    """A group known from a repeats summary takes title and sample from a crash."""
    store = CrashStore(tmp_path / "crashes.db")
    summary = dataclasses.replace(
        report(), title=None, exception_type="", sample=None, summary=True
    )
    store.record([summary])
    described_before = store.has_group(summary.group_id)

    store.record([report(seen_at=2000.0)])
    group = store.get_group(summary.group_id)
    store.close()

    assert group is not None
    expected = (False, 2, "ValueError: feature out of range", "ValueError", True)
    result = (
        described_before,
        group.count,
        group.title,
        group.exception_type,
        bool(group.sample),
    )
    assert expected == result


def test_groups_survive_reopening_the_file(tmp_path: Path) -> None:
    """Closing and reopening the store loses no group, status or count."""
    path = tmp_path / "crashes.db"
    store = CrashStore(path)
    store.record([report("a" * 32), report("b" * 32, occurrences=7)])
    store.set_status(report("a" * 32).group_id, "resolved")
    store.close()

    reopened = CrashStore(path)
    result = sorted(
        (g.fingerprint[:1], g.count, g.status) for g in reopened.list_groups()
    )
    reopened.close()

    expected = [("a", 1, "resolved"), ("b", 7, "open")]
    assert expected == result


def test_resolved_group_reopens_on_a_new_crash(tmp_path: Path) -> None:
    """A regression reopens a resolved group; an ignored one stays ignored."""
    store = CrashStore(tmp_path / "crashes.db")
    store.record([report("a" * 32), report("b" * 32)])
    store.set_status(report("a" * 32).group_id, "resolved")
    store.set_status(report("b" * 32).group_id, "ignored")

    store.record([report("a" * 32), report("b" * 32)])
    result = store.count_by_status()
    store.close()

    expected = {"open": 1, "resolved": 0, "ignored": 1}
    assert expected == result


def test_list_filters_by_status_and_service_newest_first(tmp_path: Path) -> None:
    """Listing filters by status and service and sorts by last_seen, newest first."""
    store = CrashStore(tmp_path / "crashes.db")
    store.record(
        [
            report("a" * 32, seen_at=10.0),
            report("b" * 32, seen_at=30.0),
            report("c" * 32, seen_at=20.0, service="triage-api"),
            report("d" * 32, seen_at=40.0),
        ]
    )
    store.set_status(report("d" * 32).group_id, "ignored")

    result = [
        g.fingerprint[:1] for g in store.list_groups(status="open", service="risk-api")
    ]
    store.close()

    expected = ["b", "a"]
    assert expected == result


def test_list_rejects_unknown_status(tmp_path: Path) -> None:
    """An unknown status is a ValueError naming the allowed ones."""
    store = CrashStore(tmp_path / "crashes.db")

    with pytest.raises(ValueError, match="open, resolved, ignored"):
        store.list_groups(status="closed")
    store.close()


def test_ticket_key_is_kept(tmp_path: Path) -> None:
    """The Jira bridge can link a group to a ticket."""
    store = CrashStore(tmp_path / "crashes.db")
    store.record([report()])

    linked = store.set_ticket_key(report().group_id, "CRASH-12")
    group = store.get_group(report().group_id)
    store.close()

    expected = "CRASH-12"
    assert linked
    assert group is not None
    assert expected == group.ticket_key


def test_schema_version_is_recorded_and_wal_is_on(tmp_path: Path) -> None:
    """A new file gets the latest schema version and WAL journaling."""
    path = tmp_path / "crashes.db"
    CrashStore(path).close()

    connection = sqlite3.connect(path)
    result = (
        connection.execute("PRAGMA user_version").fetchone()[0],
        connection.execute("PRAGMA journal_mode").fetchone()[0],
    )
    connection.close()

    assert (len(MIGRATIONS), "wal") == result


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer version of the service is not touched."""
    path = tmp_path / "crashes.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    connection.close()

    with pytest.raises(sqlite3.DatabaseError, match="newer than this program"):
        CrashStore(path)


_WRITERS = 4
_BATCHES = 25
_BATCH_SIZE = 8


def _write_batches(path: str, writer: int) -> None:
    store = CrashStore(path)
    for batch in range(_BATCHES):
        store.record(
            [
                dataclasses.replace(
                    report(f"{(batch + i) % 5:032x}", service=f"svc-{writer}"),
                    seen_at=float(batch),
                )
                for i in range(_BATCH_SIZE)
            ]
        )
    store.close()


def test_concurrent_processes_lose_no_increment(tmp_path: Path) -> None:
    """Several processes writing one file at once leave exact totals."""
    path = str(tmp_path / "crashes.db")
    CrashStore(path).close()
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_batches, args=(path, writer))
        for writer in range(_WRITERS)
    ]

    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    store = CrashStore(path)
    groups = store.list_groups()
    store.close()

    expected_total = _WRITERS * _BATCHES * _BATCH_SIZE
    expected_services = tuple(f"svc-{w}" for w in range(_WRITERS))
    assert all(process.exitcode == 0 for process in processes)
    assert len(groups) == 5
    assert expected_total == sum(g.count for g in groups)
    assert all(g.services == expected_services for g in groups)
