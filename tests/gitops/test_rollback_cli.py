"""`faasops rollback WS/FN`: an earlier artifact redeployed from the recorded history without
rebuilding; plan says so until the source is reverted; apply rolls forward."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from cli_support import EXAMPLES, run_faasops
from gitops_support import make_project

HELLO = "- name: demo\n  functions: [{name: hello, source: functions/hello}]\n"


def running(project: Path) -> str:
    listed = run_faasops("-C", str(project), "get", "functions", "--format", "json")
    assert listed.code == 0, listed.output
    (function,) = json.loads(listed.out)
    return function["artifact"]


def deployed_image(project: Path) -> str:
    docs = yaml.safe_load_all((project / ".faasops" / "deploy" / "demo" / "hello.yaml").read_text())
    return next(d for d in docs if d["kind"] == "SpinApp")["spec"]["image"]


def task_kinds(project: Path) -> list[str]:
    listed = run_faasops("-C", str(project), "tasks", "--format", "json", "--limit", "500")
    return [t["kind"] for t in json.loads(listed.out)]


@pytest.mark.slow
def test_rollback_redeploys_the_previous_artifact_and_plan_says_so_until_the_source_is_reverted(tmp_path: Path) -> None:
    project = make_project(tmp_path, HELLO)
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
    first = running(project)
    handler = project / "functions" / "hello" / "app.py"
    # A text no earlier session built, so the shared build cache can't already hold it.
    handler.write_text(handler.read_text().replace("Hello from Blue FaaS!", f"Hello again {uuid.uuid4()}"))
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
    second = running(project)
    assert second != first
    kinds_before = task_kinds(project)

    rolled = run_faasops("-C", str(project), "rollback", "demo/hello")

    assert rolled.code == 0, rolled.output
    assert f"Rolled back demo/hello: {second} → {first}." in rolled.out
    assert running(project) == first == deployed_image(project)
    kinds = task_kinds(project)
    assert kinds[0] == "rollback" and kinds[1:] == kinds_before  # nothing built, pushed or snapshotted
    plan = run_faasops("-C", str(project), "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert f"rolled back to {first}" in plan.out
    assert "the deployed version differs from the manifests until their source is reverted" in plan.out

    # apply rolls forward to the manifests' version (the build is reused)
    forward = run_faasops("-C", str(project), "apply", "--auto-approve")
    assert forward.code == 0, forward.output
    assert "0 built, 1 reused from cache" in forward.out
    assert running(project) == second == deployed_image(project)

    # --to picks a recorded artifact by digest prefix; a revert of the source makes plan clean
    digest = first.rpartition("@")[2]
    assert run_faasops("-C", str(project), "rollback", "demo/hello", "--to", digest[:19]).code == 0
    assert running(project) == first
    handler.write_text((EXAMPLES / "hello" / "functions" / "hello" / "app.py").read_text())
    clean = run_faasops("-C", str(project), "plan", "--detailed-exitcode")
    assert clean.code == 0, clean.output
    assert "No changes." in clean.out

    too_far = run_faasops("-C", str(project), "rollback", "demo/hello", "--steps", "5")
    assert too_far.code == 1
    assert "Error: only 0 earlier artifact(s) are recorded; cannot go back 5" in too_far.err
    unknown = run_faasops("-C", str(project), "rollback", "demo/hello", "--to", "sha256:0000")
    assert unknown.code == 1
    assert "no recorded artifact has the digest sha256:0000" in unknown.err


@pytest.mark.parametrize(("address", "message"), [
    ("demo/hello", "demo/hello is not deployed: nothing to roll back"),
    ("demo/nope", "demo/nope is not declared in the manifests"),
    ("demo", "rollback needs WS/FN, got 'demo'"),
])
def test_rollback_of_nothing_to_roll_back_is_a_one_line_error(tmp_path: Path, address: str, message: str) -> None:
    project = make_project(tmp_path, HELLO)

    result = run_faasops("-C", str(project), "rollback", address)

    assert result.code == 1
    assert f"Error: {message}" in result.err
    assert "Traceback" not in result.output
