"""Benchmark: how soon a running ``faasops up`` serves what ``faasops apply`` deployed (issue 18,
item 3), with the local deploy step compiling the component into the runtime cache
(``precompile: true``, the default) against the same run without it (``precompile: false``: `up`
compiles after the swap, as before).

Run: ``.venv/bin/python bench/swap_bench.py [--rounds 3]``

One ``faasops up --no-apply`` serves the hello example from a private runtime cache. Each round
edits the handler to a version never served before in this run (so neither the cache on disk nor
`up`'s memory holds it compiled), applies, and polls ``GET /demo/hello/`` every 10 ms from the
moment apply returns until the new text answers. Reported per mode: how long apply ran (with
precompile it includes the compile), how long after apply returned the new version answered,
the duration of the first request that reached it, and `up`'s swap line (its load time, or the
compile it had to do). A last round per mode adds a new function (its own source) and measures
the same for it. The versions are the same in every run and builds go to
``$FAASOPS_BUILD_CACHE`` (default ``~/.cache/faasops-bench/builds``), so a rerun builds nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from cli_support import run_faasops  # noqa: E402
from up_support import UpProcess, running_up  # noqa: E402

ORIGINAL = "Hello from Blue FaaS!"
MANIFEST = """\
apiVersion: faasops/v1
project: swap-bench
backend: local
providers:
  deployer: {{type: local, precompile: {precompile}}}
workspaces:
  - name: demo
    functions:
      - {{name: hello, source: functions/hello}}
{extra}"""


def get(url: str) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            body, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, body, time.perf_counter() - started


def write_manifest(root: Path, precompile: bool, extras: list[str]) -> None:
    extra = "".join(f"      - {{name: {name}, source: functions/{name}}}\n" for name in extras)
    (root / "faas.yaml").write_text(MANIFEST.format(precompile=str(precompile).lower(), extra=extra))


def empty_cache(cache: Path) -> None:
    for path in cache.glob("*.cwasm"):
        path.unlink()


def swap_line(up: UpProcess, address: str, seen: int) -> tuple[str, int]:
    """The first swap line of ``address`` after the ``seen`` first lines of the log."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        lines = up.log().splitlines()
        for index in range(seen, len(lines)):
            if lines[index].startswith(("Swapped ", "Added ")) and f" {address} " in lines[index]:
                return lines[index], index + 1
        time.sleep(0.05)
    raise AssertionError(f"no swap line for {address}:\n{up.log()}")


def measure(root: Path, cache: Path, up: UpProcess, path: str, expect: bytes, seen: int) -> tuple[dict[str, float | str], int]:
    """Apply, then poll ``path`` until it answers ``expect``; the figures of that round."""
    empty_cache(cache)
    started = time.perf_counter()
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    returned = time.perf_counter()
    assert applied.code == 0, applied.output
    while True:
        status, body, duration = get(up.url + path)
        if status == 200 and body == expect:
            break
        if time.perf_counter() - returned > 300:
            raise AssertionError(f"{path} never answered {expect!r}")
        time.sleep(0.01)
    served = time.perf_counter()
    # The same function's next requests, under the same load: what the first one is compared with.
    steady = statistics.median(get(up.url + path)[2] for _ in range(10))
    line, seen = swap_line(up, "demo/" + path.strip("/").split("/")[1], seen)
    return {"apply_s": returned - started, "after_apply_s": served - returned, "first_request_ms": duration * 1000,
            "next_requests_ms": steady * 1000, "swap": line.split("(", 1)[-1].rstrip(")")}, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="version swaps per mode (default 3)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="swap-bench-"))
    root = work / "project"
    shutil.copytree(REPO / "examples" / "hello", root, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    cache = work / "runtime-cache"
    os.environ["FAASOPS_RUNTIME_CACHE"] = str(cache)
    os.environ.setdefault("FAASOPS_BUILD_CACHE", str(Path.home() / ".cache" / "faasops-bench" / "builds"))
    handler = root / "functions" / "hello" / "app.py"
    template = handler.read_text()
    write_manifest(root, True, [])
    first = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert first.code == 0, first.output

    results: dict[str, list[dict[str, float | str]]] = {}
    added: dict[str, dict[str, float | str]] = {}
    try:
        with running_up(root, "--no-apply") as up:
            seen = 0
            extras: list[str] = []
            for precompile in (True, False):
                mode = "precompile (default)" if precompile else "no precompile (baseline)"
                rows = results.setdefault(mode, [])
                for _ in range(args.rounds):
                    text = f"Hello, version {len(rows) + (0 if precompile else 100)}"
                    handler.write_text(template.replace(ORIGINAL, text))
                    write_manifest(root, precompile, extras)
                    row, seen = measure(root, cache, up, "/demo/hello/", text.encode(), seen)
                    rows.append(row)
                    print(f"{mode}: {row}", flush=True)
                name = f"fresh-{len(extras)}"
                text = f"Hello from {name}"
                shutil.copytree(handler.parent, root / "functions" / name)
                (root / "functions" / name / "app.py").write_text(template.replace(ORIGINAL, text))
                extras.append(name)
                write_manifest(root, precompile, extras)
                added[mode], seen = measure(root, cache, up, f"/demo/{name}/", text.encode(), seen)
                print(f"{mode}, new function: {added[mode]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\n| mode | swaps | apply s (median) | new version answers after apply returned, s (median / max) "
          "| its first request, ms (median / max) | next 10 requests, ms (median) | `up` swap line (last) |")
    print("|---|---|---|---|---|---|---|")
    for mode, rows in results.items():
        after = [float(r["after_apply_s"]) for r in rows]
        first_ms = [float(r["first_request_ms"]) for r in rows]
        print(f"| {mode} | {len(rows)} | {statistics.median(float(r['apply_s']) for r in rows):.1f} | "
              f"{statistics.median(after):.2f} / {max(after):.2f} | {statistics.median(first_ms):.1f} / "
              f"{max(first_ms):.1f} | {statistics.median(float(r['next_requests_ms']) for r in rows):.1f} | "
              f"{rows[-1]['swap']} |")
    print("\n| mode | new function: apply s | answers after apply returned, s | first request, ms | next 10, ms "
          "| `up` line |")
    print("|---|---|---|---|---|---|")
    for mode, row in added.items():
        print(f"| {mode} | {float(row['apply_s']):.1f} | {float(row['after_apply_s']):.2f} | "
              f"{float(row['first_request_ms']):.1f} | {float(row['next_requests_ms']):.1f} | {row['swap']} |")


if __name__ == "__main__":
    main()
