"""Benchmark the local component runtime: cold start, warm latency, throughput.

Run: ``/opt/fvenv/bin/python bench/runtime_bench.py [--requests N] [--threads T]``

Uses the test handlers (``tests/runtime/handlers``) and their build cache, so the first run
spends ~10 s building components. Every figure is measured in this process on this machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faasops.model import Function, Location  # noqa: E402
from faasops.plugins.componentize import ComponentizePyBuilder  # noqa: E402
from faasops.runtime import ComponentRuntime, HttpRequest, LoadedApp  # noqa: E402
from faasops.source import snapshot_directory  # noqa: E402
from faasops.runtime.server import RuntimeServer  # noqa: E402


HANDLERS = ROOT / "tests" / "runtime" / "handlers"
CACHE = Path(os.environ.get("FAASOPS_BENCH_CACHE") or Path.home() / ".cache" / "faasops-tests")


def build(name: str) -> Path:
    """Build a test handler with faasops' own builder (content-addressed, shared with the tests)."""
    builder = ComponentizePyBuilder(CACHE / "builds")
    source = HANDLERS / name
    function = Function(workspace="bench", name=name, source_dir=source, source=name, location=Location("bench"))
    return builder.build(function, snapshot_directory(source)).wasm_path


@dataclass
class Row:
    scenario: str
    via: str
    requests: int
    median_ms: float
    p99_ms: float
    rps: float


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _measure(call: Callable[[], None], n: int, threads: int) -> tuple[list[float], float]:
    """Latencies (s) of n calls spread over ``threads`` threads, and the wall time for all."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = n // threads

    def worker() -> None:
        mine = []
        for _ in range(per_thread):
            started = time.perf_counter()
            call()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies, time.perf_counter() - started


def _row(scenario: str, via: str, call: Callable[[], None], n: int, threads: int) -> Row:
    for _ in range(10):  # warm up caches, connections, code paths
        call()
    latencies, wall = _measure(call, n, threads)
    return Row(scenario, via, len(latencies), statistics.median(latencies) * 1000,
               _percentile(latencies, 99) * 1000, len(latencies) / wall)


class _Client:
    """One keep-alive connection per thread, like a load generator."""

    def __init__(self, server: RuntimeServer):
        self.server = server
        self.local = threading.local()

    def call(self, method: str, path: str, body: bytes | None, expect: int) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.server.host, self.server.port)
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200 or len(data) != expect:
            raise RuntimeError(f"unexpected answer {response.status}, {len(data)} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--threads", type=int, default=2, help="client threads for throughput")
    args = parser.parse_args()

    hello_wasm = build("hello")
    echo_wasm = build("echo")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "compiled"
        print("cold start (hello)")
        for label in ("no compiled cache", "compiled cache on disk"):
            runtime = ComponentRuntime(cache)
            started = time.perf_counter()
            app = runtime.load(hello_wasm)
            loaded = time.perf_counter()
            response = app.handle(HttpRequest("GET", "/bench/hello"))
            first = time.perf_counter()
            assert response.status == 200, response
            print(f"  {label:24} load {1000 * (loaded - started):8.1f} ms   first request "
                  f"{1000 * (first - loaded):6.1f} ms   total {1000 * (first - started):8.1f} ms"
                  f"   (compiled: {runtime.compile_count})")
            runtime.close()

    runtime = ComponentRuntime(CACHE / "runtime")
    hello: LoadedApp = runtime.load(hello_wasm)
    echo: LoadedApp = runtime.load(echo_wasm)
    megabyte = bytes(range(256)) * 4096
    hello_request = HttpRequest("GET", "/bench/hello", [("host", "bench")], base_path="/bench/hello")
    echo_request = HttpRequest("POST", "/bench/echo", [("host", "bench")], megabyte,
                               base_path="/bench/echo")

    def direct_hello() -> None:
        assert hello.handle(hello_request).status == 200

    def direct_echo() -> None:
        assert len(echo.handle(echo_request).body) == len(megabyte)

    apps = {("bench", "hello"): hello, ("bench", "echo"): echo}
    n, big_n = args.requests, max(200, args.requests // 2)
    rows: list[Row] = []
    with RuntimeServer("127.0.0.1", 0, lambda ws, fn: apps.get((ws, fn))) as server:
        client = _Client(server)
        scenarios: list[tuple[str, str, Callable[[], None], int]] = [
            ("hello", "LoadedApp.handle", direct_hello, n),
            ("hello", "HTTP server", lambda: client.call("GET", "/bench/hello", None, 21), n),
            ("echo 1 MB", "LoadedApp.handle", direct_echo, big_n),
            ("echo 1 MB", "HTTP server",
             lambda: client.call("POST", "/bench/echo", megabyte, len(megabyte)), big_n),
        ]
        for scenario, via, call, count in scenarios:
            rows.append(_row(scenario, via, call, count, threads=1))
            rows.append(_row(scenario, f"{via} x{args.threads} threads", call, count, args.threads))
    runtime.close()

    print(f"\nwarm requests (fresh instance per request; {args.threads} threads = concurrent clients)")
    print(f"  {'scenario':10} {'via':34} {'n':>5} {'median ms':>10} {'p99 ms':>8} {'req/s':>8}")
    for r in rows:
        print(f"  {r.scenario:10} {r.via:34} {r.requests:5d} {r.median_ms:10.2f} {r.p99_ms:8.2f} "
              f"{r.rps:8.1f}")


if __name__ == "__main__":
    main()
