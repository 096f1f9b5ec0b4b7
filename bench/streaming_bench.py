"""Benchmark streamed responses of `faasops up`'s server: time to first byte and to the whole
response, streamed and (same run, as the baseline) buffered as before streaming.

Run: ``.venv/bin/python bench/streaming_bench.py [--runs N] [--gate-s S]``

The function is ``tests/runtime/handlers/chunks``: it writes ``first\\n``, then waits for an
outbound request that a local server answers after ``--gate-s`` seconds, then writes the rest.
Buffered, the first byte can only arrive with the last; streamed, it arrives at once.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test services (testkit)
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

import faasops.runtime.server as server_module  # noqa: E402
from faasops.model import Function, Location  # noqa: E402
from faasops.plugins.componentize import ComponentizePyBuilder  # noqa: E402
from faasops.runtime import ComponentRuntime  # noqa: E402
from faasops.source import snapshot_directory  # noqa: E402
from streaming_support import Gate  # noqa: E402

CACHE = Path.home() / ".cache" / "faasops-tests" / "builds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gate-s", type=float, default=2.0)
    args = parser.parse_args()
    source = ROOT / "tests" / "runtime" / "handlers" / "chunks"
    function = Function(workspace="runtime-tests", name="chunks", source_dir=source, source="handlers/chunks",
                        location=Location("tests/runtime"))
    wasm = ComponentizePyBuilder(CACHE).build(function, snapshot_directory(source)).wasm_path
    runtime = ComponentRuntime(CACHE.parent / "runtime")
    app = runtime.load(wasm, allowed_outbound_hosts=["http://127.0.0.1:*"])
    gate = Gate()
    gate.thread.start()
    streaming_start = server_module._StreamedResponse.start
    try:
        for mode in ("buffered", "streamed"):
            # The baseline: the sink declines every head, so the response is answered whole.
            server_module._StreamedResponse.start = (  # type: ignore[method-assign]
                (lambda self, *a: False) if mode == "buffered" else streaming_start)
            with server_module.RuntimeServer("127.0.0.1", 0, lambda ws, fn: app) as server:
                for run in range(args.runs):
                    gate.released.clear()
                    started = time.perf_counter()
                    threading.Timer(args.gate_s, gate.release).start()
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
                    conn.request("GET", "/bench/chunks/", headers={"x-gate": gate.url + "/gate"})
                    response = conn.getresponse()
                    response.readline()
                    first = time.perf_counter() - started
                    response.read()
                    whole = time.perf_counter() - started
                    conn.close()
                    print(f"{mode:9} run {run}: first byte {first:.3f} s, complete {whole:.3f} s")
    finally:
        server_module._StreamedResponse.start = streaming_start  # type: ignore[method-assign]
        gate.release()
        gate.server.shutdown()
        runtime.close()


if __name__ == "__main__":
    main()
