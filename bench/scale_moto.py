"""``moto_server`` fit for 10,000 functions: ``python bench/scale_moto.py -H HOST -p PORT [--stock]``.

What changes, against moto 5.2's own server (none of it is visible to a client, which gets the
same answers):

* **One request at a time** (always). ``TransactWriteItems`` deep-copies every table it touches
  (its rollback copy) while other request threads keep writing to them; under apply's parallel
  task writes that copy fails with ``RuntimeError: dictionary changed size during iteration``
  and the transaction answers 500. Serialising requests removes the race. It costs next to
  nothing: moto is CPU-bound Python, so its request threads never ran in parallel anyway.

Unless ``--stock``, four costs of moto that real DynamoDB does not have are taken out (the
last two: :func:`install_direct_string_values`, :func:`install_partition_queries`):

* **Item-level transaction rollback.** That rollback copy is of the *whole table*, once per
  item of the transaction: faasops' record transaction (record, serial, lock check) copies the
  table three times, and the table also holds the task history (14 items per function
  applied), so an apply of N functions costs O(N²) in moto. Here a transaction copies only the
  items it touches and restores those if it is cancelled — the same outcome.
* **Query answers serialised as JSON directly.** moto 5.2 turns every response into its wire
  form through a generic, model-driven serializer: ~0.7 ms per item, most of the 8 s a
  10,000-function plan spent reading its state. ``json.dumps`` of the same result gives the
  same body (results holding binary attributes still go through the serializer).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


BUSY_PATH = "/__bench/busy"


class Serialized:
    """A WSGI middleware running one request (including its response body) at a time, and
    keeping moto's busy time: ``GET /__bench/busy`` answers ``{"seconds": S, "requests": N,
    "by_target": {…}}`` — the time spent inside moto (requests run one at a time, so this is
    how long moto itself held them up) — and ``POST`` to it resets the counters."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()
        self.busy_s = 0.0
        self.requests = 0
        self.by_target: dict[str, list[float]] = {}  # X-Amz-Target or "s3" → [requests, seconds]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == BUSY_PATH:
            return self._busy(environ, start_response)
        with self.lock:
            started = time.perf_counter()
            result = self.app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
                spent = time.perf_counter() - started
                target = (environ.get("HTTP_X_AMZ_TARGET") or "s3").rpartition(".")[2]
                entry = self.by_target.setdefault(target, [0, 0.0])
                entry[0] += 1
                entry[1] += spent
                self.busy_s += spent
                self.requests += 1

    def _busy(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            if environ.get("REQUEST_METHOD") == "POST":
                self.busy_s, self.requests, self.by_target = 0.0, 0, {}
            body = json.dumps({"seconds": self.busy_s, "requests": self.requests,
                               "by_target": {k: {"requests": v[0], "seconds": v[1]} for k, v in self.by_target.items()}})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]


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


def install_json_query_responses() -> None:
    """Answer ``Query`` with ``json.dumps`` of moto's result instead of its generic serializer."""
    from moto.dynamodb.responses import DynamoHandler

    stock = DynamoHandler.query

    def query(self: Any) -> Any:
        result = stock(self)
        try:
            return json.dumps(result.result)
        except TypeError:  # raw bytes of binary attributes: the serializer base64-encodes them
            return result

    DynamoHandler.query = query


def install_direct_string_values() -> None:
    """Compare string attribute values (and give string and binary ones their ``cast_value``)
    without moto's five type tests: every key comparison of a Query page goes through it (moto sorts the whole table,
    then the partition, for each page), ~5 million calls to read a 10,000-function state. The
    value returned is the one moto returns for these types."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    stock = DynamoType.cast_value.fget

    def cast_value(self: Any) -> Any:
        if self.type == "S" or self.type == "B":
            return self.value
        return stock(self)

    stock_eq, stock_lt = DynamoType.__eq__, DynamoType.__lt__

    def eq(self: Any, other: Any) -> bool:
        if self.type == "S" and other.type == "S":
            return self.value == other.value
        return stock_eq(self, other)

    def lt(self: Any, other: Any) -> bool:
        if self.type == "S" and other.type == "S":
            return self.value < other.value
        return stock_lt(self, other)

    DynamoType.cast_value = property(cast_value)  # type: ignore[assignment]
    DynamoType.__eq__ = eq  # type: ignore[method-assign]
    DynamoType.__lt__ = lt  # type: ignore[method-assign]


def install_partition_queries() -> None:
    """Let a ``Query`` on the table's own key read its partition from where the page starts,
    the way DynamoDB seeks, instead of moto's walk over the whole table for each page: moto 5.2
    sorts every item of the table (the task history included), keeps those of the partition,
    sorts them again, compares each with the ``ExclusiveStartKey`` until it reaches the page's
    start, and deep-copies the page. Here, for that one call, the table's item list is the
    partition's items after the start key (moto's own filter, sort and start-key check then
    find the same items in the same order), and a page without a projection is not copied
    before it is serialised (filter expressions only read the items)."""
    import moto.dynamodb.models.table as table_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    stock = Table.query

    class NoResultCopies:
        """Stands in for the ``copy`` module inside moto's table module during one query."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # Called as query(hash_key, range_comparison, range_objs, limit, exclusive_start_key,
        # scan_index_forward, projection_expressions, index_name, consistent_read, filter_expression).
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr or len(args) < 5:
            return stock(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        start, forward = args[3], args[4]
        if start and self.range_key_attr in start:
            after = DynamoType(start[self.range_key_attr])
            partition = [i for i in partition if (after < i.range_key if forward else i.range_key < after)]
        projection = args[5] if len(args) > 5 else kwargs.get("projection_expressions")
        other_filters = set(kwargs) - {"hash_key_conditions", "range_key_conditions", "index_name",
                                       "consistent_read", "filter_expression", "projection_expressions"}
        self.all_items = lambda: partition  # an instance attribute, shadowing the method
        # A filter expression only reads the items; a projection makes new ones from them.
        if not (projection or other_filters):
            table_module.copy = NoResultCopies  # type: ignore[assignment]
        try:
            return stock(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items
            table_module.copy = copy

    Table.query = query  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--stock", action="store_true",
                        help="keep moto's whole-table rollback copies, Query serializer and whole-table Query walks")
    args = parser.parse_args(argv)
    if not args.stock:
        install_item_level_rollback()
        install_json_query_responses()
        install_direct_string_values()
        install_partition_queries()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server sets it
    # Exit at once: tearing down 10,000 functions' worth of moto objects takes minutes.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
