"""Spin's SQLite host API in the local runtime, against a real component using spin_sdk.sqlite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from faasops.runtime import HttpRequest, LoadedApp

AppFactory = Callable[..., LoadedApp]
pytestmark = pytest.mark.slow


def get(app: LoadedApp, path: str):
    return app.handle(HttpRequest("GET", path))


def test_every_value_type_round_trips_through_parameters_as_spin_returns_it(app: AppFactory, tmp_path: Path) -> None:
    sqlite_app = app("sqlite_files", sqlite_databases=["default"], sqlite_dir=tmp_path)

    response = get(sqlite_app, "/roundtrip")

    assert response.status == 200, response.error
    result = json.loads(response.body)
    assert result["columns"] == ["i", "r", "t", "b", "n", "r_type"]
    assert result["rows"] == [
        [["Value_Integer", -9223372036854775808], ["Value_Real", 2.5], ["Value_Text", "héllo ✓"],
         ["Value_Blob", "00ff10"], ["Value_Null", None], ["Value_Text", "real"]],
        # An integer bound to a REAL column comes back real (SQLite's affinity, as under Spin).
        [["Value_Integer", 7], ["Value_Real", 3.0], ["Value_Null", None], ["Value_Null", None],
         ["Value_Null", None], ["Value_Text", "real"]],
    ]
    assert result["empty"] == [["i"], 0]  # no rows: the columns still come back


def test_the_default_database_is_a_file_that_persists_across_requests(app: AppFactory, tmp_path: Path) -> None:
    sqlite_app = app("sqlite_files", sqlite_databases=["default"], sqlite_dir=tmp_path)

    assert [get(sqlite_app, "/count").body for _ in range(3)] == [b"1", b"2", b"3"]
    with sqlite3.connect(tmp_path / "default.db") as db:
        assert db.execute("SELECT count(*) FROM hits").fetchone() == (3,)


@pytest.mark.parametrize("declared, label", [((), "default"), (("default",), "analytics")])
def test_an_undeclared_database_is_access_denied_and_the_handler_can_catch_it(
        app: AppFactory, tmp_path: Path, declared: tuple[str, ...], label: str) -> None:
    sqlite_app = app("sqlite_files", sqlite_databases=declared, sqlite_dir=tmp_path)

    response = get(sqlite_app, f"/denied?db={label}")

    assert (response.status, response.body) == (403, b"Err(Error_AccessDenied: )")
    assert not (tmp_path / f"{label}.db").exists()


def test_a_declared_label_other_than_default_is_its_own_file(app: AppFactory, tmp_path: Path) -> None:
    sqlite_app = app("sqlite_files", sqlite_databases=["default", "analytics"], sqlite_dir=tmp_path)

    assert get(sqlite_app, "/denied?db=analytics").body == b"opened"
    assert (tmp_path / "analytics.db").is_file()


def test_an_sql_error_is_an_io_error_the_handler_can_catch(app: AppFactory, tmp_path: Path) -> None:
    sqlite_app = app("sqlite_files", sqlite_databases=["default"], sqlite_dir=tmp_path)

    response = get(sqlite_app, "/bad-sql")

    assert (response.status, response.body) == (400, b"Err(Error_Io")


def test_the_sqlite_3_interface_reports_changes_and_the_last_rowid(app: AppFactory, tmp_path: Path) -> None:
    sqlite_app = app("sqlite_files", sqlite_databases=["default"], sqlite_dir=tmp_path)

    response = get(sqlite_app, "/v3")

    assert response.status == 200, response.error
    assert json.loads(response.body) == {"changes": 2, "last_insert_rowid": 2, "rows": ["a", "b"]}
