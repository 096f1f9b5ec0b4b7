"""Spin host APIs: ``fermyon:spin/key-value@2`` on SQLite, ``fermyon:spin/variables@2`` and
``wasi:config/store`` (the same variables, as newer SDKs read them).

Key-value follows Spin (factor-key-value): a component may open the store labels its
``key_value_stores`` lists, anything else is ``access-denied``. Every app and label gets its own
namespace inside the shared SQLite file.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from faasops.runtime.host import HOST_API, RequestState, Resource, WitResult

KEY_VALUE = "fermyon:spin/key-value@2"
VARIABLES = "fermyon:spin/variables@2"
CONFIG = "wasi:config/store@0.2.0-draft-2024-09-27"

DEFAULT_STORE = "default"
# Spin's rule for variable names.
_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spin_key_value (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID
"""


def store_namespace(app_namespace: str, label: str) -> str:
    """The namespace of one app's store ``label`` (``default`` keeps the app's own namespace, so
    stores written before labels were told apart keep their keys)."""
    return app_namespace if label == DEFAULT_STORE else f"{app_namespace}#{label}"


class KeyValueDatabase:
    """One app's view (``namespace``) of the key-value SQLite file at ``path``.

    sqlite3 connections can't be shared between threads, and requests run on many threads, so
    each thread opens its own connection on first use.
    """

    def __init__(self, path: Path, namespace: str):
        self.path = Path(path)
        self.namespace = namespace
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection()  # fail at load time, not in the first request, if the file is unusable

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")  # readers don't wait for writers
            conn.execute(_SCHEMA)
            self._local.conn = conn
        return conn

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None."""
        row = self._connection().execute(
            "SELECT value FROM spin_key_value WHERE namespace = ? AND key = ?",
            (self.namespace, key)).fetchone()
        return bytes(row[0]) if row else None

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        self._connection().execute(
            "INSERT INTO spin_key_value (namespace, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            (self.namespace, key, bytes(value)))

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        self._connection().execute(
            "DELETE FROM spin_key_value WHERE namespace = ? AND key = ?", (self.namespace, key))

    def exists(self, key: str) -> bool:
        """Whether ``key`` has a value."""
        return self.get(key) is not None

    def keys(self) -> list[str]:
        """Every key of this namespace, sorted."""
        rows = self._connection().execute(
            "SELECT key FROM spin_key_value WHERE namespace = ? ORDER BY key", (self.namespace,))
        return [row[0] for row in rows]


class KeyValueStore(Resource):
    """``fermyon:spin/key-value.store``: an opened store label."""

    resource = "store"

    def __init__(self, db: KeyValueDatabase):
        self.db = db


def _kv(call: Any) -> WitResult:
    try:
        return ("ok", call())
    except sqlite3.Error as exc:
        return ("err", ("other", f"key-value store: {exc}"))


@HOST_API.func(KEY_VALUE, "[static]store.open")
def _store_open(state: RequestState, label: str) -> WitResult:
    store = (state.key_value or {}).get(label)
    if store is None:  # not in the component's key_value_stores: Spin's `Error::AccessDenied`
        return ("err", "access-denied")
    return ("ok", KeyValueStore(store))


@HOST_API.func(KEY_VALUE, "[method]store.get")
def _store_get(state: RequestState, store: KeyValueStore, key: str) -> WitResult:
    return _kv(lambda: store.db.get(key))


@HOST_API.func(KEY_VALUE, "[method]store.set")
def _store_set(state: RequestState, store: KeyValueStore, key: str, value: bytes) -> WitResult:
    return _kv(lambda: store.db.set(key, value))


@HOST_API.func(KEY_VALUE, "[method]store.delete")
def _store_delete(state: RequestState, store: KeyValueStore, key: str) -> WitResult:
    return _kv(lambda: store.db.delete(key))


@HOST_API.func(KEY_VALUE, "[method]store.exists")
def _store_exists(state: RequestState, store: KeyValueStore, key: str) -> WitResult:
    return _kv(lambda: store.db.exists(key))


@HOST_API.func(KEY_VALUE, "[method]store.get-keys")
def _store_keys(state: RequestState, store: KeyValueStore) -> WitResult:
    return _kv(store.db.keys)


@HOST_API.func(VARIABLES, "get")
def _variable_get(state: RequestState, name: str) -> WitResult:
    if not _VARIABLE_NAME.fullmatch(name):  # fullmatch: `$` lets "x\n" through
        return ("err", ("invalid-name", f"invalid variable name {name!r}: use lower-case "
                                        "letters, digits and underscores, starting with a letter"))
    value = state.variables.get(name)
    if value is None:
        return ("err", ("undefined", f"no variable named {name!r}"))
    return ("ok", value)


@HOST_API.func(CONFIG, "get")
def _config_get(state: RequestState, key: str) -> WitResult:
    return ("ok", state.variables.get(key))


@HOST_API.func(CONFIG, "get-all")
def _config_get_all(state: RequestState) -> WitResult:
    return ("ok", sorted(state.variables.items()))
