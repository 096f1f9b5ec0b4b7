"""A selection that names a function (``-t WS/FN``) covers its workspace only so that the function
can be deployed into it: deleting or replacing the workspace (its namespace, with every other
function in it) is never done for it. Checked for ``destroy``, ``plan --destroy``, ``apply --prune``
and ``--exclude`` through the real CLI on the local backend, asserting the state (``faasops get``)
and the deployed files under ``.faasops/deploy``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from cli_support import EXAMPLES, Result, run_faasops

HANDLER = (EXAMPLES / "hello" / "functions" / "hello" / "app.py").read_text()
# One shared source: one cached build serves every function.
LAYOUT = {"demo": ["a", "b", "c"], "other": ["x"]}


def make_project(root: Path, layout: dict[str, list[str]] = LAYOUT, namespaces: dict[str, str] | None = None) -> Path:
    (root / "functions" / "shared").mkdir(parents=True, exist_ok=True)
    (root / "functions" / "shared" / "app.py").write_text(HANDLER)
    workspaces = []
    for ws, functions in layout.items():
        entry = {"name": ws, "functions": [{"name": fn, "source": "functions/shared", "env": {"NAME": fn}}
                                           for fn in functions]}
        if namespaces and ws in namespaces:
            entry["namespace"] = namespaces[ws]
        workspaces.append(entry)
    manifest = {"apiVersion": "faasops/v1", "project": "targets", "backend": "local", "workspaces": workspaces}
    (root / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def faasops(project: Path, *args: str) -> Result:
    return run_faasops("-C", str(project), *args)


def applied(project: Path, *args: str) -> Result:
    result = faasops(project, "apply", "--auto-approve", *args)
    assert result.code == 0, result.output[-3000:]
    return result


def functions(project: Path) -> list[str]:
    got = faasops(project, "get", "functions", "--format", "json")
    assert got.code == 0, got.output
    return sorted(f"{row['workspace']}/{row['name']}" for row in json.loads(got.out))


def workspaces(project: Path) -> list[str]:
    got = faasops(project, "get", "workspaces", "--format", "json")
    assert got.code == 0, got.output
    return sorted(row["name"] for row in json.loads(got.out))


def deployed(project: Path) -> list[str]:
    """``namespace/file`` of every deployed manifest (the namespaces' SpinAppExecutors, written
    beside the SpinApps that name them, are tests/kubernetes' concern)."""
    root = project / ".faasops" / "deploy"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml")
                  if "_executors" not in p.relative_to(root).parts) if root.is_dir() else []


def planned(project: Path, *args: str) -> list[tuple[str, str]]:
    result = faasops(project, "plan", "--format", "json", *args)
    assert result.code == 0, result.output[-3000:]
    return sorted((c["address"], c["action"]) for c in json.loads(result.out)["changes"] if c["action"] != "no-op")


