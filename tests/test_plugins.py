"""Plugins load through entry points or $FAASOPS_PLUGINS, and the contract is enforced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_support import EXAMPLES, run_faasops

VETO = '''
from faasops import hookimpl

@hookimpl
def faasops_check_plan(plan, project):
    return [f"{c.address}: no new functions on Fridays" for c in plan.changes
            if c.kind == "function" and c.action.value == "create"]
'''

MISSPELLED = '''
from faasops import hookimpl

@hookimpl
def faasops_check_plans(plan, project):
    return []
'''


def plugin_env(tmp_path: Path, name: str, source: str) -> dict[str, str]:
    (tmp_path / f"{name}.py").write_text(source)
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "FAASOPS_PLUGINS": name}


def test_plugin_from_env_var_vetoes_a_plan(hello_project: Path, tmp_path: Path) -> None:
    env = plugin_env(tmp_path, "friday_policy", VETO)
    listed = run_faasops("plugins", "--format", "json", env=env)
    assert "friday_policy" in {p["name"] for p in json.loads(listed.out)["plugins"]}
    vetoed = run_faasops("-C", str(hello_project), "plan", env=env)
    assert vetoed.code == 1
    assert "plan rejected by policy:\n  - demo/hello: no new functions on Fridays" in vetoed.err
    applied = run_faasops("-C", str(hello_project), "apply", "--auto-approve", env=env)
    assert applied.code == 1 and not (hello_project / ".faasops" / "oci").exists()


def test_misspelled_hook_fails_loudly(hello_project: Path, tmp_path: Path) -> None:
    result = run_faasops("-C", str(hello_project), "plan", env=plugin_env(tmp_path, "typo_plugin", MISSPELLED))
    assert result.code == 1
    assert "faasops_check_plans" in result.err and "unknown hook" in result.err
    assert "Traceback" not in result.err


def test_unknown_provider_type_lists_the_available_ones(hello_project: Path) -> None:
    manifest = hello_project / "faas.yaml"
    manifest.write_text(manifest.read_text().replace("backend: local", "backend: local\nproviders:\n  registry: {type: quay}"))
    result = run_faasops("-C", str(hello_project), "plan")
    assert result.code == 1
    assert "no installed plugin provides registry type 'quay' (available registry types: ecr, local, oci" in result.err


def test_the_example_plugin_runs_the_conformance_kit_against_its_source_store(tmp_path: Path) -> None:
    """examples/plugin-audit/tests is what a plugin author writes: one class, two fixtures."""
    plugin = EXAMPLES / "plugin-audit"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"), "-rA"],
        cwd=plugin, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED tests/test_conformance.py::TestArchiveSourceStore::test_an_upload_is_idempotent_and_keeps_the_archive" in result.stdout
    assert "3 passed in" in result.stdout and "skipped" not in result.stdout
