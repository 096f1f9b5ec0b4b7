"""Plan and apply through the engine, in-process on the in-memory providers: what the
subprocess tests (tests/test_engine_local.py) cover for the engine's logic, in milliseconds."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_support import World

from faasops.errors import LockError, PolicyViolation, StalePlanError
from faasops.hookspecs import hookimpl
from faasops.plan import Action


def test_the_first_apply_creates_everything_and_the_next_plan_is_empty(world: World) -> None:
    project = world.project(world.workspace("demo", "hello", "hola"))
    plan = world.plan(project)
    assert world.actions(plan) == {"demo": "create", "demo/hello": "create", "demo/hola": "create"}
    assert plan.summary() == {"add": 3, "change": 0, "destroy": 0}

    result = world.apply(project, plan)
    assert result.ok and sorted(result.applied) == ["demo", "demo/hello", "demo/hola"]
    assert (result.builds, result.cached_builds, result.pushes) == (2, 0, 2)
    assert world.providers.deployer.live_functions() == ["demo/hello", "demo/hola"]
    recorded = world.providers.state.read()
    assert sorted(recorded.functions) == ["demo/hello", "demo/hola"]
    assert recorded.functions["demo/hello"].artifact.startswith("memory/conformance/demo/hello@sha256:")

    again = world.plan(project)
    assert not again.has_changes
    assert set(world.actions(again).values()) == {"no-op"}


def test_plan_writes_nothing(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    world.plan(project)
    p = world.providers
    assert p.state.read().serial == 0 and p.state.list_tasks() == []
    assert p.deployer.calls == [] and p.registry.calls == [] and p.sources.calls == []


def test_an_edited_handler_updates_and_rebuilds_exactly_that_function(world: World) -> None:
    project = world.project(world.workspace("demo", "hello", "hola"))
    world.apply(project)
    world.function("demo", "hola", text="hola de nuevo")
    plan = world.plan(project)
    assert world.actions(plan) == {"demo": "no-op", "demo/hello": "no-op", "demo/hola": "update"}
    (change,) = plan.actionable
    assert [f.path for f in change.fields] == ["source_hash"]
    builds_before = world.providers.builder.called("build")
    result = world.apply(project, plan)
    assert result.applied == ["demo/hola"] and result.builds == 1
    assert world.providers.builder.called("build")[len(builds_before) :] == ["demo/hola"]


def test_a_settings_change_updates_in_place_and_a_toolchain_change_says_why(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    world.apply(project)
    changed = world.project(world.workspace("demo", world.function("demo", "hello", env={"GREETING": "hi"})))
    (change,) = world.plan(changed).actionable
    assert (change.action, [(f.path, f.before, f.after) for f in change.fields]) == (
        Action.UPDATE,
        [("env.GREETING", None, "hi")],
    )

    world.providers.builder.toolchain = "fake-toolchain 2"
    (rebuilt,) = world.plan(project).actionable
    assert rebuilt.reasons == ("the build toolchain changed: the function is rebuilt",)


def test_a_removed_function_is_deleted_only_with_prune_and_never_when_protected(world: World) -> None:
    hola = world.function("demo", "hola", protect=True)
    world.apply(world.project(world.workspace("demo", "hello", hola)))
    without_hello = world.project(world.workspace("demo", hola))

    kept = world.plan(without_hello)
    assert not kept.has_changes
    assert "function demo/hello is no longer declared; it is kept (run with --prune to delete it)" in kept.warnings

    pruned = world.plan(without_hello, prune=True)
    assert world.actions(pruned)["demo/hello"] == "delete"
    result = world.apply(without_hello, pruned)
    assert result.deleted == ["demo/hello"]
    assert world.providers.deployer.live_functions() == ["demo/hola"]
    assert "demo/hello" not in world.providers.state.read().functions

    destroy = world.plan(without_hello, destroy=True)
    assert "function demo/hola is protected (protect: true) and is kept" in destroy.warnings
    assert world.actions(destroy) == {"demo/hola": "no-op", "demo": "no-op"}
    assert any("workspace demo is kept: it still holds functions that are kept" in w for w in destroy.warnings)


def test_destroy_deletes_functions_before_their_workspace(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    world.apply(project)
    result = world.apply(project, destroy=True)
    assert (result.deleted, result.ok) == (["demo/hello", "demo"], True)
    deployer = world.providers.deployer
    assert deployer.called("undeploy") == ["demo/hello"] and deployer.called("delete_workspace") == ["demo"]
    assert deployer.namespaces == {}
    recorded = world.providers.state.read()
    assert (recorded.workspaces, recorded.functions) == ({}, {})


def test_targets_and_excludes_select_what_the_plan_covers(world: World) -> None:
    project = world.project(world.workspace("demo", "hello", "hola"), world.workspace("blog", "feed"))
    assert set(world.actions(world.plan(project, "demo/hola"))) == {"demo", "demo/hola"}
    assert set(world.actions(world.plan(project, "blog"))) == {"blog", "blog/feed"}
    assert set(world.actions(world.plan(project, excludes=("demo",)))) == {"blog", "blog/feed"}

    world.apply(project, world.plan(project, "demo/hola"))
    assert world.providers.deployer.live_functions() == ["demo/hola"]
    # Targeting a function never deletes its workspace's other recorded functions.
    rest = world.plan(world.project(world.workspace("demo", "hello")), "demo/hello", prune=True)
    assert world.actions(rest) == {"demo": "no-op", "demo/hello": "create"}


def test_a_namespace_change_replaces_the_workspace_and_moves_its_functions(world: World) -> None:
    world.apply(world.project(world.workspace("demo", "hello")))
    moved = world.project(world.workspace("demo", "hello", namespace="demo-2"))
    plan = world.plan(moved)
    assert world.actions(plan) == {"demo": "replace", "demo/hello": "replace"}
    assert world.apply(moved, plan).ok
    assert list(world.providers.deployer.namespaces) == ["demo-2"]
    assert world.providers.state.read().workspaces["demo"].spec["namespace"] == "demo-2"


def test_drift_of_a_live_object_is_planned_as_an_update_and_rendered_only_then(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    world.apply(project)
    scaffolder = world.providers.scaffolder
    renders = len(scaffolder.called("render"))
    assert not world.plan(project).has_changes
    assert len(scaffolder.called("render")) == renders  # the deploy fingerprint matched: no render

    workspace, (live,) = world.providers.deployer.namespaces["demo"]["hello"]
    edited = {**live, "spec": {**live["spec"], "replicas": 3}}
    world.providers.deployer.namespaces["demo"]["hello"] = (workspace, (edited,))
    (drifted,) = world.plan(project).actionable
    assert drifted.action is Action.UPDATE
    assert drifted.reasons == ("drift: SpinApp hello: spec.replicas is 3, want 1",)
    assert len(scaffolder.called("render")) == renders + 1
    assert not world.plan(project, refresh=False).has_changes  # without refresh, no observation
    world.apply(project, world.plan(project))
    assert not world.plan(project).has_changes


def test_a_plan_is_stale_once_the_state_changed(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    plan = world.plan(project)
    world.apply(project)
    with pytest.raises(StalePlanError, match="the plan is stale"):
        world.apply(project, plan)


def test_the_lock_is_held_while_apply_changes_anything(world: World) -> None:
    held_at: list[tuple[str, bool]] = []

    class Watch:
        @hookimpl
        def faasops_step_started(self, project, address, step):  # type: ignore[no-untyped-def]
            held_at.append((step, world.providers.state.current_lock() is not None))

    world.plugins = (Watch(),)
    project = world.project(world.workspace("demo", "hello"))
    world.apply(project)
    assert held_at and all(held for _, held in held_at), held_at
    assert world.providers.state.current_lock() is None  # released after

    other = world.providers.state.client()
    engine = world.engine(project)
    with engine.locked("first"):
        with pytest.raises(LockError, match="the state is locked by"):
            other.acquire_lock(replace(_lock_request(), id="second"), 0)


def _lock_request():  # type: ignore[no-untyped-def]
    from faasops.conformance.samples import lock_info

    return lock_info("any")


def test_a_policy_plugin_vetoes_the_plan_before_anything_changes(world: World) -> None:
    class NoDeletes:
        @hookimpl
        def faasops_check_plan(self, plan, project):  # type: ignore[no-untyped-def]
            return [f"{c.address} would be deleted" for c in plan.actionable if c.action is Action.DELETE]

    project = world.project(world.workspace("demo", "hello"))
    world.apply(project)
    world.plugins = (NoDeletes(),)
    with pytest.raises(PolicyViolation, match="demo/hello would be deleted"):
        world.plan(project, destroy=True)
    assert world.providers.deployer.called("undeploy") == []
