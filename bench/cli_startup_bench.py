"""How long the ``faasops`` command takes to start: ``--help`` and ``--version`` against the
interpreter's own start-up in the same run, and which heavy libraries each one imports.

A CI job runs ``faasops`` many times (validate, plan, apply, invoke …), so start-up is paid on
every step. The baseline is ``python -c pass`` (the floor) and ``python -c "import click"`` (the
CLI framework alone); the figure that matters is what faasops adds on top. ``-X importtime``
tells whether boto3, kubernetes, wasmtime or jinja2 — the heavy ones — load for a command that
needs none of them.

    .venv/bin/python bench/cli_startup_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("boto3", "botocore", "kubernetes", "wasmtime", "jinja2", "fastapi", "uvicorn")


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


def heavy_imports(args: list[str]) -> dict[str, float]:
    """Cumulative import time (ms) of each heavy top-level package ``faasops ARGS`` imports."""
    code = "import sys; from faasops.cli import main; sys.argv = ['faasops', *sys.argv[1:]]; main()"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True)
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if name in HEAVY and cumulative.isdigit():
            found[name] = int(cumulative) / 1000
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    args = parser.parse_args(argv)

    cases = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("python -c 'import click' (baseline)", [sys.executable, "-c", "import click"]),
        ("faasops --version", [*faasops_command(), "--version"]),
        ("faasops --help", [*faasops_command(), "--help"]),
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
        loaded = heavy_imports(command)
        shown = ", ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(loaded.items())) or "none"
        print(f"heavy libraries imported by `faasops {command[0]}`: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
