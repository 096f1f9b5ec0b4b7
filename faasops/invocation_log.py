"""The local backend's invocation log: one row per request served by the local runtime.

``faasops logs`` and ``faasops metrics`` read it; ``faasops up`` and ``faasops invoke`` write it.
SQLite in WAL mode, so a ``logs --follow`` in another process reads while the server writes.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasops.runtime.messages import InvocationRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, workspace TEXT NOT NULL,
    function TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    duration_s REAL NOT NULL, cpu_s REAL NOT NULL, stdout TEXT NOT NULL, stderr TEXT NOT NULL,
    error TEXT);
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (workspace, function, time);
"""


@dataclass(frozen=True)
class LogEntry(InvocationRecord):
    """An :class:`InvocationRecord` as stored, with its row id (ids grow with time)."""

    id: int = 0

    @property
    def function_id(self) -> str:
        return f"{self.workspace}.{self.function}"


@dataclass(frozen=True)
class MetricPoint:
    """One time bucket of a function's invocations."""

    start: float
    requests: int
    errors: int
    cpu_s: float
    duration_p50_s: float
    duration_p99_s: float


class InvocationLog:
    def __init__(self, path: Path):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def record(self, inv: InvocationRecord) -> None:
        with self._lock:
            self._db().execute(
                "INSERT INTO invocations (time, workspace, function, method, path, status, duration_s, "
                "cpu_s, stdout, stderr, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (inv.time, inv.workspace, inv.function, inv.method, inv.path, inv.status,
                 inv.duration_s, inv.cpu_s, inv.stdout, inv.stderr, inv.error),
            )

    def entries(self, workspace: str, function: str | None = None, limit: int = 50,
                after_id: int | None = None, since: float | None = None) -> list[LogEntry]:
        """Newest first; with ``after_id``, only newer entries, oldest first (for following)."""
        if not self.path.exists():
            return []
        clauses, args = ["workspace = ?"], [workspace]
        if function:
            clauses.append("function = ?")
            args.append(function)
        if since is not None:
            clauses.append("time >= ?")
            args.append(since)
        order = "DESC"
        if after_id is not None:
            clauses.append("id > ?")
            args.append(after_id)
            order = "ASC"
        sql = (f"SELECT time, workspace, function, method, path, status, duration_s, cpu_s, stdout, "
               f"stderr, error, id FROM invocations WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT ?")
        with self._lock:
            rows = self._db().execute(sql, (*args, limit)).fetchall()
        return [LogEntry(*row) for row in rows]

    def metrics(self, workspace: str, function: str, since: float, until: float, step_s: float) -> list[MetricPoint]:
        """Per-``step_s`` buckets from ``since`` to ``until`` (empty buckets included)."""
        rows: list[Any] = []
        if self.path.exists():
            with self._lock:
                rows = self._db().execute(
                    "SELECT time, status, duration_s, cpu_s FROM invocations "
                    "WHERE workspace = ? AND function = ? AND time >= ? AND time < ? ORDER BY time",
                    (workspace, function, since, until),
                ).fetchall()
        buckets: dict[int, list[Any]] = {}
        for row in rows:
            buckets.setdefault(int((row[0] - since) // step_s), []).append(row)
        points = []
        for index in range(max(1, int((until - since + step_s - 1e-9) // step_s))):
            items = buckets.get(index, [])
            durations = sorted(r[2] for r in items)
            points.append(MetricPoint(
                start=since + index * step_s,
                requests=len(items),
                errors=sum(1 for r in items if r[1] >= 500),
                cpu_s=sum(r[3] for r in items),
                duration_p50_s=_quantile(durations, 0.5),
                duration_p99_s=_quantile(durations, 0.99),
            ))
        return points

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
