"""The apply executor on the in-memory providers: the tasks of every step, records written only
after a deploy, partial failure and the retry that converges, signals between steps."""

from __future__ import annotations

import threading

from core_support import World

from faasops.executor import Executor
from faasops.plan import Action
from faasops.progress import PlainReporter

FUNCTION_STEPS = ["snapshot", "upload", "build", "push", "scaffold", "deploy", "record"]


def steps_of(world: World, address: str) -> list[tuple[str, str]]:
    """(kind, status) of the tasks of ``address``, oldest first."""
    workspace, _, function = address.partition("/")
    tasks = reversed(world.providers.state.list_tasks(limit=1000))
    return [(t.kind, t.status) for t in tasks if t.workspace == workspace and (t.function or "") == function]


def test_every_step_is_a_task_and_the_function_is_recorded_last(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    result = world.apply(project)
    assert steps_of(world, "demo/hello") == [(kind, "completed") for kind in FUNCTION_STEPS]
    assert steps_of(world, "demo") == [("namespace", "completed"), ("record", "completed")]
    assert {t.run_id for t in world.providers.state.list_tasks()} == {result.run_id}
    state_calls = [c for c in world.providers.state.calls if c[0] == "put_function"]
    assert state_calls == [("put_function", "demo/hello")]
    record = world.providers.state.read().functions["demo/hello"]
    assert record.deployed.startswith("sha256:")  # the scaffolder's render_digest and what deploy returned


def test_a_failed_deploy_records_nothing_and_the_next_apply_retries_it(world: World) -> None:
    project = world.project(world.workspace("demo", "hello", "hola"))
    world.providers.deployer.fail_on.add(("deploy", "demo/hola"))
    failed = world.apply(project, continue_on_error=True)
    assert failed.failed == {"demo/hola": "deploy failed (injected by the test)"}
    assert sorted(failed.applied) == ["demo", "demo/hello"] and not failed.ok
    assert sorted(world.providers.state.read().functions) == ["demo/hello"]  # not hola: its deploy failed
    assert steps_of(world, "demo/hola")[-1] == ("deploy", "failed")
    (task,) = [t for t in world.providers.state.list_tasks() if t.function == "hola" and t.kind == "deploy"]
    assert task.message == "deploy failed (injected by the test)"

    world.providers.deployer.fail_on.clear()
    retry = world.plan(project)
    assert world.actions(retry) == {"demo": "no-op", "demo/hello": "no-op", "demo/hola": "create"}
    again = world.apply(project, retry)
    assert again.ok and again.applied == ["demo/hola"]
    assert again.cached_builds == 1 and again.pushes == 0  # the failed run's build and push are reused
    assert not world.plan(project).has_changes


def test_without_continue_on_error_a_failure_stops_new_functions(world: World) -> None:
    project = world.project(world.workspace("demo", "a", "b", "c"))
    world.providers.sources.fail_on.add(("upload", "demo/a"))
    result = world.apply(project, parallelism=1)
    assert list(result.failed) == ["demo/a"]
    assert result.skipped == ["demo/b", "demo/c"]
    assert world.providers.deployer.called("deploy") == []


def test_a_failed_workspace_skips_its_functions(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"), world.workspace("blog", "feed"))
    world.providers.deployer.fail_on.add(("ensure_workspace", "demo"))
    result = world.apply(project, continue_on_error=True)
    assert list(result.failed) == ["demo"] and result.skipped == ["demo/hello"]
    assert sorted(result.applied) == ["blog", "blog/feed"]
    assert "demo" not in world.providers.state.read().workspaces


def test_a_failed_record_leaves_the_function_to_be_planned_again(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    world.providers.state.fail_on.add(("put_function", "demo/hello"))
    result = world.apply(project)
    assert list(result.failed) == ["demo/hello"]
    assert world.providers.deployer.live_functions() == ["demo/hello"]  # deployed, but not recorded
    world.providers.state.fail_on.clear()
    assert world.actions(world.plan(project))["demo/hello"] == "create"
    assert world.apply(project).ok


def test_a_failed_undeploy_keeps_the_record(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    world.apply(project)
    world.providers.deployer.fail_on.add(("undeploy", "demo/hello"))
    result = world.apply(project, destroy=True)
    assert list(result.failed) == ["demo/hello"] and result.skipped == ["demo"]
    assert sorted(world.providers.state.read().functions) == ["demo/hello"]


def test_a_signal_stops_the_run_before_the_next_step(world: World) -> None:
    project = world.project(world.workspace("demo", "hello"))
    plan = world.plan(project)
    interrupt = threading.Event()
    executor = Executor(
        project,
        world.providers,
        PlainReporter(world.log),
        interrupt=interrupt,
        on_step=lambda address, step, status, message: step == "build" and interrupt.set(),
    )
    result = executor.run(plan, {})
    assert result.interrupted == ["demo/hello"]
    assert [kind for kind, _ in steps_of(world, "demo/hello")] == ["snapshot", "upload", "build"]
    assert "demo/hello" not in world.providers.state.read().functions


def test_the_deployers_note_becomes_the_task_message(world: World) -> None:
    deployer = world.providers.deployer
    deployer.deploy_note = lambda address: f"commit 0123abc for {address}"  # type: ignore[attr-defined]
    world.apply(world.project(world.workspace("demo", "hello")))
    deploy = next(t for t in world.providers.state.list_tasks() if t.kind == "deploy")
    assert deploy.message == "commit 0123abc for demo/hello"


def test_functions_of_one_plan_run_in_parallel_and_all_get_recorded(world: World) -> None:
    names = [f"fn-{i:02d}" for i in range(24)]
    project = world.project(world.workspace("demo", *names))
    result = world.apply(project, parallelism=8)
    assert result.ok and len(result.applied) == 25
    assert sorted(world.providers.state.read().functions) == [f"demo/{n}" for n in names]
    assert all(steps_of(world, f"demo/{n}") == [(k, "completed") for k in FUNCTION_STEPS] for n in names)
    plan = world.plan(project)
    assert {c.action for c in plan.changes} == {Action.NOOP}
