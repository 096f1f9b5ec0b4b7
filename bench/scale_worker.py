"""One measurement of the scale benchmark, in a fresh process (so peak RSS is this run's own).

``python bench/scale_worker.py PHASE --project DIR [--parallelism N] [--profile FILE]``

Phases: ``plan`` (the batched no-op plan), ``plan-per-object`` (the same plan with per-object
refresh, see :mod:`per_object_refresh`), ``apply`` (lock → plan → apply, as ``faasops apply
--auto-approve`` does). Prints one JSON object: wall times, API calls per service, the plan's
summary, apply's result and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faasops.engine import Engine  # noqa: E402
from faasops.executor import ProviderSet  # noqa: E402
from faasops.manifest import load_project  # noqa: E402
from faasops.plan import Action, Plan  # noqa: E402
from per_object_refresh import use_per_object_refresh  # noqa: E402

PHASES = ("plan", "plan-per-object", "apply")


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


def measure(phase: str, project_dir: Path, parallelism: int) -> dict[str, Any]:
    started = time.perf_counter()
    engine = Engine(load_project(project_dir))
    loaded = time.perf_counter()
    out: dict[str, Any] = {"phase": phase, "functions": len(engine.project.functions()),
                           "workspaces": len(engine.project.workspaces)}
    try:
        if phase == "plan-per-object":
            use_per_object_refresh(engine)
        if phase == "apply":
            with engine.locked("apply"):
                planned_at = time.perf_counter()
                plan = engine.plan()
                planned = time.perf_counter()
                result = engine.apply(plan, parallelism=parallelism, reporter=QuietReporter())
                applied = time.perf_counter()
            out["seconds"] = {"load": loaded - started, "plan": planned - planned_at,
                              "apply": applied - planned, "total": time.perf_counter() - started}
            out["result"] = {
                "applied": len(result.applied), "failed": len(result.failed), "skipped": len(result.skipped),
                "builds": result.builds, "cached_builds": result.cached_builds, "pushes": result.pushes,
                "errors": sorted(set(result.failed.values()))[:5],
            }
        else:
            plan = engine.plan()
            planned = time.perf_counter()
            out["seconds"] = {"load": loaded - started, "plan": planned - loaded, "total": planned - started}
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
    args = parser.parse_args(argv)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    out = measure(args.phase, args.project, args.parallelism)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
