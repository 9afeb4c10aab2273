"""The crash groups, kept in SQLite.

Schema (``PRAGMA user_version`` holds the version; ``migrate`` applies the
missing steps of ``MIGRATIONS`` in one transaction)::

    crash_groups(group_id PK, fingerprint, fingerprint_version, basis, title,
                 exception_type, first_seen, last_seen, count, records,
                 category, code, status, ticket_key, sample_json)
    group_services(group_id, service)      one row per distinct service
    group_releases(group_id, release)      one row per distinct release

``count`` adds up occurrences (an exception record with
``healthai.crash.repeats`` = n adds 1 + n, a repeats summary adds n);
``records`` counts the records received. A group first seen through a repeats
summary has no sample (``sample_json`` is ``{}``) and its fingerprint as title
until an exception record of it arrives. The store runs in WAL mode with a
busy timeout, and each batch is written in one ``BEGIN IMMEDIATE`` transaction,
so several threads or processes can write to one file: SQLite serialises the
writers and no increment is lost. A resolved group that sees a new crash opens
again (a regression); an ignored one stays ignored.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from exporters.crash_service.grouping import CrashReport

__all__ = [
    "MIGRATIONS",
    "STATUSES",
    "CrashGroup",
    "CrashStore",
    "migrate",
]

_logger = logging.getLogger(__name__)

STATUSES: Final = ("open", "resolved", "ignored")

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: groups, their services and releases.
    """
    CREATE TABLE crash_groups (
        group_id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        fingerprint_version INTEGER NOT NULL,
        basis TEXT NOT NULL,
        title TEXT NOT NULL,
        exception_type TEXT NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        count INTEGER NOT NULL,
        records INTEGER NOT NULL,
        category TEXT,
        code TEXT,
        status TEXT NOT NULL DEFAULT 'open'
            CHECK (status IN ('open', 'resolved', 'ignored')),
        ticket_key TEXT,
        sample_json TEXT NOT NULL
    );
    CREATE INDEX crash_groups_last_seen ON crash_groups (last_seen DESC);
    CREATE INDEX crash_groups_status ON crash_groups (status);
    CREATE TABLE group_services (
        group_id TEXT NOT NULL REFERENCES crash_groups (group_id),
        service TEXT NOT NULL,
        PRIMARY KEY (group_id, service)
    ) WITHOUT ROWID;
    CREATE INDEX group_services_service ON group_services (service);
    CREATE TABLE group_releases (
        group_id TEXT NOT NULL REFERENCES crash_groups (group_id),
        release TEXT NOT NULL,
        PRIMARY KEY (group_id, release)
    ) WITHOUT ROWID;
    """,
)

_BUSY_TIMEOUT_MILLIS: Final = 30_000
_NO_SAMPLE: Final = "{}"
_MAX_LIST_LIMIT: Final = 1000


@dataclass(frozen=True)
class CrashGroup:
    """One crash group as stored."""

    group_id: str
    fingerprint: str
    fingerprint_version: int
    basis: str
    title: str
    exception_type: str
    first_seen: float
    last_seen: float
    count: int
    records: int
    category: str | None
    code: str | None
    status: str
    ticket_key: str | None
    services: tuple[str, ...]
    releases: tuple[str, ...]
    sample: dict[str, Any] = field(repr=False)

    def to_json(self, *, include_sample: bool = False) -> dict[str, Any]:
        """Return the group as a JSON-ready mapping (without the sample by default)."""
        result: dict[str, Any] = {
            "id": self.group_id,
            "fingerprint": self.fingerprint,
            "fingerprint_version": self.fingerprint_version,
            "basis": self.basis,
            "title": self.title,
            "exception_type": self.exception_type,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "records": self.records,
            "category": self.category,
            "code": self.code,
            "status": self.status,
            "ticket_key": self.ticket_key,
            "services": list(self.services),
            "releases": list(self.releases),
        }
        if include_sample:
            result["sample"] = self.sample
        return result


@dataclass
class _Pending:
    """Reports of one group in a batch, added up before they are written."""

    first: CrashReport
    first_seen: float
    last_seen: float
    count: int = 0
    records: int = 0
    services: set[str] = field(default_factory=set)
    releases: set[str] = field(default_factory=set)


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; return that version.

    Raises:
        sqlite3.DatabaseError: the file is newer than this code, or not SQLite.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        current = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if current > len(MIGRATIONS):
            msg = (
                f"crash store schema version {current} is newer than this "
                f"program's {len(MIGRATIONS)}"
            )
            raise sqlite3.DatabaseError(msg)
        for version in range(current, len(MIGRATIONS)):
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            _logger.info("Crash store migrated to schema version %s", version + 1)
        # PRAGMA takes no parameters; the value is an int computed here.
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


class CrashStore:
    """Crash groups in one SQLite file, safe to share between threads.

    Args:
        path: the database file; created with its schema if missing.

    Raises:
        sqlite3.DatabaseError: the file is not a crash store this code can use.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            self._path,
            timeout=_BUSY_TIMEOUT_MILLIS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        self._connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MILLIS}")
        self._connection.execute("PRAGMA journal_mode = WAL")
        self._connection.execute("PRAGMA synchronous = NORMAL")
        self._connection.execute("PRAGMA foreign_keys = ON")
        with self._lock:
            self.schema_version = migrate(self._connection)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()

    def record(self, reports: Iterable[CrashReport]) -> list[str]:
        """Add a batch of reports in one transaction.

        Args:
            reports: the batch.

        Returns:
            The ids of the groups this batch created, in first-seen order.
        """
        pending = _aggregate(reports)
        if not pending:
            return []

        created: list[str] = []
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for group_id, item in pending.items():
                    if _upsert(cursor, group_id, item):
                        created.append(group_id)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return created

    def list_groups(
        self,
        *,
        status: str | None = None,
        service: str | None = None,
        limit: int = 100,
    ) -> list[CrashGroup]:
        """List groups, the most recently seen first.

        Args:
            status: only groups with this status.
            service: only groups seen from this service.
            limit: at most this many (1 to 1000).

        Raises:
            ValueError: unknown status or a limit out of range.
        """
        if status is not None and status not in STATUSES:
            msg = f"status {status!r} is not one of {', '.join(STATUSES)}"
            raise ValueError(msg)
        if not 1 <= limit <= _MAX_LIST_LIMIT:
            msg = f"limit {limit!r} is not between 1 and {_MAX_LIST_LIMIT}"
            raise ValueError(msg)

        query = "SELECT * FROM crash_groups g WHERE 1 = 1"
        params: list[Any] = []
        if status is not None:
            query += " AND g.status = ?"
            params.append(status)
        if service is not None:
            query += (
                " AND EXISTS (SELECT 1 FROM group_services s"
                " WHERE s.group_id = g.group_id AND s.service = ?)"
            )
            params.append(service)
        query += " ORDER BY g.last_seen DESC, g.group_id LIMIT ?"
        params.append(limit)

        with self._lock:
            rows = self._connection.execute(query, params).fetchall()
            return [self._group(row) for row in rows]

    def has_group(self, group_id: str) -> bool:
        """Whether a group exists with a sample (not only repeats summaries)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT 1 FROM crash_groups WHERE group_id = ? AND sample_json != ?",
                (group_id, _NO_SAMPLE),
            ).fetchone()
        return row is not None

    def get_group(self, group_id: str) -> CrashGroup | None:
        """Return one group, or ``None`` when there is no such group."""
        with self._lock:
            row = self._connection.execute(
                "SELECT * FROM crash_groups WHERE group_id = ?", (group_id,)
            ).fetchone()
            return None if row is None else self._group(row)

    def set_status(self, group_id: str, status: str) -> CrashGroup | None:
        """Set a group's status; return the group, or ``None`` if unknown.

        Raises:
            ValueError: unknown status.
        """
        if status not in STATUSES:
            msg = f"status {status!r} is not one of {', '.join(STATUSES)}"
            raise ValueError(msg)
        with self._lock:
            self._connection.execute(
                "UPDATE crash_groups SET status = ? WHERE group_id = ?",
                (status, group_id),
            )
        return self.get_group(group_id)

    def set_ticket_key(self, group_id: str, ticket_key: str | None) -> bool:
        """Link a group to a ticket (or unlink it); return whether it exists."""
        with self._lock:
            cursor = self._connection.execute(
                "UPDATE crash_groups SET ticket_key = ? WHERE group_id = ?",
                (ticket_key, group_id),
            )
            return cursor.rowcount == 1

    def count_by_status(self) -> dict[str, int]:
        """Return the number of groups of each status (zero included)."""
        counts = dict.fromkeys(STATUSES, 0)
        with self._lock:
            rows = self._connection.execute(
                "SELECT status, COUNT(*) FROM crash_groups GROUP BY status"
            ).fetchall()
        for status, count in rows:
            counts[str(status)] = int(count)
        return counts

    def _group(self, row: Sequence[Any]) -> CrashGroup:
        group_id = row[0]
        services = self._connection.execute(
            "SELECT service FROM group_services WHERE group_id = ? ORDER BY service",
            (group_id,),
        ).fetchall()
        releases = self._connection.execute(
            "SELECT release FROM group_releases WHERE group_id = ? ORDER BY release",
            (group_id,),
        ).fetchall()
        return CrashGroup(
            group_id=group_id,
            fingerprint=row[1],
            fingerprint_version=row[2],
            basis=row[3],
            title=row[4],
            exception_type=row[5],
            first_seen=row[6],
            last_seen=row[7],
            count=row[8],
            records=row[9],
            category=row[10],
            code=row[11],
            status=row[12],
            ticket_key=row[13],
            services=tuple(r[0] for r in services),
            releases=tuple(r[0] for r in releases),
            sample=json.loads(row[14]),
        )


def _aggregate(reports: Iterable[CrashReport]) -> dict[str, _Pending]:
    pending: dict[str, _Pending] = {}
    for report in reports:
        item = pending.get(report.group_id)
        if item is None:
            item = _Pending(report, report.seen_at, report.seen_at)
            pending[report.group_id] = item
        elif item.first.summary and not report.summary:
            item.first = report
        item.first_seen = min(item.first_seen, report.seen_at)
        item.last_seen = max(item.last_seen, report.seen_at)
        item.count += report.occurrences
        item.records += 1
        item.services.add(report.service)
        if report.release is not None:
            item.releases.add(report.release)
    return pending


def _upsert(cursor: sqlite3.Cursor, group_id: str, item: _Pending) -> bool:
    """Write one group's batch; return whether the group is new."""
    report = item.first
    title = report.title if report.title is not None else report.exception_type
    if report.summary:
        title = f"Crash {report.fingerprint}"
    sample_json = json.dumps(report.sample, sort_keys=True) if report.sample else None
    cursor.execute(
        "INSERT INTO crash_groups (group_id, fingerprint, fingerprint_version,"
        " basis, title, exception_type, first_seen, last_seen, count, records,"
        " category, code, status, sample_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)"
        " ON CONFLICT (group_id) DO NOTHING",
        (
            group_id,
            report.fingerprint,
            report.fingerprint_version,
            report.basis,
            title,
            report.exception_type,
            item.first_seen,
            item.last_seen,
            item.count,
            item.records,
            report.category,
            report.code,
            sample_json or _NO_SAMPLE,
        ),
    )
    created = cursor.rowcount == 1
    if not created:
        # A group known only from repeats summaries takes its display from
        # the first exception record that carries a sample.
        cursor.execute(
            "UPDATE crash_groups SET count = count + ?, records = records + ?,"
            " first_seen = MIN(first_seen, ?), last_seen = MAX(last_seen, ?),"
            " category = COALESCE(category, ?), code = COALESCE(code, ?),"
            " status = CASE status WHEN 'resolved' THEN 'open' ELSE status END,"
            " title = CASE WHEN sample_json = ? AND ? IS NOT NULL"
            " THEN ? ELSE title END,"
            " exception_type = CASE WHEN sample_json = ? AND ? IS NOT NULL"
            " THEN ? ELSE exception_type END,"
            " sample_json = CASE WHEN sample_json = ? AND ? IS NOT NULL"
            " THEN ? ELSE sample_json END"
            " WHERE group_id = ?",
            (
                item.count,
                item.records,
                item.first_seen,
                item.last_seen,
                report.category,
                report.code,
                _NO_SAMPLE,
                sample_json,
                title,
                _NO_SAMPLE,
                sample_json,
                report.exception_type,
                _NO_SAMPLE,
                sample_json,
                sample_json,
                group_id,
            ),
        )

    cursor.executemany(
        "INSERT OR IGNORE INTO group_services (group_id, service) VALUES (?, ?)",
        [(group_id, service) for service in sorted(item.services)],
    )
    cursor.executemany(
        "INSERT OR IGNORE INTO group_releases (group_id, release) VALUES (?, ?)",
        [(group_id, release) for release in sorted(item.releases)],
    )
    return created
