"""One measurement of the scale benchmark, in a fresh process (so peak RSS is this run's own).

``python bench/scale_worker.py PHASE --project DIR [--parallelism N] [--profile FILE]``

Phases:

* ``plan``: the batched no-op plan;
* ``plan-per-object``: the same plan with per-object refresh (see :mod:`per_object_refresh`);
* ``apply``: lock → plan → apply, as ``faasops apply --auto-approve`` does;
* ``apply-without-tasks``: the same, except that the task history is not written (two DynamoDB
  writes per function, one of them the record's own transaction, which then carries none):
  how the benchmark sets up
  projects too large for a full apply on moto in reasonable time; records, pushes and deploys are
  the real ones;
* ``manifests --out DIR``: render every recorded function's manifests (for the kubectl
  baselines), one multi-document file per workspace.

Prints one JSON object: wall times, API calls per service, the plan's summary, apply's result
and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faasops.engine import Engine  # noqa: E402
from faasops.executor import ProviderSet  # noqa: E402
from faasops.gc_tuning import relax_for_process  # noqa: E402
from faasops.manifest import load_project  # noqa: E402
from faasops.plan import Action, Plan  # noqa: E402
from per_object_refresh import use_per_object_refresh  # noqa: E402

PHASES = ("plan", "plan-per-object", "apply", "apply-without-tasks", "manifests")


class WithoutTaskHistory:
    """A state backend that drops task writes (see ``apply-without-tasks``)."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_task(self, task: Any) -> None:
        pass

    def put_tasks(self, tasks: Any) -> None:
        pass

    def put_function(self, record: Any, tasks: Any = ()) -> None:
        self.inner.put_function(record)

    def delete_function(self, workspace: str, name: str, tasks: Any = ()) -> None:
        self.inner.delete_function(workspace, name)


class QuietReporter:
    """Apply progress without 70,000 log lines."""

    def start(self, total: int) -> None:
        pass

    def step(self, address: str, step: str, status: str, message: str = "") -> None:
        pass

    def finish(self, result: Any) -> None:
        pass


def calls_by_service(providers: ProviderSet) -> dict[str, dict[str, int]]:
    """Every API call the providers made, grouped as DynamoDB, S3, ECR, registry, Kubernetes."""
    registry = Counter(providers.registry.calls)
    return {
        "dynamodb": dict(providers.state.calls),
        "s3": dict(providers.sources.calls),
        "ecr": {k: v for k, v in registry.items() if k.startswith("ecr.")},
        "registry": {k: v for k, v in registry.items() if k.startswith("registry.")},
        "kubernetes": dict(providers.deployer.calls),
    }


def summary(plan: Plan) -> dict[str, int]:
    actions = Counter(c.action for c in plan.changes)
    return {
        "add": actions[Action.CREATE], "change": actions[Action.UPDATE] + actions[Action.REPLACE],
        "destroy": actions[Action.DELETE], "no-op": actions[Action.NOOP],
    }


def write_manifests(engine: Engine, out_dir: Path) -> int:
    """Every recorded function's manifests, rendered for its recorded artifact, as
    ``<out_dir>/<workspace>.yaml``; returns the number of manifests written."""
    p = engine.providers
    actual = p.state.read()
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for workspace in engine.project.workspaces:
        documents = []
        for function in workspace.functions:
            record = actual.functions.get(function.address)
            if record is not None:
                documents += p.scaffolder.render(engine.project, function, record.artifact)
        (out_dir / f"{workspace.name}.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False, width=2**31 - 1))
        count += len(documents)
    return count


def time_plan_steps(engine: Engine) -> dict[str, float]:
    """Wrap the providers' plan-time reads and the drift check's rendering (full renders and
    render digests) with timers; the returned dict fills in as the plan runs (wall seconds spent
    in each; the state read and the cluster observation run at the same time)."""
    spent = {"read_state": 0.0, "observe": 0.0, "render": 0.0, "renders": 0, "render_digests": 0}
    p = engine.providers

    def timed(key: str, call: Any, count: str = "") -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - started
                if count:
                    spent[count] += 1
        return wrapper

    p.state.read = timed("read_state", p.state.read)
    p.deployer.observe = timed("observe", p.deployer.observe)
    p.scaffolder.render = timed("render", p.scaffolder.render, "renders")
    if hasattr(p.scaffolder, "render_digest"):
        p.scaffolder.render_digest = timed("render", p.scaffolder.render_digest, "render_digests")
    return spent


def measure(phase: str, project_dir: Path, parallelism: int, out_dir: Path | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    engine = Engine(load_project(project_dir))
    loaded = time.perf_counter()
    out: dict[str, Any] = {"phase": phase, "functions": len(engine.project.functions()),
                           "workspaces": len(engine.project.workspaces)}
    try:
        if phase == "plan-per-object":
            use_per_object_refresh(engine)
        if phase == "apply-without-tasks":
            engine.__dict__["providers"] = replace(engine.providers, state=WithoutTaskHistory(engine.providers.state))
        if phase == "manifests":
            out["manifests"] = write_manifests(engine, out_dir)
            out["seconds"] = {"total": time.perf_counter() - started}
            return out
        if phase.startswith("apply"):
            with engine.locked("apply"):
                planned_at = time.perf_counter()
                plan = engine.plan()
                planned = time.perf_counter()
                result = engine.apply(plan, parallelism=parallelism, reporter=QuietReporter())
                applied = time.perf_counter()
            out["seconds"] = {"load": loaded - started, "plan": planned - planned_at,
                              "apply": applied - planned, "total": time.perf_counter() - started}
            out["parallelism"] = parallelism
            # This process's own CPU time (user + system), all threads: what faasops itself costs.
            usage = resource.getrusage(resource.RUSAGE_SELF)
            out["cpu_seconds"] = usage.ru_utime + usage.ru_stime
            out["result"] = {
                "applied": len(result.applied), "failed": len(result.failed), "skipped": len(result.skipped),
                "builds": result.builds, "cached_builds": result.cached_builds, "pushes": result.pushes,
                "errors": sorted(set(result.failed.values()))[:5],
            }
        else:
            steps = time_plan_steps(engine)
            cpu_at = time.process_time()
            plan = engine.plan()
            planned = time.perf_counter()
            out["seconds"] = {"load": loaded - started, "plan": planned - loaded, "total": planned - started}
            # Where the plan's wall time went; "cpu" is this process's own CPU time (the rest is
            # waiting for moto and the emulator, or for the CPU they were using).
            reads = max(steps["read_state"], steps["observe"])  # concurrent
            out["breakdown"] = {**steps, "other": planned - loaded - reads - steps["render"],
                                "cpu": time.process_time() - cpu_at}
        out["plan"] = summary(plan)
        out["calls"] = calls_by_service(engine.providers)
    finally:
        engine.close()
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measurement here")
    parser.add_argument("--out", type=Path, help="where ``manifests`` writes")
    args = parser.parse_args(argv)
    relax_for_process()  # as the faasops command does
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    if args.phase == "manifests" and args.out is None:
        parser.error("manifests needs --out DIR")
    out = measure(args.phase, args.project, args.parallelism, args.out)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
