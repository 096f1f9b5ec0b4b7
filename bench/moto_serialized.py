"""``moto_server`` fit for a 10,000-function apply:
``python bench/moto_serialized.py -H HOST -p PORT [--stock-rollback]``.

Two changes to moto 5.2's DynamoDB, neither visible to a client that doesn't race or fail:

* **One request at a time.** ``TransactWriteItems`` deep-copies every table it touches (its
  rollback copy) while other request threads keep writing to them; under apply's parallel task
  writes that copy fails with ``RuntimeError: dictionary changed size during iteration`` and the
  transaction answers 500. Serialising requests removes the race. It costs next to nothing:
  moto is CPU-bound Python, so its request threads never ran in parallel anyway.
* **Item-level rollback copies** (unless ``--stock-rollback``). That rollback copy is of the
  *whole table*, once per item of the transaction: faasops' record transaction (record, serial,
  lock check) copies the table three times, and the table also holds the task history (14 items
  per function applied), so an apply of N functions costs O(N²) in moto — ~2.5 s per record at
  1,000 functions. Real DynamoDB's cost per transaction does not depend on the table's size.
  Here the transaction copies only the items it touches and restores those on cancellation,
  which is the same outcome.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class Serialized:
    """A WSGI middleware running one request (including its response body) at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()


def install_item_level_rollback() -> None:
    """Make ``TransactWriteItems`` copy (and, on cancellation, restore) only the items it touches."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    stock = models.DynamoDBBackend.transact_write_items

    class NoTableCopies:
        """Stands in for the ``copy`` module inside moto's DynamoDB backend: tables aren't copied."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def slot(table: Table, op_type: str, op: dict[str, Any]) -> tuple[Any, Any]:
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return hash_value, range_value

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None or op_type not in ("Put", "Update", "Delete"):
                continue
            hash_value, range_value = slot(table, op_type, op)
            saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        models.copy = NoTableCopies  # type: ignore[assignment]
        try:
            stock(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if table.get_item(hash_value, range_value) is not None:
                    table.delete_item(hash_value, range_value)
                if item is not None:
                    if range_value is not None:
                        table.items[hash_value][range_value] = item
                    else:
                        table.items[hash_value] = item
            raise
        finally:
            models.copy = copy

    models.DynamoDBBackend.transact_write_items = transact_write_items


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--stock-rollback", action="store_true",
                        help="keep moto's whole-table rollback copies (O(table size) per transaction)")
    args = parser.parse_args(argv)
    if not args.stock_rollback:
        install_item_level_rollback()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server sets it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
