"""The scale benchmark: faasops plan/apply on 100 to 10,000 functions against moto and the
Kubernetes emulator, side by side with real kubectl and with per-object refresh.

Run (the services are started here; nothing else needs to run)::

    /opt/fvenv/bin/python bench/scale.py                      # 100, 1,000, 10,000 → BENCHMARKS.md
    /opt/fvenv/bin/python bench/scale.py --sizes 100,1000     # other sizes
    /opt/fvenv/bin/python bench/scale.py --quick --json out.json   # 20 and 100 functions, < 1 min

For each size N (over W workspaces, see ``--workspaces``) in a fresh generated project
(:mod:`scale_project`: every function runs the same source, so one build serves all):

1. **apply new**: apply the N new functions (``apply``; above ``--full-apply-max`` (10,000) functions
   ``apply-without-tasks``, see :mod:`scale_worker`);
2. **no-op plan**: ``Engine.plan()`` in a fresh process (wall time, API calls per service, peak
   RSS), and ``faasops plan --detailed-exitcode`` end to end;
3. **per-object refresh**: the same plan reading one DynamoDB item and one SpinApp per
   function (:mod:`per_object_refresh`);
4. **kubectl**: ``kubectl diff --server-side`` and ``kubectl apply --server-side`` over the same
   N rendered SpinApp manifests against the same emulator;
5. **apply one changed**: one function's ``env`` changes; apply (plans all N, applies one);
6. **apply all changed**: every function changes at once (``--all-changed``: ``resources``, the
   default memory limit — a redeploy with a cached build and nothing to push; ``env`` — a new
   artifact per function), applied with ``--all-parallelism`` (16): wall time, API calls per
   function by service, and moto's own busy time (it serves one request at a time, see
   :mod:`scale_moto`), which real DynamoDB would not add.

Each size is measured at each latency of ``--latency`` (default both): ``none`` talks to the
services directly, ``injected`` through the fault proxies of :mod:`scale_latency` (Kubernetes API
5 ms, DynamoDB 5 ms, S3 15 ms, registry and ECR API 20 ms per request; ``--latency-ms``).

Every faasops measurement runs in its own process (:mod:`scale_worker`), so its peak RSS is its
own. Results go to ``--json``, the growth curves (time and calls against N, both latencies,
beside the per-object-refresh and kubectl baselines) to ``--plot`` (a PNG, :mod:`scale_plot`),
and, unless ``--quick`` or ``--no-markdown``, into the results section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from scale_latency import Latency  # noqa: E402
from scale_project import (  # noqa: E402
    CHANGES,
    Endpoints,
    Shape,
    change_all_functions,
    change_one_function,
    default_workspaces,
    generate,
)
from scale_services import BenchServices  # noqa: E402

DEFAULT_SIZES = (100, 1000, 10000)
QUICK_SIZES = (20, 100)
DEFAULT_FULL_APPLY_MAX = 10000
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RESULTS_START = "<!-- scale-results:start (written by bench/scale.py) -->"
RESULTS_END = "<!-- scale-results:end -->"
SERVICES = ("dynamodb", "s3", "ecr", "registry", "kubernetes")
LATENCIES = ("none", "injected")
DEFAULT_PLOT = ROOT / "docs" / "scale-growth.png"


class BenchError(RuntimeError):
    """A measurement did not do what it should (a failed apply, a plan with changes …)."""


# ------------------------------------------------------------------------------ measurements


def run_worker(services: BenchServices, phase: str, project: Path, *extra: str) -> dict[str, Any]:
    """One :mod:`scale_worker` measurement in a fresh process; its JSON, plus the emulator's
    own count of the Kubernetes requests it served meanwhile."""
    assert services.kube is not None
    services.kube.reset_stats()
    services.moto_busy(reset=True)
    command = [sys.executable, str(BENCH / "scale_worker.py"), phase, "--project", str(project), *extra]
    finished = subprocess.run(command, capture_output=True, text=True, env=services.env)
    if finished.returncode != 0:
        raise BenchError(f"{phase} failed (exit {finished.returncode}):\n{finished.stderr[-4000:]}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    result["kube_server_requests"] = services.kube_stats()["total"]
    result["moto_busy"] = services.moto_busy()
    return result


def run_timed(services: BenchServices, command: list[str]) -> dict[str, Any]:
    """Run a command (kubectl, the faasops CLI) against the services: wall time, exit code and
    the Kubernetes requests the emulator served."""
    assert services.kube is not None
    services.kube.reset_stats()
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, env=services.env)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise BenchError(f"{' '.join(command[:4])} … exited {finished.returncode}:\n"
                         f"{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}")
    stats = services.kube_stats()
    return {"seconds": seconds, "exit_code": finished.returncode, "kube_server_requests": stats["total"],
            "kube_requests_by_verb": stats["by_verb"], "stdout_lines": len(finished.stdout.splitlines())}


def total_calls(result: dict[str, Any]) -> dict[str, int]:
    """API calls per service (DynamoDB, S3, ECR API, registry HTTP, Kubernetes) of a worker run."""
    return {service: sum(result["calls"][service].values()) for service in SERVICES}


def check_apply(result: dict[str, Any], expected: int, what: str) -> None:
    outcome = result["result"]
    if outcome["failed"] or outcome["skipped"] or outcome["applied"] != expected:
        raise BenchError(f"{what}: applied {outcome['applied']} of {expected}, failed {outcome['failed']}, "
                         f"skipped {outcome['skipped']}: {outcome['errors']}")


def measure_size(services: BenchServices, workdir: Path, shape: Shape, options: argparse.Namespace) -> dict[str, Any]:
    """Every measurement for one project size (see the module docstring)."""
    services.reset()
    assert services.moto is not None and services.registry is not None
    project = generate(workdir / shape.project, shape,
                       Endpoints(services.moto_url, services.registry_url, services.kubeconfig, options.build_cache))
    resources = shape.functions + shape.workspaces
    out: dict[str, Any] = {"functions": shape.functions, "workspaces": shape.workspaces}
    parallelism = ("--parallelism", str(options.parallelism))

    log(f"{shape.functions} functions / {shape.workspaces} workspaces: apply new")
    full = shape.functions <= options.full_apply_max
    applied = run_worker(services, "apply" if full else "apply-without-tasks", project, *parallelism)
    check_apply(applied, resources, "apply new")
    out["apply_new"] = applied

    log("  no-op plan")
    plan = run_worker(services, "plan", project)
    if plan["plan"]["no-op"] != resources or plan["plan"]["add"] + plan["plan"]["change"] + plan["plan"]["destroy"]:
        raise BenchError(f"the plan after apply is not a no-op: {plan['plan']}")
    out["plan"] = plan
    faasops = str(Path(sys.executable).parent / "faasops")
    out["plan_cli"] = run_timed(services, [faasops, "-C", str(project), "plan", "--detailed-exitcode"])

    if not options.skip_per_object:
        log("  no-op plan, per-object refresh")
        per_object = run_worker(services, "plan-per-object", project)
        if per_object["plan"] != plan["plan"]:
            raise BenchError(f"per-object refresh planned differently: {per_object['plan']} vs {plan['plan']}")
        out["plan_per_object"] = per_object

    if not options.skip_kubectl:
        manifests = workdir / f"{shape.project}-manifests"
        rendered = run_worker(services, "manifests", project, "--out", str(manifests))
        out["manifests"] = rendered["manifests"]
        kubectl = options.kubectl
        log(f"  kubectl diff --server-side ({rendered['manifests']} SpinApps)")
        # The manifests are what faasops applied: kubectl must find no differences (exit 0, not 1).
        out["kubectl_diff"] = run_timed(services, [kubectl, "diff", "--server-side", "-f", str(manifests)])
        if not options.skip_kubectl_apply:
            log("  kubectl apply --server-side")
            out["kubectl_apply"] = run_timed(services, [
                kubectl, "apply", "--server-side", "--field-manager", "faasops", "-f", str(manifests)])
        shutil.rmtree(manifests, ignore_errors=True)

    log("  apply one changed function")
    change_one_function(project, shape)
    changed = run_worker(services, "apply", project, *parallelism)
    check_apply(changed, 1, "apply one changed")
    out["apply_one_changed"] = changed

    for round_, change in enumerate(options.all_changed, start=1):
        log(f"  apply all {shape.functions} functions changed ({change}), parallelism {options.all_parallelism}")
        change_all_functions(project, shape, change, round_)
        applied_all = run_worker(services, "apply", project, "--parallelism", str(options.all_parallelism))
        check_apply(applied_all, shape.functions, f"apply all changed ({change})")
        out.setdefault("apply_all_changed", {})[change] = applied_all
    if not options.keep:
        shutil.rmtree(project, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)

    def tool_version(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    kubectl = "unknown"
    try:
        kubectl = json.loads(subprocess.run([_kubectl(), "version", "--client", "-o", "json"], capture_output=True,
                                            text=True, timeout=30).stdout)["clientVersion"]["gitVersion"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        pass
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "moto": version("moto"), "boto3": version("boto3"), "kubernetes_client": version("kubernetes"),
        "pyyaml_libyaml": _libyaml(), "kubectl": kubectl,
        "docker_registry": tool_version(["docker-registry", "--version"]),
    }


def _libyaml() -> bool:
    import yaml

    return bool(getattr(yaml, "__with_libyaml__", False))


def ratios(size: dict[str, Any]) -> dict[str, float]:
    plan_s = size["plan"]["seconds"]["plan"]
    plan_calls = sum(total_calls(size["plan"]).values())
    out: dict[str, float] = {}
    if "plan_per_object" in size:
        per_object = size["plan_per_object"]
        out["per_object_vs_batched_time"] = per_object["seconds"]["plan"] / plan_s
        out["per_object_vs_batched_calls"] = sum(total_calls(per_object).values()) / plan_calls
    if "kubectl_diff" in size:
        out["kubectl_diff_vs_plan_time"] = size["kubectl_diff"]["seconds"] / plan_s
        out["kubectl_diff_vs_plan_cli_time"] = size["kubectl_diff"]["seconds"] / size["plan_cli"]["seconds"]
        # The part of faasops' plan that does what kubectl diff does: read the live objects and
        # compare them with freshly rendered manifests.
        steps = size["plan"]["breakdown"]
        out["kubectl_diff_vs_kubernetes_side_time"] = size["kubectl_diff"]["seconds"] / (steps["observe"] + steps["render"])
        out["kubectl_diff_vs_plan_kube_requests"] = size["kubectl_diff"]["kube_server_requests"] / max(
            1, size["plan"]["kube_server_requests"])
        if "kubectl_apply" in size:
            out["kubectl_apply_vs_apply_one_changed_time"] = (
                size["kubectl_apply"]["seconds"] / size["apply_one_changed"]["seconds"]["total"])
    return out


def markdown(results: dict[str, Any]) -> str:
    """The results section of BENCHMARKS.md."""
    m = results["machine"]
    sizes = results["sizes"]
    lines = [
        RESULTS_START,
        f"Measured {results['finished_at']} with `{results['command']}` "
        f"(total {results['seconds'] / 60:.1f} min).",
        "",
        f"**Machine:** {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, {m['os']}; "
        f"Python {m['python']} (PyYAML with libyaml: {'yes' if m['pyyaml_libyaml'] else 'no'}); "
        f"moto {m['moto']} (boto3 {m['boto3']}), kubectl {m['kubectl']}, kubernetes client "
        f"{m['kubernetes_client']}, {m['docker_registry']}. moto, docker-registry, the Kubernetes "
        "emulator, kubectl and faasops all share these CPUs; load average "
        f"{results['load_before']:.1f} before the run, {results['load_after']:.1f} after.",
        "",
        "#### No-op plan",
        "",
        "| functions | workspaces | `faasops plan` CLI | in-process load + plan | plan: DynamoDB read | ∥ Kubernetes observe | drift check (full renders) | faasops CPU in plan | peak RSS | DynamoDB | S3 | ECR | registry | Kubernetes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        plan = size["plan"]
        calls, steps = total_calls(plan), plan["breakdown"]
        lines.append(
            f"| {size['functions']:,} | {size['workspaces']} | {size['plan_cli']['seconds']:.2f} s | "
            f"{plan['seconds']['load']:.2f} + {plan['seconds']['plan']:.2f} s | {steps['read_state']:.2f} s | "
            f"{steps['observe']:.2f} s | {steps['render']:.2f} s ({steps.get('renders', '?')}) | {steps['cpu']:.2f} s | {plan['max_rss_mb']:.0f} MB | "
            + " | ".join(str(calls[s]) for s in SERVICES) + " |"
        )
    lines += [
        "",
        "API calls are counted by the providers (one per HTTP request, pages included); the emulator's "
        "own count of Kubernetes requests agrees: "
        + ", ".join(f"{s['plan']['kube_server_requests']}" for s in sizes) + ".",
        "",
        "#### Baselines (same N, same emulator, same run)",
        "",
        "| functions | faasops plan | per-object refresh plan | `kubectl diff --server-side` | `kubectl apply --server-side` | faasops apply, 1 changed |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        plan, per_object = size["plan"], size.get("plan_per_object")
        row = [
            f"{size['functions']:,}",
            f"{plan['seconds']['plan']:.2f} s, {sum(total_calls(plan).values())} calls",
            f"{per_object['seconds']['plan']:.2f} s, {sum(total_calls(per_object).values())} calls" if per_object else "–",
        ]
        for key in ("kubectl_diff", "kubectl_apply"):
            row.append(f"{size[key]['seconds']:.1f} s, {size[key]['kube_server_requests']} requests" if key in size else "–")
        one = size["apply_one_changed"]
        row.append(f"{one['seconds']['total']:.2f} s ({one['result']['applied']} applied, "
                   f"{one['result']['builds']} builds)")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "Ratios (> 1: faasops is ahead):",
        "",
        "| functions | kubectl diff ÷ faasops plan | ÷ `faasops plan` CLI | ÷ faasops' Kubernetes side (observe + drift check, summed though they overlap) | Kubernetes requests | per-object ÷ batched plan: time | calls | kubectl apply ÷ faasops apply 1 changed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        r = size["ratios"]
        def cell(key: str, spec: str) -> str:
            return f"{r[key]:{spec}}×" if key in r else "–"

        lines.append("| " + " | ".join([
            f"{size['functions']:,}", cell("kubectl_diff_vs_plan_time", ".2f"), cell("kubectl_diff_vs_plan_cli_time", ".2f"),
            cell("kubectl_diff_vs_kubernetes_side_time", ".1f"), cell("kubectl_diff_vs_plan_kube_requests", ".0f"),
            cell("per_object_vs_batched_time", ".1f"), cell("per_object_vs_batched_calls", ".0f"),
            cell("kubectl_apply_vs_apply_one_changed_time", ".2f")]) + " |")
    lines += [
        "",
        "#### Apply",
        "",
        "| functions | apply new | of which plan | per function | real builds | cached builds | pushes | peak RSS | DynamoDB | S3 | ECR | registry | Kubernetes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        applied = size["apply_new"]
        outcome, calls = applied["result"], total_calls(applied)
        kind = "full" if applied["phase"] == "apply" else "without task history"
        lines.append(
            f"| {size['functions']:,} | {applied['seconds']['total']:.0f} s ({kind}) | {applied['seconds']['plan']:.2f} s | "
            f"{1000 * applied['seconds']['apply'] / size['functions']:.0f} ms | {outcome['builds']} | "
            f"{outcome['cached_builds']} | {outcome['pushes']} | {applied['max_rss_mb']:.0f} MB | "
            + " | ".join(str(calls[s]) for s in SERVICES) + " |"
        )
    lines += latency_sections(results)
    lines += ["", RESULTS_END]
    return "\n".join(lines)


def _times(ratio: float) -> str:
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def latency_sections(results: dict[str, Any]) -> list[str]:
    """The comparisons at each latency measured, apply with every function changed, and the
    growth curves."""
    runs: dict[str, list[dict[str, Any]]] = results.get("runs") or {}
    if not runs:
        return []
    delays = ", ".join(f"{name} {ms:g} ms" for name, ms in (results.get("latency_ms") or {}).items())
    lines = [
        "",
        "#### No-op plan against `kubectl diff --server-side`, without and with injected latency",
        "",
        f"Injected latency: every request held by a fault proxy before it is forwarded ({delays}; "
        "`bench/scale_latency.py`). kubectl reads and dry-run-applies each SpinApp (two requests per "
        "object); faasops lists each namespace once per kind.",
        "",
        "| functions | latency | `faasops plan` CLI | in-process plan | per-object refresh | `kubectl diff --server-side` | kubectl ÷ in-process plan | kubectl ÷ CLI |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, sizes in runs.items():
        for size in sizes:
            plan = size["plan"]
            kubectl = size.get("kubectl_diff")
            cells = [f"{size['functions']:,}", label, f"{size['plan_cli']['seconds']:.2f} s",
                     f"{plan['seconds']['plan']:.2f} s",
                     f"{size['plan_per_object']['seconds']['plan']:.2f} s" if "plan_per_object" in size else "–"]
            if kubectl:
                cells += [f"{kubectl['seconds']:.1f} s", _times(size['ratios']['kubectl_diff_vs_plan_time']),
                          _times(size['ratios']['kubectl_diff_vs_plan_cli_time'])]
            else:
                cells += ["–", "–", "–"]
            lines.append("| " + " | ".join(cells) + " |")
    all_changed = [(label, size, change, applied) for label, sizes in runs.items() for size in sizes
                   for change, applied in (size.get("apply_all_changed") or {}).items()]
    if all_changed:
        lines += [
            "",
            "#### Apply with every function changed (cached build)",
            "",
            "`resources`: the project's default memory limit changes (new manifests, the recorded "
            "artifact: nothing to push); `env`: every function gets a new `env` entry (a new artifact "
            "each). Calls per function include the run's fixed calls (lock, state read, observe) "
            "spread over N. moto serves one request at a time and spends time per item that DynamoDB "
            "does not (it is CPU-bound Python on the same 2 cores): its busy time is measured inside "
            "moto and subtracted in the last time column, which is therefore an estimate of the apply "
            "against a service answering in the injected latency alone.",
            "",
            "| functions | latency | change | parallelism | apply (wall) | moto busy | wall − moto busy | DynamoDB | S3 | ECR | registry | Kubernetes | calls per function |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, size, change, applied in all_changed:
            per = calls_per_function(applied, size["functions"])
            wall, busy = applied["seconds"]["total"], applied["moto_busy"]["seconds"]
            lines.append(
                f"| {size['functions']:,} | {label} | {change} | {applied.get('parallelism', '?')} | {wall:.1f} s | "
                f"{busy:.1f} s | {max(0.0, wall - busy):.1f} s | "
                + " | ".join(f"{per[s]:.2f}" for s in SERVICES) + f" | {sum(per.values()):.2f} |"
            )
    if results.get("plot"):
        plot = Path(results["plot"])
        shown = plot.relative_to(ROOT) if plot.is_absolute() and plot.is_relative_to(ROOT) else plot
        lines += ["", "#### Growth curves", "",
                  f"![plan and apply time and API calls against N, both latencies]({shown.as_posix()})"]
    return lines


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    """Replace the results section of ``path`` (between the markers), keeping the prose."""
    section = markdown(results)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{RESULTS_START}\n{RESULTS_END}\n"
    pattern = re.compile(re.escape(RESULTS_START) + ".*?" + re.escape(RESULTS_END), re.S)
    if not pattern.search(text):
        text = text.rstrip("\n") + f"\n\n{RESULTS_START}\n{RESULTS_END}\n"
    path.write_text(pattern.sub(lambda _: section, text))


# ------------------------------------------------------------------------------ command line


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else (shutil.which("kubectl") or "kubectl")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _latencies(text: str) -> list[str]:
    chosen = list(LATENCIES) if text == "both" else [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or any(part not in LATENCIES for part in chosen):
        raise argparse.ArgumentTypeError(f"not none, injected or both: {text!r}")
    return chosen


def _changes(text: str) -> list[str]:
    if text == "none":
        return []
    chosen = list(CHANGES) if text == "both" else [part.strip() for part in text.split(",") if part.strip()]
    if any(part not in CHANGES for part in chosen):
        raise argparse.ArgumentTypeError(f"not resources, env, both or none: {text!r}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, help="numbers of functions (default 100,1000,10000; --quick: 20,100)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 and 100 functions over 10 workspaces, apply without task history, "
                             "no BENCHMARKS.md")
    parser.add_argument("--workspaces", type=int,
                        help="workspaces per project (default: 10 up to 1,000 functions, then N/100, at most 100)")
    parser.add_argument("--full-apply-max", type=int, default=DEFAULT_FULL_APPLY_MAX,
                        help="largest size whose 'apply new' records the task history too (default %(default)s; "
                             "moto serves the task writes — two per function — one request at a time)")
    parser.add_argument("--parallelism", type=int, default=4, help="apply --parallelism (default %(default)s)")
    parser.add_argument("--latency", type=_latencies, default=list(LATENCIES),
                        help="none, injected or both (default: both; --quick: none)")
    parser.add_argument("--latency-ms", default="default",
                        help="injected delay per request and service, e.g. kubernetes=5,dynamodb=5,s3=15,"
                             "registry=20,ecr=20 (the default)")
    parser.add_argument("--all-changed", type=_changes, default=["resources"],
                        help="'apply all changed' runs, in order: resources, env, both or none "
                             "(default resources)")
    parser.add_argument("--all-parallelism", type=int, default=16,
                        help="--parallelism of 'apply all changed' (default %(default)s)")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT,
                        help="growth curves PNG (default docs/scale-growth.png); needs matplotlib")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--build-cache", type=Path,
                        help="componentize-py build cache (default: $FAASOPS_BUILD_CACHE, else a fresh one, "
                             "so the first apply makes the one real build)")
    parser.add_argument("--skip-kubectl", action="store_true", help="leave out the kubectl baselines")
    parser.add_argument("--skip-kubectl-apply", action="store_true", help="leave out `kubectl apply` only")
    parser.add_argument("--skip-per-object", action="store_true", help="leave out the per-object refresh plan")
    parser.add_argument("--stock-moto", action="store_true",
                        help="keep moto's whole-table transaction rollback copies, Query serializer and "
                             "whole-table Query walks (see bench/scale_moto.py)")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--markdown", type=Path, default=BENCHMARKS_MD,
                        help="file whose results section is rewritten (default BENCHMARKS.md)")
    parser.add_argument("--no-markdown", action="store_true", help="don't touch BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the generated projects (printed)")
    parser.add_argument("--markdown-from", type=Path, metavar="JSON",
                        help="measure nothing: rewrite the results section from a --json file of an earlier run")
    given = argv if argv is not None else sys.argv[1:]
    quick_latency = not any(arg == "--latency" or arg.startswith("--latency=") for arg in given)
    args = parser.parse_args(argv)
    try:
        Latency.parse(args.latency_ms)
    except ValueError as exc:
        parser.error(f"--latency-ms: {exc}")
    if args.quick:
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.workspaces = args.workspaces or 10
        args.full_apply_max = 0
        args.no_markdown = True
        args.no_plot = True
        if quick_latency:
            args.latency = ["none"]
    args.sizes = args.sizes or list(DEFAULT_SIZES)
    args.kubectl = _kubectl()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown_from:
        earlier = json.loads(args.markdown_from.read_text())
        if not args.no_plot:
            from scale_plot import plot_growth

            plot_growth(earlier, args.plot)
            earlier["plot"] = str(args.plot)
            log(f"wrote {args.plot}")
        write_markdown(args.markdown, earlier)
        log(f"wrote {args.markdown}")
        return 0
    command = "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="faasops-scale-"))
    if args.build_cache is None:
        env_cache = os.environ.get("FAASOPS_BUILD_CACHE")
        args.build_cache = Path(env_cache) if env_cache else workdir / "build-cache"
    latency = Latency.parse(args.latency_ms)
    results: dict[str, Any] = {"command": command.strip(), "machine": machine(), "sizes": [],
                               "load_before": os.getloadavg()[0], "latency_ms": dict(latency.ms),
                               "runs": {}}
    try:
        with BenchServices(workdir, stock_moto=args.stock_moto) as services:
            for label in args.latency:
                if label == "injected":
                    services.start_latency(args.latency_ms)
                    log(f"injected latency: {latency.describe()}")
                run = results["runs"].setdefault(label, [])
                try:
                    for n in args.sizes:
                        shape = Shape(n, args.workspaces or default_workspaces(n),
                                      "" if label == args.latency[0] else f"latency-{label}")
                        size = measure_size(services, workdir / label, shape, args)
                        size["latency"] = label
                        size["ratios"] = ratios(size)
                        run.append(size)
                        log(f"[latency {label}] " + summary_line(size))
                        if args.json:  # what is measured so far survives a later failure
                            args.json.write_text(json.dumps({**results, "sizes": _main_sizes(results)}, indent=2))
                finally:
                    services.stop_latency()
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["sizes"] = _main_sizes(results)
    results["seconds"] = time.perf_counter() - started
    results["load_after"] = os.getloadavg()[0]
    results["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not args.no_plot:
        from scale_plot import plot_growth

        plot_growth(results, args.plot)
        results["plot"] = str(args.plot)
        log(f"wrote {args.plot}")
    if not args.no_markdown:
        write_markdown(args.markdown, results)
        log(f"wrote {args.markdown}")
    return 0


def _main_sizes(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The sizes of the first latency measured (the tables' ``sizes``, as before latencies)."""
    runs = results.get("runs") or {}
    return next(iter(runs.values()), results.get("sizes", []))


