"""Benchmark: the Platform API's reads with 1,000 functions, and a code PATCH until the new
version answers.

Run: ``.venv/bin/python bench/api_bench.py [--functions 1000] [--reads 100] [--details 300]``

**Reads.** A generated project on the local backend — one workspace ``bench`` with N functions
sharing one source directory (``shared/hello``), in its own git repository — with the state
seeded directly (every function recorded as deployed, with the spec apply would record, so
every read compares declared with deployed and finds them in sync; no build). ``faasops api
serve`` runs on it in a subprocess; httpx sends, one at a time:

* ``GET /api/workspaces/bench/functions`` (every function, declared and deployed) ``--reads`` times;
* ``GET /api/workspaces/bench/functions/fn-XXXX`` for random functions ``--details`` times.

Same-run baselines: the raw state read (``engine.state.read(["bench"])``, in-process, no
manifests) and ``faasops get functions bench --format json`` (a CLI process: Python start,
manifest load, state read), timed the same way.

**PATCH to answer.** ``examples/hello`` applied once, served by ``faasops api serve``; a PATCH
of the function's ``code`` (Base64), then ``POST …/invoke`` every 0.1 s until the body is the
new one: with a handler the build cache holds (cached) and with a handler never built before
(a real componentize-py build). Same-run baseline: the same cached change made with the CLI
(write ``app.py``, ``faasops apply --auto-approve -t demo/hello``, ``faasops invoke``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faasops.engine import Engine  # noqa: E402
from faasops.executor import utcnow  # noqa: E402
from faasops.providers import FunctionRecord, WorkspaceRecord  # noqa: E402

TOKEN = "bench-admin-token-0123456789abcdef"
HELLO = ROOT / "examples" / "hello" / "functions" / "hello" / "app.py"
LISTENING = re.compile(r"faasops api listening on (http://\S+)")
WORKSPACE = "bench"


# ---------------------------------------------------------------------------------- helpers


def git(project: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, env=env)


def commit(project: Path) -> None:
    (project / ".gitignore").write_text(".faasops/\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bench project")


def faasops(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faasops.cli", "-C", str(project), *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


class Server:
    """``faasops api serve`` on a free port."""

    def __init__(self, project: Path, log: Path):
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "faasops.cli", "-C", str(project), "api", "serve", "--port", "0"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "FAASOPS_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            found = LISTENING.search(text)
            if found and "Application startup complete" in text:
                self.client = httpx.Client(base_url=found.group(1), timeout=3600,
                                           headers={"Authorization": f"Bearer {TOKEN}"})
                return
            if self.process.poll() is not None:
                raise SystemExit(f"faasops api serve exited:\n{text}")
            time.sleep(0.1)
        self.stop()
        raise SystemExit("faasops api serve did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds (nearest rank)."""
    ordered = sorted(samples)
    rank = lambda q: ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]  # noqa: E731
    return rank(0.50) * 1000, rank(0.99) * 1000


def timed(count: int, call: Callable[[], None]) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def row(name: str, samples: list[float]) -> str:
    p50, p99 = percentiles(samples)
    return f"| {name} | {len(samples)} | {p50:.1f} | {p99:.1f} | {statistics.fmean(samples) * 1000:.1f} |"


# ---------------------------------------------------------------------------------- reads


def generate(root: Path, functions: int) -> Path:
    project = root / "big"
    (project / "shared" / "hello").mkdir(parents=True)
    shutil.copy(HELLO, project / "shared" / "hello" / "app.py")
    lines = ["apiVersion: faasops/v1", "project: bench", "backend: local", "", "workspaces:",
             f"  - name: {WORKSPACE}", "    functions:"]
    for i in range(functions):
        lines += [f"      - name: fn-{i:04d}", "        source: shared/hello"]
    (project / "faas.yaml").write_text("\n".join(lines) + "\n")
    with Engine.load(project) as engine:
        declared = engine.project.functions()
        specs = engine.desired_specs(declared)
        workspace = engine.project.workspace(WORKSPACE)
        assert workspace is not None
        engine.state.put_workspace(WorkspaceRecord(WORKSPACE, workspace.spec()))
        now = utcnow()
        for function in declared:
            engine.state.put_function(FunctionRecord(
                workspace=function.workspace, name=function.name, spec=specs[function.address],
                artifact=f"local/bench/{WORKSPACE}/{function.name}@sha256:" + "0" * 64, applied_at=now))
    commit(project)
    return project


