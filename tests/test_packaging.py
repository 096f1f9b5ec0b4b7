"""The wheel as a user gets it: built, installed into a fresh venv, used from outside the repo,
and extended by a third-party plugin package (examples/plugin-audit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from cli_support import EXAMPLES, REPO, copy_example


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, REPO)
    assert built.returncode == 0, built.stderr
    return next(out.glob("faasops-*.whl"))


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A new venv with the wheel and the example plugin installed — nothing from the repo."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=True)
    python = root / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", wheel, EXAMPLES / "plugin-audit")
    assert installed.returncode == 0, installed.stderr
    return root


def test_wheel_carries_plugins_templates_and_schema_under_the_faasops_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.startswith("faasops-")}
    assert top_level == {"faasops"}  # no top-level `plugins` or `templates`
    assert not [n for n in names if n.startswith(("faasops/testing/", "testkit/"))], "test services stay out of the wheel"
    for required in ("faasops/plugins/local.py", "faasops/templates/spinapp.yaml.j2", "faasops/faas.yaml.schema",
                     "faasops/console/templates/function.html", "faasops/console/static/console.js",
                     "faasops/conformance/state.py", "faasops/conformance/fakes.py"):
        assert required in names
    schema = json.loads(zipfile.ZipFile(wheel).read("faasops/faas.yaml.schema"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[faasops]" in text and "faasops.plugins.local" in text


def test_installed_wheel_validates_an_example_from_outside_the_repo(fresh_venv: Path, tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    result = run(fresh_venv / "bin" / "faasops", "-C", project, "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hello: 1 workspace(s), 1 function(s) — valid." in result.stdout
    where = run(fresh_venv / "bin" / "python", "-c", "import faasops.plugins.local as m; print(m.__file__)", cwd=tmp_path)
    assert str(fresh_venv) in where.stdout


def test_third_party_plugin_is_listed_and_takes_part_in_plan_and_apply(fresh_venv: Path, tmp_path: Path) -> None:
    faasops = fresh_venv / "bin" / "faasops"
    listed = run(faasops, "plugins", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert plugins["audit"]["distribution"] == "faasops-audit"
    assert plugins["audit"]["version"] == "0.1.0"
    assert "faasops_check_plan" in plugins["audit"]["hooks"]
    assert plugins["local"]["distribution"] == "faasops"  # built-ins load the same way

    project = copy_example("hello", tmp_path)
    applied = run(faasops, "-C", project, "apply", "--auto-approve", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    audit = [json.loads(line) for line in (project / ".faasops" / "audit.jsonl").read_text().splitlines()]
    assert {"address": "demo/hello", "step": "deploy", "status": "completed"} in [
        {k: e.get(k) for k in ("address", "step", "status")} for e in audit]
    assert audit[-1]["event"] == "apply-finished" and audit[-1]["applied"] == ["demo", "demo/hello"]

    # The plugin's policy vetoes a plan that deletes something.
    destroy = run(faasops, "-C", project, "plan", "--destroy", cwd=tmp_path)
    assert destroy.returncode == 1
    assert "plan rejected by policy" in destroy.stderr
    assert "demo/hello would be deleted; set FAASOPS_ALLOW_DELETES=1" in destroy.stderr
    allowed = run(faasops, "-C", project, "plan", "--destroy", cwd=tmp_path, env={"FAASOPS_ALLOW_DELETES": "1"})
    assert allowed.returncode == 0, allowed.stderr
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in allowed.stdout
