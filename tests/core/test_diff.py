"""The pure diff (faasops.diff.diff_project) on hand-made actual states: no provider at all."""

from __future__ import annotations

import pytest
from core_support import World

from faasops.diff import ROLLBACK_KEY, diff_project
from faasops.errors import FaasopsError
from faasops.model import Project, SecretRef
from faasops.plan import Action, PlanOptions, Selection
from faasops.providers import ActualState, FunctionRecord, WorkspaceRecord


def specs(project: Project) -> dict[str, dict]:
    return {f.address: {**f.spec(), "source_hash": "sha256:" + "0" * 64, "toolchain": "t"} for f in project.functions()}


def recorded(project: Project, **overrides: dict) -> ActualState:
    """The state after ``project`` was applied, with some recorded specs changed."""
    desired = specs(project)
    functions = {
        a: FunctionRecord(*a.split("/"), {**spec, **overrides.get(a, {})}, f"img@{a}", "t0")
        for a, spec in desired.items()
    }
    workspaces = {ws.name: WorkspaceRecord(ws.name, ws.spec()) for ws in project.workspaces}
    return ActualState(workspaces, functions, 7)


def diff(project: Project, actual: ActualState, **options) -> tuple[dict[str, Action], list[str]]:
    changes, warnings = diff_project(project, actual, specs(project), None, None, PlanOptions(**options))
    return {c.address: c.action for c in changes}, warnings


def test_secret_references_are_compared_but_never_shown(world: World) -> None:
    old = world.project(world.workspace("demo", "hello"))
    new = world.project(
        world.workspace("demo", world.function("demo", "hello", secrets=(SecretRef("TOKEN", "env", "TOKEN"),)))
    )
    changes, _ = diff_project(new, recorded(old), specs(new), None, None, PlanOptions())
    (change,) = [c for c in changes if c.action is Action.UPDATE]
    assert [(f.path, f.before, f.after, f.sensitive) for f in change.fields] == [("secrets", None, None, True)]


def test_a_rolled_back_function_is_updated_back_to_the_manifests_with_the_reason(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    actual = recorded(project, **{"demo/hello": {"source_hash": "sha256:" + "1" * 64, ROLLBACK_KEY: "img@old"}})
    changes, _ = diff_project(project, actual, specs(project), None, None, PlanOptions())
    (change,) = [c for c in changes if c.action is not Action.NOOP]
    assert change.reasons[0].startswith("rolled back to img@old")


def test_moving_a_workspace_refuses_a_selection_that_leaves_functions_out(world: World) -> None:
    before = world.project(world.workspace("demo", "hello", "hola"))
    moved = world.project(world.workspace("demo", "hello", "hola", namespace="elsewhere"))
    actual = recorded(before)
    with pytest.raises(FaasopsError, match="the selection leaves out demo/hola"):
        diff_project(moved, actual, specs(moved), None, None, PlanOptions(selection=Selection(("demo/hello",))))
    actions, _ = diff(moved, actual)
    assert actions == {"demo": Action.REPLACE, "demo/hello": Action.REPLACE, "demo/hola": Action.REPLACE}


def test_an_undeclared_workspace_goes_only_with_prune_and_only_without_kept_functions(world: World) -> None:
    both = world.project(world.workspace("demo", "hello"), world.workspace("old", "gone"))
    actual = recorded(both)
    only_demo = world.project(world.workspace("demo", "hello"))
    actions, warnings = diff(only_demo, actual)
    assert (actions["old"], actions["old/gone"]) == (Action.NOOP, Action.NOOP)
    assert any("old/gone is no longer declared" in w for w in warnings)
    actions, _ = diff(only_demo, actual, prune=True)
    assert (actions["old"], actions["old/gone"]) == (Action.DELETE, Action.DELETE)
    # Excluding the function keeps it, and so its namespace.
    actions, warnings = diff(only_demo, actual, prune=True, selection=Selection(excludes=("old/gone",)))
    assert actions.get("old") is Action.NOOP and "old/gone" not in actions
    assert any("workspace old is kept: it still holds functions that are kept (old/gone)" in w for w in warnings)


def test_a_protected_workspace_protects_its_functions_from_destroy(world: World) -> None:
    project = world.project(world.workspace("demo", "hello", protect=True))
    actions, warnings = diff(project, recorded(project), destroy=True)
    assert actions == {"demo/hello": Action.NOOP, "demo": Action.NOOP}
    assert "function demo/hello is kept: its workspace demo is protected" in warnings
