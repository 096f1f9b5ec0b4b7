"""How long the ``faasops`` command takes to start: ``--help`` and ``--version`` against the
interpreter's own start-up in the same run, and which heavy libraries each one imports.

A CI job runs ``faasops`` many times (validate, plan, apply, invoke …), so start-up is paid on
every step. The baseline is ``python -c pass`` (the floor) and ``python -c "import click"`` (the
CLI framework alone); the figure that matters is what faasops adds on top. A third baseline
imports what ``faasops/cli.py`` imported eagerly before its imports moved into the commands (the
engine, executor, plan and plan renderer): what a command that needs them pays on top.
``-X importtime`` tells whether boto3, kubernetes, wasmtime or jinja2 — the heavy ones — load for
a command that needs none of them, and which of faasops' own modules cost most.

    .venv/bin/python bench/cli_startup_bench.py [--runs 10] [--top 12]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("boto3", "botocore", "kubernetes", "wasmtime", "jinja2", "fastapi", "uvicorn")
# What faasops/cli.py imported at its top until its imports became lazy.
EAGER = ("faasops.cli", "faasops.engine", "faasops.executor", "faasops.plan", "faasops.plan_render",
         "faasops.names", "faasops.providers", "faasops.hookspecs")


def faasops_command() -> list[str]:
    """The installed ``faasops`` entry point beside this interpreter."""
    return [str(Path(sys.executable).with_name("faasops"))]


def wall_times(command: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``command`` (one warm-up run first, not counted)."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def import_times(args: list[str]) -> dict[str, tuple[float, float]]:
    """Every module ``faasops ARGS`` imports, as (self ms, cumulative ms) from ``-X importtime``."""
    code = "import sys; from faasops.cli import main; sys.argv = ['faasops', *sys.argv[1:]]; main()"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True)
    found: dict[str, tuple[float, float]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        own, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if own.isdigit() and cumulative.isdigit():
            found[name.strip()] = (int(own) / 1000, int(cumulative) / 1000)
    return found


def heavy_imports(args: list[str]) -> dict[str, float]:
    """Cumulative import time (ms) of each heavy top-level package ``faasops ARGS`` imports."""
    return {name: cumulative for name, (_, cumulative) in import_times(args).items() if name in HEAVY}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--top", type=int, default=12, help="modules listed per command (default 12)")
    args = parser.parse_args(argv)

    cases = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("python -c 'import click' (baseline)", [sys.executable, "-c", "import click"]),
        ("faasops --version", [*faasops_command(), "--version"]),
        ("faasops --help", [*faasops_command(), "--help"]),
        ("eager imports of the old cli.py (baseline)", [sys.executable, "-c", "import " + ", ".join(EAGER)]),
    ]
    print(f"| command | runs | median s | min s | max s |\n|---|---|---|---|---|")
    medians = {}
    for label, command in cases:
        times = wall_times(command, args.runs)
        medians[label] = statistics.median(times)
        print(f"| {label} | {args.runs} | {medians[label]:.3f} | {min(times):.3f} | {max(times):.3f} |")
    baseline = medians["python -c 'import click' (baseline)"]
    for label in ("faasops --version", "faasops --help"):
        print(f"{label}: {medians[label] - baseline:.3f} s over the click baseline "
              f"({medians[label] / baseline:.1f}×)")
    for command in (["--version"], ["--help"]):
        times = import_times(command)
        loaded = {name: cumulative for name, (_, cumulative) in times.items() if name in HEAVY}
        shown = ", ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(loaded.items())) or "none"
        print(f"heavy libraries imported by `faasops {command[0]}`: {shown}")
        print(f"\nimport time of `faasops {command[0]}` ({len(times)} modules, "
              f"{sum(own for own, _ in times.values()):.0f} ms in all), faasops' own modules and the "
              f"{args.top} costliest others, by self time:\n")
        print("| module | self ms | cumulative ms |\n|---|---|---|")
        own = sorted((item for item in times.items() if item[0].split(".")[0] == "faasops"),
                     key=lambda item: -item[1][0])
        others = sorted((item for item in times.items() if item[0].split(".")[0] != "faasops"),
                        key=lambda item: -item[1][0])[:args.top]
        for name, (self_ms, cumulative) in [*own, *others]:
            print(f"| {name} | {self_ms:.1f} | {cumulative:.1f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
