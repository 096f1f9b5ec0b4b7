"""Kill ``faasops apply`` with SIGKILL at chosen points and check that the next apply converges.

Shared by ``tests/reliability/test_crash_sweep.py`` (a fixed set of kill points) and
``bench/crash_sweep.py`` (N random ones). A kill point is a step of a workspace or function
(``snapshot``, ``upload``, ``build``, ``push``, ``scaffold``, ``deploy``, ``record`` …) and when to
die: at its ``start`` (its task is recorded as running, nothing done), ``during`` it (a timer
started at its start; at the latest as the step ends), or ``after`` it (its task completed, the next one not started);
``pre-apply`` dies once the lock is held and the plan approved, before the first step.

The kill comes from inside the real CLI process: a test plugin (:data:`PLUGIN_SOURCE`) written
to a temporary directory and loaded through ``FAASOPS_PLUGINS`` + ``PYTHONPATH`` implements
``faasops_step_started`` / ``faasops_step_finished`` and sends SIGKILL to its own process —
no cleanup handler, ``finally`` or signal handler runs, exactly like ``kill -9`` or an OOM kill.

After the kill, :func:`check_after_kill` looks at the lock (still there, held by a dead pid, so
stale) and :func:`check_converged` runs ``apply --auto-approve`` and ``plan --detailed-exitcode``
and checks the local backend for duplicates and orphans: state rows, OCI refs, deploy
manifests, temporary files and open tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faasops.lock import pid_alive

REPO = Path(__file__).resolve().parent.parent.parent
PLUGIN_MODULE = "faasops_crash_trigger"
CRASH_ENV = "FAASOPS_CRASH_AT"
PROJECT = "shop"
WORKSPACE = "demo"
# Identical sources (so one cached build serves them), different env (so different artifacts).
FUNCTIONS = {"hello": {"GREETING": "hello"}, "hola": {"GREETING": "hola"}, "ciao": {"GREETING": "ciao"}}
FUNCTION_STEPS = ("snapshot", "upload", "build", "push", "scaffold", "deploy", "record")
WORKSPACE_STEPS = ("namespace", "record")
WHENS = ("start", "during", "after")
INTERRUPTED = "interrupted: the run ended before this step finished"

PLUGIN_SOURCE = textwrap.dedent('''\
    """Test plugin: SIGKILL this faasops process at the apply step named by $FAASOPS_CRASH_AT,
    a JSON object {"address", "step", "when": start|during|after|pre-apply, "delay", "marker"}.
    Before dying it writes the marker file: the steps running at that moment."""

    import json
    import os
    import signal
    import threading

    from faasops.hookspecs import hookimpl

    _SPEC = json.loads(os.environ.get("FAASOPS_CRASH_AT") or "null") or {}
    _RUNNING = {}
    _LOCK = threading.Lock()


    _DYING = threading.Lock()


    def _die(reason):
        if not _DYING.acquire(blocking=False):
            threading.Event().wait()  # another thread is killing the process right now
        marker = _SPEC.get("marker")
        if marker:
            with _LOCK:
                running = sorted(f"{a}:{s}" for (a, s) in _RUNNING)
            with open(marker + ".part", "w") as out:
                json.dump({"reason": reason, "running": running}, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(marker + ".part", marker)
        os.kill(os.getpid(), signal.SIGKILL)


    def _mine(address, step):
        return _SPEC.get("address") == address and _SPEC.get("step") == step


    @hookimpl
    def faasops_pre_apply(plan, project):
        if _SPEC.get("when") == "pre-apply":
            _die("pre-apply")


    @hookimpl
    def faasops_step_started(project, address, step):
        with _LOCK:
            _RUNNING[(address, step)] = True
        if not _mine(address, step):
            return
        if _SPEC["when"] == "start":
            _die(f"start of {address} {step}")
        elif _SPEC["when"] == "during":
            timer = threading.Timer(float(_SPEC.get("delay") or 0.0), _die, (f"during {address} {step}",))
            timer.daemon = True
            timer.start()


    @hookimpl
    def faasops_step_finished(project, address, step, status, message):
        if _mine(address, step) and _SPEC["when"] == "during":
            # The step ended before its timer fired (a short step, a busy machine): die now, as
            # it ends, rather than after apply finished.
            _die(f"during {address} {step}, at its end")
        with _LOCK:
            _RUNNING.pop((address, step), None)
        if _mine(address, step) and _SPEC["when"] == "after":
            _die(f"after {address} {step}")
''')


@dataclass(frozen=True)
class KillPoint:
    """Where to kill: ``address`` (``demo`` or ``demo/hello``), ``step``, ``when``; ``delay``
    seconds after the start for ``during``."""

    address: str
    step: str
    when: str
    delay: float = 0.0

    def __str__(self) -> str:
        if self.when == "pre-apply":
            return "pre-apply"
        suffix = f"+{self.delay:g}s" if self.when == "during" else ""
        return f"{self.when}:{self.step}{suffix}:{self.address}"

    def spec(self, marker: Path) -> str:
        return json.dumps({"address": self.address, "step": self.step, "when": self.when, "delay": self.delay,
                           "marker": str(marker)})


@dataclass
class Run:
    code: int
    output: str
    seconds: float


@dataclass
class CaseReport:
    """What one kill and recovery did."""

    point: str
    died_at: dict[str, Any] = field(default_factory=dict)
    killed_s: float = 0.0
    recovered_s: float = 0.0
    interrupted_tasks: int = 0
    problems: list[str] = field(default_factory=list)


def write_plugin(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    return directory


def make_project(root: Path, functions: dict[str, dict[str, str]] | None = None, unique: str | None = None) -> Path:
    """A local-backend project with the hello example's handler under several names (identical
    sources, so one cached build serves them all). ``unique`` adds a function of that name whose
    source differs (a real build)."""
    functions = dict(FUNCTIONS if functions is None else functions)
    root.mkdir(parents=True, exist_ok=True)
    handler = (REPO / "examples" / "hello" / "functions" / "hello" / "app.py").read_text()
    entries = []
    for name, env in functions.items():
        (root / "functions" / name).mkdir(parents=True, exist_ok=True)
        (root / "functions" / name / "app.py").write_text(handler)
        entries.append({"name": name, "source": f"functions/{name}", "env": env})
    if unique:
        (root / "functions" / unique).mkdir(parents=True, exist_ok=True)
        (root / "functions" / unique / "app.py").write_text(f"# build {unique} {time.time_ns()}\n" + handler)
        entries.append({"name": unique, "source": f"functions/{unique}"})
    manifest = {"apiVersion": "faasops/v1", "project": PROJECT, "backend": "local",
                "workspaces": [{"name": WORKSPACE, "functions": entries}]}
    (root / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def declared_functions(project: Path) -> list[str]:
    manifest = yaml.safe_load((project / "faas.yaml").read_text())
    return sorted(f["name"] for ws in manifest["workspaces"] for f in ws["functions"])


def faasops(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Run:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "faasops.cli", "-C", str(project), *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          check=False)
    return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


def plugin_env(plugin_dir: Path, point: KillPoint, marker: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(plugin_dir), os.environ.get("PYTHONPATH", "")) if p)
    return {"FAASOPS_PLUGINS": PLUGIN_MODULE, "PYTHONPATH": path, CRASH_ENV: point.spec(marker)}


def state_rows(project: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(project / ".faasops" / "state.db", timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# ------------------------------------------------------------------------------------ one case


def kill_apply(project: Path, plugin_dir: Path, point: KillPoint, *, parallelism: int = 1,
               extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> tuple[Run, dict[str, Any]]:
    """Run ``apply --auto-approve`` until the plugin kills it; returns the run and the marker."""
    marker = project.parent / f"{project.name}.killed.json"
    marker.unlink(missing_ok=True)
    run = faasops(project, "apply", "--auto-approve", "-p", str(parallelism), *extra_args,
                  env={**(env or {}), **plugin_env(plugin_dir, point, marker)})
    died = json.loads(marker.read_text()) if marker.exists() else {}
    return run, died


def check_after_kill(project: Path, run: Run) -> list[str]:
    """The killed run died by SIGKILL and left its lock behind, stale (its pid is gone)."""
    problems = []
    if run.code != -signal.SIGKILL:
        return [f"apply was not killed (exit {run.code}): the kill point was never reached\n{run.output[-2000:]}"]
    rows = state_rows(project, "SELECT id, pid FROM locks")
    if len(rows) != 1:
        problems.append(f"expected the killed run's lock row, found {rows}")
    elif pid_alive(rows[0][1]):
        problems.append(f"the lock's pid {rows[0][1]} is still alive: the lock would not be stale")
    return problems


def check_converged(project: Path, *, env: dict[str, str] | None = None, extra_args: tuple[str, ...] = (),
                    pruned: tuple[str, ...] = ()) -> tuple[list[str], float, int]:
    """Apply again, plan, and look for duplicates and orphans. Returns (problems, seconds, number
    of tasks marked interrupted)."""
    problems: list[str] = []
    open_before = state_rows(project, "SELECT id FROM tasks WHERE status IN ('running', 'pending')")
    again = faasops(project, "apply", "--auto-approve", *extra_args, env=env)
    if again.code != 0:
        return [f"apply after the kill failed (exit {again.code}):\n{again.output[-3000:]}"], again.seconds, 0
    plan = faasops(project, "plan", "--detailed-exitcode", env=env)
    if plan.code != 0:
        problems.append(f"plan after recovery is not clean (exit {plan.code}):\n{plan.output[-3000:]}")
    problems += check_invariants(project, pruned)
    interrupted = 0
    for (task_id,) in open_before:
        rows = state_rows(project, "SELECT status, message FROM tasks WHERE id = ?", (task_id,))
        if rows != [("failed", INTERRUPTED)]:
            problems.append(f"task {task_id} left running by the killed run is {rows}, not failed/interrupted")
        else:
            interrupted += 1
    return problems, again.seconds + plan.seconds, interrupted


def check_invariants(project: Path, pruned: tuple[str, ...] = ()) -> list[str]:
    """No duplicates, no orphans, nothing half-written, on the local backend. ``pruned``
    functions were deleted: their artifacts stay in the registry (as they do in ECR), nothing
    else of them may."""
    problems: list[str] = []
    state = project / ".faasops"
    declared = declared_functions(project)

    if state_rows(project, "SELECT count(*) FROM locks") != [(0,)]:
        problems.append("the lock was not released by the recovering apply")
    open_tasks = state_rows(project, "SELECT kind, workspace, function, status FROM tasks WHERE status IN ('running', 'pending')")
    if open_tasks:
        problems.append(f"tasks still open after recovery: {open_tasks}")
    workspaces = sorted(r[0] for r in state_rows(project, "SELECT name FROM workspaces"))
    if workspaces != [WORKSPACE]:
        problems.append(f"workspace rows {workspaces}, want [{WORKSPACE!r}]")
    records = dict(state_rows(project, "SELECT name, artifact FROM functions WHERE workspace = ?", (WORKSPACE,)))
    if sorted(records) != declared:
        problems.append(f"function rows {sorted(records)}, want {declared}")

    # One OCI ref per function, each naming the recorded artifact.
    index = json.loads((state / "oci" / "index.json").read_text())
    refs: dict[str, list[str]] = {}
    for manifest in index["manifests"]:
        name = manifest["annotations"]["org.opencontainers.image.ref.name"]
        refs.setdefault(name.rsplit(":", 1)[0], []).append(manifest["digest"])
    want_repos = sorted(f"{PROJECT}/{WORKSPACE}/{fn}" for fn in declared)
    for fn in pruned:
        refs.pop(f"{PROJECT}/{WORKSPACE}/{fn}", None)
    if sorted(refs) != want_repos or any(len(d) != 1 for d in refs.values()):
        problems.append(f"OCI refs {refs}, want one per function {want_repos}")
    for fn, artifact in records.items():
        digest = artifact.rpartition("@")[2]
        if refs.get(f"{PROJECT}/{WORKSPACE}/{fn}") != [digest]:
            problems.append(f"{fn}: recorded artifact {digest} is not what its OCI ref names ({refs.get(fn)})")
        blob = state / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")
        if not blob.is_file():
            problems.append(f"{fn}: the manifest blob of {digest} is missing")
        else:
            for layer in json.loads(blob.read_text())["layers"]:
                layer_blob = state / "oci" / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
                if not layer_blob.is_file() or layer_blob.stat().st_size != layer["size"]:
                    problems.append(f"{fn}: layer {layer['digest']} is missing or truncated")

    # Exactly the declared manifests are deployed, each with the recorded image.
    deploy = state / "deploy" / WORKSPACE
    files = sorted(p.name for p in deploy.iterdir()) if deploy.is_dir() else []
    want_files = sorted(["_executors", "_namespace.yaml", *(f"{fn}.yaml" for fn in declared)])
    if files != want_files:
        problems.append(f"deploy/{WORKSPACE} holds {files}, want {want_files}")
    # The executor the SpinApps name, written before the first of them.
    executors = sorted(p.name for p in (deploy / "_executors").iterdir()) if (deploy / "_executors").is_dir() else []
    if executors != ["containerd-shim-spin.yaml"]:
        problems.append(f"deploy/{WORKSPACE}/_executors holds {executors}, want ['containerd-shim-spin.yaml']")
    for fn, artifact in records.items():
        path = deploy / f"{fn}.yaml"
        if path.is_file():
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            images = [d["spec"]["image"] for d in docs if d.get("kind") == "SpinApp"]
            if images != [artifact]:
                problems.append(f"{fn}: deployed image {images} is not the recorded {artifact}")
    others = sorted(p.name for p in (state / "deploy").iterdir() if p.name != WORKSPACE) if (state / "deploy").is_dir() else []
    if others:
        problems.append(f"deploy/ holds other namespaces: {others}")

    # Nothing half-written left behind.
    leftovers = sorted(str(p.relative_to(state)) for p in state.rglob("*") if p.is_file() and _temporary(p))
    if leftovers:
        problems.append(f"temporary files left in .faasops: {leftovers}")
    return problems


def _temporary(path: Path) -> bool:
    """A temporary file of an atomic write (``.x.tmp``, ``x.tar.tmp123.456``, ``.x.123.456.tmp``)."""
    return ".tmp" in path.name or path.name.endswith("-journal")


def run_case(workdir: Path, plugin_dir: Path, point: KillPoint, *, parallelism: int = 1,
             prepare: Any = None, env: dict[str, str] | None = None, unique: str | None = None,
             pruned: tuple[str, ...] = ()) -> CaseReport:
    """One kill and recovery in a fresh project under ``workdir``. ``prepare(project)`` runs
    first (e.g. an initial apply and a manifest change, to kill an update) and returns extra
    apply arguments (``--prune``); ``pruned`` names the functions it removed."""
    report = CaseReport(str(point))
    project = make_project(workdir / "project", unique=unique)
    extra: tuple[str, ...] = ()
    if prepare is not None:
        extra = tuple(prepare(project) or ())
    killed, died = kill_apply(project, plugin_dir, point, parallelism=parallelism, extra_args=extra, env=env)
    report.killed_s, report.died_at = killed.seconds, died
    report.problems += check_after_kill(project, killed)
    if report.problems:
        return report
    problems, seconds, interrupted = check_converged(project, env=env, extra_args=extra, pruned=pruned)
    report.problems += problems
    report.recovered_s, report.interrupted_tasks = seconds, interrupted
    return report


def all_kill_points(functions: list[str] | None = None) -> list[KillPoint]:
    """Every (address, step, when) of a first apply of the standard project (``during`` with no
    delay: as soon as the step's own work begins)."""
    points = [KillPoint(WORKSPACE, "", "pre-apply")]
    points += [KillPoint(WORKSPACE, step, when) for step in WORKSPACE_STEPS for when in ("start", "after")]
    for fn in functions or list(FUNCTIONS):
        points += [KillPoint(f"{WORKSPACE}/{fn}", step, when) for step in FUNCTION_STEPS for when in WHENS]
    return points


def clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
