"""The SIGKILL sweep, larger: kill ``faasops apply`` at N random points and check that the next
apply converges every time (``tests/reliability/test_crash_sweep.py`` runs a fixed set of ~30).

Each run: a fresh local-backend project of three functions (one shared, cached build), a random
scenario (first apply; an update of one function's env; a ``--prune`` of one function), a random
kill point (a workspace or function step and start / during (+0–100 ms) / after it, or right
after the plan is approved), random parallelism (1 or 4); then SIGKILL from inside the CLI, and
checks: the lock is stale, ``apply`` exits 0, ``plan --detailed-exitcode`` exits 0, no duplicated
or orphaned state rows, OCI refs, deploy manifests or temporary files, the dead run's tasks
marked interrupted.

    python bench/crash_sweep.py                 # N=100, seed 1
    python bench/crash_sweep.py -n 300 --seed 7 --keep /tmp/sweep

Builds come from ``$FAASOPS_BUILD_CACHE`` (default: the test suite's cache), so only the first
run ever builds. Prints a summary (deaths per step, timings, problems grouped by kind) and exits
1 if any run did not converge cleanly.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test services (testkit)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))

from crash_sweep_support import (
    FUNCTIONS,
    WORKSPACE,
    CaseReport,
    KillPoint,
    all_kill_points,
    clean,
    faasops,
    run_case,
    write_plugin,
)

SCENARIOS = ("create", "create", "update", "prune")  # first applies twice as often


def prepare_for(scenario: str, victim: str) -> tuple[object, tuple[str, ...]]:
    """``(prepare, pruned)`` for ``run_case``: an initial apply and a manifest change."""
    if scenario == "create":
        return None, ()

    def prepare(project: Path) -> tuple[str, ...]:
        first = faasops(project, "apply", "--auto-approve")
        if first.code != 0:
            raise RuntimeError(f"the initial apply failed:\n{first.output[-2000:]}")
        manifest = yaml.safe_load((project / "faas.yaml").read_text())
        functions = manifest["workspaces"][0]["functions"]
        if scenario == "update":
            next(f for f in functions if f["name"] == victim)["env"] = {"GREETING": f"changed {time.time_ns()}"}
            extra: tuple[str, ...] = ()
        else:
            manifest["workspaces"][0]["functions"] = [f for f in functions if f["name"] != victim]
            extra = ("--prune",)
        (project / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return extra

    return prepare, ((victim,) if scenario == "prune" else ())


def points_for(scenario: str, victim: str) -> list[KillPoint]:
    if scenario == "create":
        return all_kill_points()
    if scenario == "update":  # the workspace is unchanged: only the victim has steps
        return [p for p in all_kill_points() if p.address == f"{WORKSPACE}/{victim}"]
    return [KillPoint(f"{WORKSPACE}/{victim}", step, when) for step in ("delete", "record") for when in ("start", "during", "after")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=100, help="kill points to try (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--keep", type=Path, default=None, help="keep every run's project under this directory")
    args = parser.parse_args(argv)

    os.environ.setdefault("FAASOPS_BUILD_CACHE", str(Path.home() / ".cache" / "faasops-tests" / "builds"))
    rng = random.Random(args.seed)
    base = args.keep or Path(tempfile.mkdtemp(prefix="faasops-crash-sweep-"))
    plugin_dir = write_plugin(base / "plugin")
    reports: list[tuple[str, int, CaseReport]] = []
    started = time.monotonic()
    for i in range(args.runs):
        scenario = rng.choice(SCENARIOS)
        victim = rng.choice(list(FUNCTIONS))
        point = rng.choice(points_for(scenario, victim))
        if point.when == "during":
            point = KillPoint(point.address, point.step, point.when, round(rng.uniform(0.0, 0.1), 3))
        parallelism = rng.choice((1, 4))
        prepare, pruned = prepare_for(scenario, victim)
        workdir = base / f"run-{i:04d}"
        report = run_case(workdir, plugin_dir, point, parallelism=parallelism, prepare=prepare, pruned=pruned)
        reports.append((scenario, parallelism, report))
        status = "ok" if not report.problems else f"PROBLEMS: {len(report.problems)}"
        print(f"[{i + 1:>4}/{args.runs}] {scenario:<6} -p{parallelism} {report.point:<40} "
              f"died: {', '.join(report.died_at.get('running') or ['between steps']):<40} "
              f"{report.killed_s + report.recovered_s:5.1f}s {status}", flush=True)
        for problem in report.problems:
            print("         " + problem.splitlines()[0][:300], flush=True)
        if args.keep is None and not report.problems:
            clean(workdir)
    elapsed = time.monotonic() - started

    failed = [r for _, _, r in reports if r.problems]
    deaths: Counter[str] = Counter()
    for _, _, report in reports:
        running = report.died_at.get("running") or []
        steps = sorted({entry.rpartition(":")[2] for entry in running}) or ["between steps"]
        deaths.update(steps)
    kinds: dict[str, list[str]] = defaultdict(list)
    for report in failed:
        for problem in report.problems:
            kinds[problem.split(":")[0][:80]].append(report.point)
    per_run = [r.killed_s + r.recovered_s for _, _, r in reports]

    print()
    print(f"crash sweep: {len(reports)} runs (seed {args.seed}) in {elapsed:.0f}s, "
          f"{len(reports) - len(failed)} killed and converged cleanly, {len(failed)} with problems")
    print(f"  scenarios: {dict(Counter(s for s, _, _ in reports))}; parallelism: {dict(Counter(p for _, p, _ in reports))}")
    print(f"  died in: {', '.join(f'{step} {n}' for step, n in deaths.most_common())}")
    print(f"  tasks marked interrupted by the recovering apply: {sum(r.interrupted_tasks for _, _, r in reports)}")
    if per_run:
        per_run.sort()
        print(f"  per run (kill + recovery + plan): median {per_run[len(per_run) // 2]:.1f}s, max {per_run[-1]:.1f}s")
    for kind, points in sorted(kinds.items(), key=lambda item: -len(item[1])):
        print(f"  PROBLEM {kind} — {len(points)} run(s): {', '.join(points[:6])}{' …' if len(points) > 6 else ''}")
    if args.keep is None:
        print(f"  projects of runs with problems kept under {base}" if failed else "")
        if not failed:
            clean(base)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
