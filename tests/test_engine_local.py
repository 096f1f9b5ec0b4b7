"""End-to-end behaviour of plan/apply on the embedded local backend, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from cli_support import run_faasops, tree_snapshot

TWO_FUNCTIONS = """\
apiVersion: faasops/v1
project: shop
backend: local
workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
      - name: hola
        source: functions/hola
        env: {GREETING: hola}
"""


def two_function_project(hello_project: Path) -> Path:
    shutil.copytree(hello_project / "functions" / "hello", hello_project / "functions" / "hola")
    (hello_project / "faas.yaml").write_text(TWO_FUNCTIONS)
    return hello_project


def state_rows(project: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(project / ".faasops" / "state.db") as db:
        return db.execute(sql).fetchall()


def test_apply_builds_deploys_and_second_run_changes_nothing(hello_project: Path) -> None:
    first = run_faasops("-C", str(hello_project), "apply", "--auto-approve")
    assert first.code == 0, first.output
    assert "+ workspace demo will be created" in first.out
    assert "+ function demo/hello will be created" in first.out
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in first.out
    assert "Apply complete!" in first.out

    # The artifact is a Spin OCI artifact in an OCI image layout.
    layout = hello_project / ".faasops" / "oci"
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.removeprefix("sha256:")).read_text())
    media_types = {layer["mediaType"] for layer in manifest["layers"]}
    assert "application/vnd.wasm.content.layer.v1+wasm" in media_types
    wasm_layer = next(l for l in manifest["layers"] if l["mediaType"].endswith("+wasm"))
    wasm = (layout / "blobs" / "sha256" / wasm_layer["digest"].removeprefix("sha256:")).read_bytes()
    assert wasm[:4] == b"\0asm"

    # The SpinApp manifest was rendered into the state dir.
    docs = list(yaml.safe_load_all((hello_project / ".faasops" / "deploy" / "demo" / "hello.yaml").read_text()))
    spinapp = next(d for d in docs if d["kind"] == "SpinApp")
    assert spinapp["spec"]["image"].endswith(manifest_digest)
    assert spinapp["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "faasops"

    second_plan = run_faasops("-C", str(hello_project), "plan", "--detailed-exitcode")
    assert second_plan.code == 0, second_plan.output
    assert "No changes." in second_plan.out

    second = run_faasops("-C", str(hello_project), "apply", "--auto-approve")
    assert second.code == 0, second.output
    assert "No changes." in second.out
    builds = state_rows(hello_project, "SELECT count(*) FROM tasks WHERE kind = 'build'")[0][0]
    assert builds == 1  # only the first apply built anything

    listed = run_faasops("-C", str(hello_project), "get", "functions", "--format", "json")
    assert [(f["workspace"], f["name"]) for f in json.loads(listed.out)] == [("demo", "hello")]


def test_editing_one_handler_updates_and_rebuilds_exactly_that_function(hello_project: Path) -> None:
    project = two_function_project(hello_project)
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0

    handler = project / "functions" / "hola" / "app.py"
    # A text no earlier session built, so the shared build cache can't already hold it.
    handler.write_text(handler.read_text().replace("Hello from Blue FaaS!", f"Hola desde Blue FaaS! {uuid.uuid4()}"))

    plan = run_faasops("-C", str(project), "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert plan.out.count("~ function") == 1
    assert "~ function demo/hola will be updated in place" in plan.out
    assert "source_hash" in plan.out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.out

    before = state_rows(project, "SELECT count(*) FROM tasks WHERE kind = 'build'")[0][0]
    applied = run_faasops("-C", str(project), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    builds = state_rows(project, "SELECT function, message FROM tasks WHERE kind = 'build' ORDER BY created_at")[before:]
    assert [row[0] for row in builds] == ["hola"]
    assert builds[0][1] != "cached"  # really rebuilt
    assert run_faasops("-C", str(project), "plan", "--detailed-exitcode").code == 0


def test_plan_json_and_markdown_render_the_same_plan(hello_project: Path) -> None:
    as_json = run_faasops("-C", str(hello_project), "plan", "--format", "json")
    assert as_json.code == 0, as_json.output
    plan = json.loads(as_json.out)
    assert plan["format_version"] == 1
    assert plan["summary"] == {"add": 2, "change": 0, "destroy": 0}
    assert {(c["kind"], c["address"], c["action"]) for c in plan["changes"]} == {
        ("workspace", "demo", "create"), ("function", "demo/hello", "create")}
    markdown = run_faasops("-C", str(hello_project), "plan", "--format", "markdown").out
    assert markdown.index("Plan: 2 to add") < markdown.index("<details>")
    assert "`demo/hello`" in markdown
    # Plan wrote nothing.
    assert not (hello_project / ".faasops" / "oci").exists()
    assert not (hello_project / ".faasops" / "deploy").exists()


def test_removed_function_is_deleted_only_with_prune_and_never_when_protected(hello_project: Path) -> None:
    project = two_function_project(hello_project)
    manifest = project / "faas.yaml"
    protected = TWO_FUNCTIONS.replace("        env: {GREETING: hola}\n", "        env: {GREETING: hola}\n        protect: true\n")
    manifest.write_text(protected)
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0

    manifest.write_text(protected.replace("      - name: hello\n        source: functions/hello\n", ""))
    kept = run_faasops("-C", str(project), "plan", "--detailed-exitcode")
    assert kept.code == 0, kept.output
    assert "demo/hello is no longer declared; it is kept (run with --prune" in kept.out

    pruned = run_faasops("-C", str(project), "apply", "--auto-approve", "--prune")
    assert pruned.code == 0, pruned.output
    assert "- function demo/hello will be destroyed" in pruned.out
    assert not (project / ".faasops" / "deploy" / "demo" / "hello.yaml").exists()

    destroyed = run_faasops("-C", str(project), "destroy", "--auto-approve")
    assert destroyed.code == 0, destroyed.output
    assert "function demo/hola is protected (protect: true) and is kept" in destroyed.out
    assert (project / ".faasops" / "deploy" / "demo" / "hola.yaml").exists()


def test_apply_without_tty_or_auto_approve_refuses_and_changes_nothing(hello_project: Path) -> None:
    result = run_faasops("-C", str(hello_project), "apply", input="")
    assert result.code == 1
    assert "stdin is not a terminal (use --auto-approve)" in result.err
    assert state_rows(hello_project, "SELECT count(*) FROM functions")[0][0] == 0


def test_kill_9_during_apply_then_apply_converges_without_duplicates(hello_project: Path) -> None:
    project = two_function_project(hello_project)
    # A fresh build cache so the kill lands while a real build is running.
    env = {"FAASOPS_BUILD_CACHE": str(project.parent / "fresh-cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "faasops.cli", "-C", str(project), "apply", "--auto-approve", "-p", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if state_rows(project, "SELECT count(*) FROM tasks WHERE kind = 'build' AND status = 'running'")[0][0]:
                    break
            except sqlite3.OperationalError:
                pass  # the database is still being created
            time.sleep(0.1)
        else:
            raise AssertionError("the build never started")
    finally:
        proc.send_signal(signal.SIGKILL)  # also when the wait failed: no apply outlives the test
        proc.wait()
    assert state_rows(project, "SELECT count(*) FROM functions")[0][0] == 0  # nothing recorded mid-build

    again = run_faasops("-C", str(project), "apply", "--auto-approve", env=env)
    assert again.code == 0, again.output
    assert state_rows(project, "SELECT count(*) FROM functions")[0][0] == 2
    assert state_rows(project, "SELECT status, message FROM tasks WHERE kind = 'build' ORDER BY created_at LIMIT 1")[0] == (
        "failed", "interrupted: the run ended before this step finished")
    index = json.loads((project / ".faasops" / "oci" / "index.json").read_text())
    refs = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert len(refs) == len(set(refs)) == 2
    assert sorted(p.name for p in (project / ".faasops" / "deploy" / "demo").glob("*.yaml")) == ["_namespace.yaml", "hello.yaml", "hola.yaml"]
    assert run_faasops("-C", str(project), "plan", "--detailed-exitcode", env=env).code == 0


def test_tasks_history_lists_every_step_of_an_apply(hello_project: Path) -> None:
    assert run_faasops("-C", str(hello_project), "apply", "--auto-approve").code == 0
    listed = run_faasops("-C", str(hello_project), "tasks", "demo", "--format", "json")
    tasks = json.loads(listed.out)
    steps = [t["kind"] for t in reversed(tasks) if t["function"] == "hello"]
    assert steps == ["snapshot", "upload", "build", "push", "scaffold", "deploy", "record"]
    assert {t["status"] for t in tasks} == {"completed"}
    one = run_faasops("-C", str(hello_project), "tasks", "--id", tasks[0]["id"][:8])
    assert tasks[0]["id"][:12] in one.out
    missing = run_faasops("-C", str(hello_project), "tasks", "--id", "nope")
    assert missing.code == 1 and "no task with id 'nope'" in missing.err


def test_init_creates_a_project_that_validates(tmp_path: Path) -> None:
    created = run_faasops("init", str(tmp_path / "new-project"))
    assert created.code == 0, created.output
    valid = run_faasops("-C", str(tmp_path / "new-project"), "validate")
    assert valid.code == 0, valid.output
    assert "new-project: 1 workspace(s), 1 function(s) — valid." in valid.out
    again = run_faasops("init", str(tmp_path / "new-project"))
    assert again.code == 1 and "already exists" in again.err


def test_invalid_manifest_gives_located_errors_and_writes_nothing(hello_project: Path) -> None:
    (hello_project / "faas.yaml").write_text((hello_project / "faas.yaml").read_text().replace("name: hello", "name: Hello_World"))
    before = tree_snapshot(hello_project)
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = run_faasops("-C", str(hello_project), *command)
        assert result.code == 1
        assert "faas.yaml:" in result.err and "workspaces[0].functions[0].name" in result.err
        assert "Traceback" not in result.err
    assert tree_snapshot(hello_project) == before


def test_plans_render_only_functions_whose_live_objects_changed_since_their_deploy(hello_project: Path) -> None:
    from faasops.engine import Engine
    from faasops.plan import Action

    assert run_faasops("-C", str(hello_project), "apply", "--auto-approve").code == 0
    ((deployed,),) = state_rows(hello_project, "SELECT deployed FROM functions")
    assert deployed.startswith("sha256:")

    def plan_counting_renders() -> tuple[list, int]:
        with Engine.load(hello_project) as engine:
            scaffolder = engine.providers.scaffolder
            rendered = []
            real_render = scaffolder.render
            scaffolder.render = lambda *args: rendered.append(args) or real_render(*args)
            plan = engine.plan()
        return [c for c in plan.changes if c.kind == "function"], len(rendered)

    (unchanged,), renders = plan_counting_renders()
    assert unchanged.action is Action.NOOP and renders == 0

    # Someone edits the live object: its fingerprint no longer matches, so it is rendered and
    # compared field by field.
    live = hello_project / ".faasops" / "deploy" / "demo" / "hello.yaml"
    live.write_text(live.read_text().replace("replicas: 1", "replicas: 3"))
    (drifted,), renders = plan_counting_renders()
    assert drifted.action is Action.UPDATE and renders == 1
    assert drifted.reasons == ("drift: SpinApp hello: spec.replicas is 3, want 1",)


def test_a_state_database_from_before_deploy_fingerprints_still_plans(hello_project: Path) -> None:
    assert run_faasops("-C", str(hello_project), "apply", "--auto-approve").code == 0
    # The functions table as faasops 0.1 created it, holding the same record.
    with sqlite3.connect(hello_project / ".faasops" / "state.db") as db:
        db.executescript("""
            CREATE TABLE old AS SELECT workspace, name, spec, artifact, applied_at FROM functions;
            DROP TABLE functions;
            CREATE TABLE functions (workspace TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,
                artifact TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (workspace, name));
            INSERT INTO functions SELECT * FROM old;
            DROP TABLE old;
        """)

    assert run_faasops("-C", str(hello_project), "plan", "--detailed-exitcode").code == 0
    assert state_rows(hello_project, "SELECT deployed FROM functions") == [("",)]
    live = hello_project / ".faasops" / "deploy" / "demo" / "hello.yaml"
    live.write_text(live.read_text().replace("replicas: 1", "replicas: 3"))
    drift = run_faasops("-C", str(hello_project), "plan", "--detailed-exitcode")
    assert drift.code == 2 and "drift: SpinApp hello: spec.replicas is 3, want 1" in drift.out