def summary_line(size: dict[str, Any]) -> str:
    plan = size["plan"]
    calls = total_calls(plan)
    text = (f"{size['functions']} functions: no-op plan {plan['seconds']['plan']:.2f} s "
            f"(+{plan['seconds']['load']:.2f} s load), calls " + ", ".join(f"{s} {calls[s]}" for s in SERVICES))
    if "kubectl_diff" in size:
        text += (f"; kubectl diff {size['kubectl_diff']['seconds']:.1f} s "
                 f"({size['ratios']['kubectl_diff_vs_plan_time']:.0f}× in process, "
                 f"{size['ratios']['kubectl_diff_vs_plan_cli_time']:.0f}× the CLI's {size['plan_cli']['seconds']:.2f} s)")
    for change, applied in (size.get("apply_all_changed") or {}).items():
        per = calls_per_function(applied, size["functions"])
        text += (f"; apply all changed ({change}) {applied['seconds']['total']:.1f} s "
                 f"(moto busy {applied['moto_busy']['seconds']:.1f} s), calls/function "
                 + ", ".join(f"{s} {per[s]:.2f}" for s in SERVICES) + f" = {sum(per.values()):.2f}")
    return text


def calls_per_function(result: dict[str, Any], functions: int) -> dict[str, float]:
    """API calls per function of an apply, by service (the run's own fixed calls — lock, state
    read, observe — included, spread over the functions)."""
    return {service: count / functions for service, count in total_calls(result).items()}


if __name__ == "__main__":
    sys.exit(main())
