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
5. **apply one changed**: one function's ``env`` changes; apply (plans all N, applies one).

Every faasops measurement runs in its own process (:mod:`scale_worker`), so its peak RSS is its
own. Results go to ``--json`` and, unless ``--quick`` or ``--no-markdown``, into the results
section of ``BENCHMARKS.md``.
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

from scale_project import Endpoints, Shape, change_one_function, default_workspaces, generate  # noqa: E402
from scale_services import BenchServices  # noqa: E402

DEFAULT_SIZES = (100, 1000, 10000)
QUICK_SIZES = (20, 100)
DEFAULT_FULL_APPLY_MAX = 10000
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RESULTS_START = "<!-- scale-results:start (written by bench/scale.py) -->"
RESULTS_END = "<!-- scale-results:end -->"
SERVICES = ("dynamodb", "s3", "ecr", "registry", "kubernetes")


class BenchError(RuntimeError):
    """A measurement did not do what it should (a failed apply, a plan with changes …)."""


# ------------------------------------------------------------------------------ measurements


def run_worker(services: BenchServices, phase: str, project: Path, *extra: str) -> dict[str, Any]:
    """One :mod:`scale_worker` measurement in a fresh process; its JSON, plus the emulator's
    own count of the Kubernetes requests it served meanwhile."""
    assert services.kube is not None
    services.kube.reset_stats()
    command = [sys.executable, str(BENCH / "scale_worker.py"), phase, "--project", str(project), *extra]
    finished = subprocess.run(command, capture_output=True, text=True, env=services.env)
    if finished.returncode != 0:
        raise BenchError(f"{phase} failed (exit {finished.returncode}):\n{finished.stderr[-4000:]}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    result["kube_server_requests"] = services.kube_stats()["total"]
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
                       Endpoints(services.moto.url, services.registry.url, services.kubeconfig, options.build_cache))
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
        log("  kubectl apply --server-side")
        out["kubectl_apply"] = run_timed(services, [
            kubectl, "apply", "--server-side", "--field-manager", "faasops", "-f", str(manifests)])
        shutil.rmtree(manifests, ignore_errors=True)

    log("  apply one changed function")
    change_one_function(project, shape)
    changed = run_worker(services, "apply", project, *parallelism)
    check_apply(changed, 1, "apply one changed")
    out["apply_one_changed"] = changed
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
    per_object = size["plan_per_object"]
    out = {
        "per_object_vs_batched_time": per_object["seconds"]["plan"] / plan_s,
        "per_object_vs_batched_calls": sum(total_calls(per_object).values()) / plan_calls,
    }
    if "kubectl_diff" in size:
        out["kubectl_diff_vs_plan_time"] = size["kubectl_diff"]["seconds"] / plan_s
        out["kubectl_diff_vs_plan_cli_time"] = size["kubectl_diff"]["seconds"] / size["plan_cli"]["seconds"]
        # The part of faasops' plan that does what kubectl diff does: read the live objects and
        # compare them with freshly rendered manifests.
        steps = size["plan"]["breakdown"]
        out["kubectl_diff_vs_kubernetes_side_time"] = size["kubectl_diff"]["seconds"] / (steps["observe"] + steps["render"])
        out["kubectl_diff_vs_plan_kube_requests"] = size["kubectl_diff"]["kube_server_requests"] / max(
            1, size["plan"]["kube_server_requests"])
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
        plan, per_object = size["plan"], size["plan_per_object"]
        row = [
            f"{size['functions']:,}",
            f"{plan['seconds']['plan']:.2f} s, {sum(total_calls(plan).values())} calls",
            f"{per_object['seconds']['plan']:.2f} s, {sum(total_calls(per_object).values())} calls",
        ]
        if "kubectl_diff" in size:
            row += [f"{size['kubectl_diff']['seconds']:.1f} s, {size['kubectl_diff']['kube_server_requests']} requests",
                    f"{size['kubectl_apply']['seconds']:.1f} s, {size['kubectl_apply']['kube_server_requests']} requests"]
        else:
            row += ["–", "–"]
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
        if "kubectl_diff_vs_plan_time" in r:
            kubectl_cells = [f"{r['kubectl_diff_vs_plan_time']:.2f}×", f"{r['kubectl_diff_vs_plan_cli_time']:.2f}×",
                             f"{r['kubectl_diff_vs_kubernetes_side_time']:.1f}×",
                             f"{r['kubectl_diff_vs_plan_kube_requests']:.0f}×",
                             f"{r['kubectl_apply_vs_apply_one_changed_time']:.2f}×"]
        else:
            kubectl_cells = ["–"] * 5
        lines.append(f"| {size['functions']:,} | " + " | ".join(kubectl_cells[:4]) + " | "
                     f"{r['per_object_vs_batched_time']:.1f}× | {r['per_object_vs_batched_calls']:.0f}× | {kubectl_cells[4]} |")
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
    lines += ["", RESULTS_END]
    return "\n".join(lines)


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
                             "moto serves the 14 task writes per function at ~8 ms each, one at a time)")
    parser.add_argument("--parallelism", type=int, default=4, help="apply --parallelism (default %(default)s)")
    parser.add_argument("--build-cache", type=Path,
                        help="componentize-py build cache (default: $FAASOPS_BUILD_CACHE, else a fresh one, "
                             "so the first apply makes the one real build)")
    parser.add_argument("--skip-kubectl", action="store_true", help="leave out the kubectl baselines")
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
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.workspaces = args.workspaces or 10
        args.full_apply_max = 0
        args.no_markdown = True
    args.sizes = args.sizes or list(DEFAULT_SIZES)
    args.kubectl = _kubectl()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown_from:
        write_markdown(args.markdown, json.loads(args.markdown_from.read_text()))
        log(f"wrote {args.markdown}")
        return 0
    command = "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="faasops-scale-"))
    if args.build_cache is None:
        env_cache = os.environ.get("FAASOPS_BUILD_CACHE")
        args.build_cache = Path(env_cache) if env_cache else workdir / "build-cache"
    results: dict[str, Any] = {"command": command.strip(), "machine": machine(), "sizes": [],
                               "load_before": os.getloadavg()[0]}
    try:
        with BenchServices(workdir, stock_moto=args.stock_moto) as services:
            for n in args.sizes:
                shape = Shape(n, args.workspaces or default_workspaces(n))
                size = measure_size(services, workdir, shape, args)
                size["ratios"] = ratios(size)
                results["sizes"].append(size)
                log(summary_line(size))
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["seconds"] = time.perf_counter() - started
    results["load_after"] = os.getloadavg()[0]
    results["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not args.no_markdown:
        write_markdown(args.markdown, results)
        log(f"wrote {args.markdown}")
    return 0


def summary_line(size: dict[str, Any]) -> str:
    plan = size["plan"]
    calls = total_calls(plan)
    text = (f"{size['functions']} functions: no-op plan {plan['seconds']['plan']:.2f} s "
            f"(+{plan['seconds']['load']:.2f} s load), calls " + ", ".join(f"{s} {calls[s]}" for s in SERVICES))
    if "kubectl_diff" in size:
        text += f"; kubectl diff {size['kubectl_diff']['seconds']:.1f} s ({size['ratios']['kubectl_diff_vs_plan_time']:.0f}×)"
    return text


if __name__ == "__main__":
    sys.exit(main())
