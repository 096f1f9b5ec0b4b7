"""Benchmark: what hostile load costs a running ``faasops up`` (issue 13, item 9).

Run: ``.venv/bin/python bench/up_limits_bench.py``

Applies a three-function project (``hello``, ``busy`` that loops forever, ``limits`` whose
``/bomb`` allocates until it fails; the test handlers of ``tests/runtime/handlers``), serves it
with the default limits, and reports

* the latency of ``hello`` alone, and while 34 looping requests hit ``busy`` (the per-function
  concurrency limit of 8 answers the rest 503 after the 1 s queue wait);
* the server's RSS (``/proc/PID/status``) around 4 concurrent memory bombs (256 MiB each by
  default);
* the server's RSS after a 400 MB POST and a 400 MB chunked POST (413 from the 10 MiB limit).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from cli_support import run_faasops  # noqa: E402
from up_support import running_up  # noqa: E402

HANDLERS = REPO / "tests" / "runtime" / "handlers"
MANIFEST = """\
apiVersion: faasops/v1
project: up-limits-bench
workspaces:
  - name: demo
    functions:
      - {name: hello, source: functions/hello}
      - {name: busy, source: functions/busy}
      - {name: limits, source: functions/limits}
"""


def get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    return status, time.perf_counter() - started


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def in_parallel(count: int, url: str) -> tuple[list[threading.Thread], list[tuple[int, float]]]:
    results: list[tuple[int, float]] = []
    threads = [threading.Thread(target=lambda: results.append(get(url))) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def post_400_mb(url: str, chunked: bool) -> bytes:
    host, port = url.split("//")[1].split(":")
    block = b"x" * (1 << 20)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {400 << 20}"
        sock.sendall(f"POST /demo/hello/ HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
        try:
            for _ in range(400):
                sock.sendall(b"100000\r\n" + block + b"\r\n" if chunked else block)
        except OSError:
            pass  # the server stopped reading: the answer is already there
        return sock.recv(64).split(b"\r\n", 1)[0]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="up-limits-bench-")) / "project"
    for name in ("hello", "busy", "limits"):
        shutil.copytree(HANDLERS / name, root / "functions" / name)
    (root / "faas.yaml").write_text(MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    with running_up(root, "--no-apply") as up:
        pid = up.process.pid
        alone = [get(up.url + "/demo/hello/")[1] for _ in range(20)]
        print(f"hello alone: median {statistics.median(alone) * 1000:.1f} ms; server RSS {rss_mb(pid):.0f} MB")

        threads, looping = in_parallel(34, up.url + "/demo/busy/spin")
        time.sleep(2.5)
        during = [get(up.url + "/demo/hello/") for _ in range(10)]
        for thread in threads:
            thread.join()
        statuses = [status for status, _ in looping]
        print(f"34 looping requests to busy: {statuses.count(503)} × 503, {statuses.count(500)} × 500 (time limit)")
        print(f"hello meanwhile: statuses {sorted({s for s, _ in during})}, median "
              f"{statistics.median(d for _, d in during) * 1000:.1f} ms, max {max(d for _, d in during) * 1000:.1f} ms")

        before, peak = rss_mb(pid), 0.0
        threads, bombs = in_parallel(4, up.url + "/demo/limits/bomb")
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, rss_mb(pid))
            time.sleep(0.02)
        print(f"4 memory bombs: statuses {[s for s, _ in bombs]}; RSS {before:.0f} MB before, "
              f"{peak:.0f} MB peak, {rss_mb(pid):.0f} MB after")

        before = rss_mb(pid)
        for chunked in (False, True):
            answer = post_400_mb(up.url, chunked)
            print(f"400 MB {'chunked ' if chunked else ''}POST: {answer.decode()}; RSS {before:.0f} MB before, "
                  f"{rss_mb(pid):.0f} MB after")


if __name__ == "__main__":
    main()
