"""SQLite and static files, as Spin apps use them.

``/roundtrip`` creates a table in the ``default`` database, inserts one row holding every value
type through parameters, selects it back and answers JSON: the columns and each value's type and
value. ``/count`` adds a row to a table and answers how many there are (persistence).
``/v3`` does the same through ``spin:sqlite/sqlite@3.0.0`` and answers its ``changes`` and
``last_insert_rowid``. ``/denied?db=NAME`` opens NAME and answers what it raised. ``/bad-sql`` answers what a syntax
error raised. ``/file?path=P`` answers the bytes of P from the component's filesystem, or 404
with the exception; ``/list?path=P`` answers the sorted directory listing; ``/write`` tries to
write a file and answers what it raised.
"""

import json
import os
from urllib.parse import parse_qs, urlparse

from spin_sdk import http, sqlite
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite3_api
from spin_sdk.wit.imports.sqlite import Value_Blob, Value_Integer, Value_Null, Value_Real, Value_Text


def caught(exc: Exception) -> str:
    value = getattr(exc, "value", None)
    return f"{type(exc).__name__}({type(value).__name__}: {getattr(value, 'value', '')})"


def shown(value) -> list:
    payload = getattr(value, "value", None)
    if isinstance(payload, bytes):
        payload = payload.hex()
    return [type(value).__name__, payload]


def roundtrip() -> dict:
    with sqlite.open_default() as db:
        db.execute("DROP TABLE IF EXISTS every_type", [])
        db.execute("CREATE TABLE every_type (i INTEGER, r REAL, t TEXT, b BLOB, n TEXT)", [])
        db.execute("INSERT INTO every_type VALUES (?, ?, ?, ?, ?)",
                   [Value_Integer(-9223372036854775808), Value_Real(2.5), Value_Text("héllo ✓"),
                    Value_Blob(b"\x00\xff\x10"), Value_Null()])
        db.execute("INSERT INTO every_type (i, r) VALUES (?, ?)", [Value_Integer(7), Value_Integer(3)])
        result = db.execute("SELECT i, r, t, b, n, typeof(r) AS r_type FROM every_type ORDER BY rowid", [])
        empty = db.execute("SELECT i FROM every_type WHERE i = ?", [Value_Integer(12345)])
        return {"columns": result.columns,
                "rows": [[shown(v) for v in row.values] for row in result.rows],
                "empty": [empty.columns, len(empty.rows)]}


def count() -> int:
    with sqlite.open_default() as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (at INTEGER)", [])
        db.execute("INSERT INTO hits VALUES (1)", [])
        return db.execute("SELECT count(*) FROM hits", []).rows[0].values[0].value


def v3() -> dict:
    with sqlite3_api.Connection.open("default") as db:
        db.execute("CREATE TABLE IF NOT EXISTS v3 (t TEXT)", [])
        db.execute("DELETE FROM v3", [])
        db.execute("INSERT INTO v3 VALUES (?), (?)", [sqlite3_api.Value_Text("a"), sqlite3_api.Value_Text("b")])
        changes, rowid = db.changes(), db.last_insert_rowid()
        rows = db.execute("SELECT t FROM v3 ORDER BY t", []).rows
        return {"changes": changes, "last_insert_rowid": rowid, "rows": [r.values[0].value for r in rows]}


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        url = urlparse(request.uri)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        plain = {"content-type": "text/plain; charset=utf-8"}
        if url.path == "/roundtrip":
            return Response(200, {"content-type": "application/json"}, json.dumps(roundtrip()).encode())
        if url.path == "/v3":
            return Response(200, {"content-type": "application/json"}, json.dumps(v3()).encode())
        if url.path == "/count":
            return Response(200, plain, str(count()).encode())
        if url.path == "/denied":
            try:
                sqlite.open(query["db"])
            except Exception as exc:  # noqa: BLE001 - what Spin raises is the point
                return Response(403, plain, caught(exc).encode())
            return Response(200, plain, b"opened")
        if url.path == "/bad-sql":
            try:
                with sqlite.open_default() as db:
                    db.execute("SELEC nonsense", [])
            except Exception as exc:  # noqa: BLE001
                return Response(400, plain, caught(exc).split(":")[0].encode())
            return Response(200, plain, b"no error")
        if url.path == "/file":
            try:
                with open(query["path"], "rb") as f:
                    return Response(200, {"content-type": "application/octet-stream"}, f.read())
            except OSError as exc:
                return Response(404, plain, type(exc).__name__.encode())
        if url.path == "/list":
            try:
                return Response(200, plain, json.dumps(sorted(os.listdir(query["path"]))).encode())
            except OSError as exc:
                return Response(404, plain, type(exc).__name__.encode())
        if url.path == "/write":
            try:
                with open("/written.txt", "w") as f:
                    f.write("x")
            except OSError as exc:
                return Response(403, plain, type(exc).__name__.encode())
            return Response(200, plain, b"written")
        return Response(404, plain, b"no such route")
