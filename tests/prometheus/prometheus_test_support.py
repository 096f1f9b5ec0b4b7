"""What the Prometheus tests share: the loads fed to Prometheus and how to run the CLI on a
copy of the cloud example that reads metrics from it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from cli_support import EXAMPLES, Result, run_faasops
from testkit.metrics_exporter import MIB, FunctionLoad

HELLO_PODS = 2
HELLO_CORES_PER_POD = 0.25
HELLO_MEMORY_PER_POD = 48 * MIB
# Rates are exact only where Prometheus has samples on both sides of a point; the history
# reaches past "now" so every point a test asks for is such a point.
HISTORY_BEFORE_S = 20 * 60
HISTORY_AFTER_S = 10 * 60
HISTORY_INTERVAL_S = 5.0


def loads(now: float) -> list[FunctionLoad]:
    """storefront/hello, and a same-named function of another workspace that must stay out of
    its numbers. storefront/checkout (declared in the example) has no series at all."""
    started = now - HISTORY_BEFORE_S
    return [
        FunctionLoad("storefront", "hello", pods=HELLO_PODS, cpu_cores=HELLO_CORES_PER_POD,
                     memory_bytes=HELLO_MEMORY_PER_POD, started=started),
        FunctionLoad("admin", "hello", pods=3, cpu_cores=1.5, memory_bytes=300 * MIB, started=started),
    ]


def cloud_copy(dest: Path, metrics: dict[str, Any]) -> Path:
    """The cloud example with ``faas.local.yaml`` pointing ``providers.metrics`` at ``metrics``."""
    project = dest / "cloud"
    shutil.copytree(EXAMPLES / "cloud", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    (project / "faas.local.yaml").write_text(yaml.safe_dump({"providers": {"metrics": metrics}}))
    return project


def metrics(project: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return run_faasops("-C", str(project), "-e", "local", "metrics", *args, env=env, timeout=120)
