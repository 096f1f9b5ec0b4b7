"""`faasops --help` and `--version` start fast: they import none of the heavy libraries, and the
CLI's eagerly spelled-out choices agree with what the lazily imported modules define
(bench/cli_startup_bench.py measures the time)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from faasops import cli
from faasops.plan_render import RENDERERS

HEAVY = ("boto3", "botocore", "kubernetes", "wasmtime", "jinja2", "fastapi", "uvicorn")
_RUN_CLI = "import sys; from faasops.cli import main; sys.argv = ['faasops', *sys.argv[1:]]; main()"


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``faasops ARGS`` under ``-X importtime``; its result and every module it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _RUN_CLI, *args],
                          capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return proc, modules


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_import_no_heavy_library(option: str) -> None:
    proc, modules = imported_modules(option)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "faasops.cli" in modules  # -X importtime did report
    heavy = sorted({name.split(".")[0] for name in modules} & set(HEAVY))
    assert heavy == [], f"`faasops {option}` imports {', '.join(heavy)}"


def test_version_prints_the_installed_version() -> None:
    proc, _ = imported_modules("--version")
    assert proc.stdout.strip() == f"faasops, version {importlib.metadata.version('faasops')}"


def test_plan_format_choices_are_the_plan_renderers() -> None:
    assert cli.PLAN_FORMATS == tuple(sorted(RENDERERS))