def bench_reads(root: Path, functions: int, reads: int, details: int) -> list[str]:
    started = time.perf_counter()
    project = generate(root, functions)
    print(f"generated and seeded {functions} functions in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    server = Server(project, root / "api-reads.log")
    names = [f"fn-{i:04d}" for i in range(functions)]
    try:
        api = server.client

        def listing() -> None:
            answer = api.get(f"/api/workspaces/{WORKSPACE}/functions")
            assert answer.status_code == 200, answer.text
            found = answer.json()["functions"]
            assert len(found) == functions and all(f["status"] == "synced" for f in found), found[:2]

        def detail() -> None:
            name = random.choice(names)
            answer = api.get(f"/api/workspaces/{WORKSPACE}/functions/{name}")
            assert answer.status_code == 200 and answer.json()["status"] == "synced", answer.text

        timed(3, listing)  # warm-up: imports, caches
        timed(3, detail)
        list_samples = timed(reads, listing)
        detail_samples = timed(details, detail)
    finally:
        server.stop()

    with Engine.load(project) as engine:
        state = engine.state
        raw = timed(reads, lambda: state.read([WORKSPACE]))

    def cli_get() -> None:
        result = faasops(project, "get", "functions", WORKSPACE, "--format", "json")
        assert result.returncode == 0 and len(json.loads(result.stdout)) == functions, result.stderr

    cli = timed(max(3, reads // 20), cli_get)
    return [
        f"{functions} functions in one workspace, state seeded (no build), local backend, sequential requests.",
        "",
        "| read | n | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
        row(f"API `GET /api/workspaces/{WORKSPACE}/functions` (all {functions})", list_samples),
        row(f"API `GET /api/workspaces/{WORKSPACE}/functions/{{fn}}` (one)", detail_samples),
        row(f"baseline: raw state read `state.read([ws])` (in-process)", raw),
        row(f"baseline: `faasops get functions {WORKSPACE} --format json` (process)", cli),
    ]


# ---------------------------------------------------------------------------------- PATCH → answer


def handler(greeting: str) -> bytes:
    return HELLO.read_bytes().replace(b"Hello from Blue FaaS!", greeting.encode())


def until_answering(api: httpx.Client, greeting: str, timeout_s: float = 1800) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = api.post("/api/workspaces/demo/functions/hello/invoke", json={})
        if answer.status_code == 200 and answer.json()["body"] == greeting:
            return
        time.sleep(0.1)
    raise SystemExit(f"{greeting!r} never answered")


def patch_to_answer(api: httpx.Client, greeting: str) -> float:
    started = time.perf_counter()
    answer = api.patch("/api/workspaces/demo/functions/hello",
                       json={"code": base64.b64encode(handler(greeting)).decode()})
    assert answer.status_code == 202, answer.text
    until_answering(api, greeting)
    return time.perf_counter() - started


def bench_patch(root: Path) -> list[str]:
    project = root / "hello"
    shutil.copytree(ROOT / "examples" / "hello", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    commit(project)
    applied = faasops(project, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    cached_greeting = "Hello again, cached!"
    server = Server(project, root / "api-patch.log")
    try:
        api = server.client
        until_answering(api, "Hello from Blue FaaS!")
        patch_to_answer(api, cached_greeting)  # puts this handler's build into the cache (if not already)
        patch_to_answer(api, "Hello from Blue FaaS!")
        cached = [patch_to_answer(api, cached_greeting)]
        patch_to_answer(api, "Hello from Blue FaaS!")
        cached.append(patch_to_answer(api, cached_greeting))
        real = [patch_to_answer(api, f"Hello, fresh build {uuid.uuid4().hex[:12]}!")]
    finally:
        server.stop()

    app = project / "functions" / "hello" / "app.py"

    def cli_change(greeting: str) -> float:
        started = time.perf_counter()
        app.write_bytes(handler(greeting))
        result = faasops(project, "apply", "--auto-approve", "-t", "demo/hello")
        assert result.returncode == 0, result.stdout + result.stderr
        invoked = faasops(project, "invoke", "demo/hello")
        assert invoked.stdout.strip() == greeting, invoked.stdout + invoked.stderr
        return time.perf_counter() - started

    cli_cached = []
    for _ in range(2):
        cli_change("Hello from Blue FaaS!")
        cli_cached.append(cli_change(cached_greeting))
    return [
        "Time from sending the PATCH (code, Base64) until `POST …/invoke` answers the new body (polled every 0.1 s), "
        "examples/hello on the local backend.",
        "",
        "| change | runs | seconds |",
        "|---|---|---|",
        f"| API PATCH, handler in the build cache | {len(cached)} | {', '.join(f'{s:.2f}' for s in cached)} |",
        f"| API PATCH, new handler (real componentize-py build) | {len(real)} | {', '.join(f'{s:.2f}' for s in real)} |",
        f"| baseline: CLI edit + `apply -t` + `invoke`, cached | {len(cli_cached)} | "
        f"{', '.join(f'{s:.2f}' for s in cli_cached)} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--details", type=int, default=300)
    parser.add_argument("--skip-patch", action="store_true", help="Only the read benchmark.")
    args = parser.parse_args()
    os.environ.setdefault("FAASOPS_BUILD_CACHE", str(Path.home() / ".cache" / "faasops-tests" / "builds"))
    random.seed(14)
    with tempfile.TemporaryDirectory(prefix="faasops-api-bench-") as scratch:
        lines = ["## Platform API reads and writes (`bench/api_bench.py`)", ""]
        lines += bench_reads(Path(scratch), args.functions, args.reads, args.details)
        if not args.skip_patch:
            lines += [""] + bench_patch(Path(scratch))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
