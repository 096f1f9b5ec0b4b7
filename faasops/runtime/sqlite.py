"""Spin's SQLite host API (``fermyon:spin/sqlite@2``, and ``spin:sqlite/sqlite@3``) on local files.

Semantics follow Spin's factor-sqlite and sqlite-inproc crates:

* ``open(label)`` → ``access-denied`` unless the component declares ``label`` in its
  ``sqlite_databases``; a declared label opens a new connection to that label's database;
* ``execute(statement, parameters)`` prepares exactly one statement, binds the parameters
  positionally (``integer`` → INTEGER, ``real`` → REAL, ``text`` → TEXT, ``blob`` → BLOB,
  ``null`` → NULL) and returns every row, each value as SQLite stored it (so an INTEGER column
  gives ``integer``, a REAL ``real``, NULL ``null``); every SQLite error is ``io(<message>)``;
* connections are in autocommit mode (an explicit ``BEGIN`` … ``COMMIT`` works), ``ATTACH`` of a
  file is refused, results above 128 MiB and more than 256 open connections are ``io`` errors.

Where a label lives is runtime configuration in Spin; locally every declared label is the file
``<directory>/<label>.db`` (see :class:`SqliteDatabases`), created on first use.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Sequence

from faasops.runtime.host import HOST_API, RequestState, Resource, WitResult

SQLITE_V2 = "fermyon:spin/sqlite@2"
SQLITE_V3 = "spin:sqlite/sqlite@3"
DEFAULT_DATABASE = "default"
MAX_RESULT_BYTES = 128 << 20
"""Spin's ``MAX_HOST_BUFFERED_BYTES``: a query result larger than this is an ``io`` error."""
MAX_CONNECTIONS = 256
"""Spin's resource table size: connections one request may hold open at once."""
# sqlite3 authorizer action code and answer (the module exports them; named here for reading).
_ATTACH = sqlite3.SQLITE_ATTACH
_DENY = sqlite3.SQLITE_DENY
_OK = sqlite3.SQLITE_OK
# Rough per-value cost, like Spin's `memory_size` (the size of the value enum plus its heap).
_VALUE_SIZE = 32


class SqliteDatabases:
    """The SQLite databases one app may open: its declared labels, each a file in ``directory``."""

    def __init__(self, labels: Sequence[str], directory: Path):
        self.labels = frozenset(labels)
        self.directory = Path(directory)

    def path(self, label: str) -> Path:
        """The file backing ``label`` (labels are kebab- or snake-case: safe as file names)."""
        return self.directory / f"{label}.db"

    def connect(self, label: str) -> sqlite3.Connection:
        """A new autocommit connection to ``label``'s database, refusing ``ATTACH`` of files."""
        self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path(label), timeout=10, isolation_level=None,
                               check_same_thread=False)
        conn.set_authorizer(_refuse_attach_file)
        return conn


def _refuse_attach_file(action: int, arg1: str | None, *_: Any) -> int:
    # sqlite-inproc: `allow_attach_file` defaults to false; attaching "" or ":memory:" is fine.
    if action == _ATTACH and arg1 not in (None, "", ":memory:"):
        return _DENY
    return _OK


class Connection(Resource):
    """``connection``: an open database of the request."""

    resource = "connection"

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn


def _to_python(value: tuple[str, Any]) -> Any:
    tag, payload = value
    if tag == "blob":
        return bytes(payload)
    return None if tag == "null" else payload


def _to_wit(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, int):
        return ("integer", value)
    if isinstance(value, float):
        return ("real", value)
    if isinstance(value, str):
        return ("text", value)
    return ("blob", bytes(value))


def _size(value: Any) -> int:
    return _VALUE_SIZE + (len(value) if isinstance(value, (str, bytes)) else 0)


def _open(state: RequestState, database: str) -> WitResult:
    databases: SqliteDatabases | None = state.sqlite
    if databases is None or database not in databases.labels:
        return ("err", "access-denied")
    if sum(isinstance(r, Connection) for r in state.resources.values()) >= MAX_CONNECTIONS:
        return ("err", ("io", "too many connections opened"))
    try:
        return ("ok", Connection(databases.connect(database)))
    except (sqlite3.Error, OSError) as exc:
        return ("err", ("io", str(exc)))


def _execute(state: RequestState, connection: Connection, statement: str,
             parameters: list[tuple[str, Any]]) -> WitResult:
    try:
        cursor = connection.conn.execute(statement, [_to_python(p) for p in parameters])
        columns = [d[0] for d in cursor.description or ()]
        rows = []
        size = 0
        for row in cursor:
            size += sum(_size(v) for v in row)
            if size > MAX_RESULT_BYTES:
                return ("err", ("io", f"query result exceeds limit of {MAX_RESULT_BYTES} bytes"))
            rows.append({"values": [_to_wit(v) for v in row]})
    except (sqlite3.Error, sqlite3.Warning, OverflowError, UnicodeDecodeError) as exc:
        # rusqlite's messages differ in wording; the case (io) is Spin's.
        return ("err", ("io", str(exc)))
    return ("ok", {"columns": columns, "rows": rows})


for _interface in (SQLITE_V2, SQLITE_V3):
    HOST_API.func(_interface, "[static]connection.open")(_open)
    HOST_API.func(_interface, "[method]connection.execute")(_execute)


@HOST_API.func(SQLITE_V3, "[method]connection.changes")
def _changes(state: RequestState, connection: Connection) -> int:
    return connection.conn.execute("SELECT changes()").fetchone()[0]


@HOST_API.func(SQLITE_V3, "[method]connection.last-insert-rowid")
def _last_insert_rowid(state: RequestState, connection: Connection) -> int:
    return connection.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