def assert_converges(project: Path) -> None:
    applied(project)
    plan = faasops(project, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output[-3000:]


def test_destroy_of_one_function_keeps_its_workspace_and_siblings(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    assert planned(project, "--destroy", "-t", "demo/a") == [("demo/a", "delete")]

    result = faasops(project, "destroy", "--auto-approve", "-t", "demo/a")

    assert result.code == 0, result.output[-3000:]
    assert functions(project) == ["demo/b", "demo/c", "other/x"]
    assert workspaces(project) == ["demo", "other"]
    assert deployed(project) == ["demo/_namespace.yaml", "demo/b.yaml", "demo/c.yaml",
                                 "other/_namespace.yaml", "other/x.yaml"]
    assert planned(project) == [("demo/a", "create")]
    assert_converges(project)


def test_destroy_of_the_last_function_of_a_workspace_still_keeps_the_workspace(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    assert faasops(project, "destroy", "--auto-approve", "-t", "other/x").code == 0
    assert functions(project) == ["demo/a", "demo/b", "demo/c"]
    assert workspaces(project) == ["demo", "other"]
    assert "other/_namespace.yaml" in deployed(project)


def test_destroy_of_a_workspace_removes_it_with_all_its_functions(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    assert planned(project, "--destroy", "-t", "demo") == [
        ("demo", "delete"), ("demo/a", "delete"), ("demo/b", "delete"), ("demo/c", "delete")]

    result = faasops(project, "destroy", "--auto-approve", "-t", "demo")

    assert result.code == 0, result.output[-3000:]
    assert functions(project) == ["other/x"]
    assert workspaces(project) == ["other"]
    assert deployed(project) == ["other/_namespace.yaml", "other/x.yaml"]


def test_destroy_excluding_a_function_keeps_its_workspace_and_that_function(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    assert planned(project, "--destroy", "--exclude", "demo/b") == [
        ("demo/a", "delete"), ("demo/c", "delete"), ("other", "delete"), ("other/x", "delete")]

    result = faasops(project, "destroy", "--auto-approve", "--exclude", "demo/b")

    assert result.code == 0, result.output[-3000:]
    assert "workspace demo is kept: it still holds functions that are kept (demo/b)" in result.output
    assert functions(project) == ["demo/b"]
    assert workspaces(project) == ["demo"]
    assert deployed(project) == ["demo/_namespace.yaml", "demo/b.yaml"]


def test_prune_targeting_one_function_of_a_removed_workspace_prunes_only_that_function(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    make_project(project, {"other": ["x"]})  # workspace demo is no longer declared

    assert planned(project, "--prune", "-t", "demo/a") == [("demo/a", "delete")]
    applied(project, "--prune", "-t", "demo/a")
    assert functions(project) == ["demo/b", "demo/c", "other/x"]
    assert workspaces(project) == ["demo", "other"]
    assert deployed(project)[:3] == ["demo/_namespace.yaml", "demo/b.yaml", "demo/c.yaml"]

    applied(project, "--prune", "--exclude", "demo/c")
    assert functions(project) == ["demo/c", "other/x"]
    assert workspaces(project) == ["demo", "other"]
    assert deployed(project) == ["demo/_namespace.yaml", "demo/c.yaml", "other/_namespace.yaml", "other/x.yaml"]

    applied(project, "--prune")
    assert functions(project) == ["other/x"]
    assert workspaces(project) == ["other"]
    assert deployed(project) == ["other/_namespace.yaml", "other/x.yaml"]


def test_prune_targeting_one_function_of_a_declared_workspace_leaves_its_siblings(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    make_project(project, {"demo": ["a"], "other": ["x"]})  # b and c are no longer declared

    assert planned(project, "--prune", "-t", "demo/b") == [("demo/b", "delete")]
    applied(project, "--prune", "-t", "demo/b")
    assert functions(project) == ["demo/a", "demo/c", "other/x"]
    assert "demo/c.yaml" in deployed(project)


def test_moving_a_partly_selected_workspace_to_another_namespace_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    applied(project)
    before = deployed(project)
    make_project(project, namespaces={"demo": "demo-two"})

    for args in (("-t", "demo/a"), ("--exclude", "demo/b")):
        result = faasops(project, "apply", "--auto-approve", *args)
        assert result.code == 1, result.output[-3000:]
        assert "Error: workspace demo moves from namespace 'demo' to 'demo-two'" in result.err
        assert "Traceback" not in result.output
        assert deployed(project) == before

    applied(project, "-t", "demo")
    assert sorted(p for p in deployed(project) if p.startswith("demo")) == [
        "demo-two/_namespace.yaml", "demo-two/a.yaml", "demo-two/b.yaml", "demo-two/c.yaml"]
    assert_converges(project)


def test_destroying_a_workspace_keeps_a_namespace_another_workspace_shares(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"demo": ["a"], "other": ["x"]}, namespaces={"demo": "team", "other": "team"})
    applied(project)
    assert deployed(project) == ["team/_namespace.yaml", "team/a.yaml", "team/x.yaml"]
    result = faasops(project, "destroy", "--auto-approve", "-t", "demo")
    assert result.code == 0, result.output[-3000:]
    assert workspaces(project) == ["other"] and functions(project) == ["other/x"]
    assert deployed(project) == ["team/_namespace.yaml", "team/x.yaml"], "the namespace went down with one workspace"
    # Once no workspace is left in it, the namespace goes too.
    result = faasops(project, "destroy", "--auto-approve")
    assert result.code == 0, result.output[-3000:]
    assert workspaces(project) == [] and deployed(project) == []
