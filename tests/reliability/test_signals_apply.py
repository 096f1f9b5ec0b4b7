"""SIGTERM and SIGINT during ``faasops apply``/``destroy`` on the local backend, with a second
run racing for the lock (started right after the signal, ``--lock-timeout`` so that it waits).

The first signal stops the run between steps: running steps finish and are recorded, no new one
starts, then the lock is released and the run exits 130 (SIGINT) / 143 (SIGTERM) saying what it
did. A second signal aborts what runs. In every case no step of the signalled run starts or
finishes after its lock was released (the test plugin checks the lock row at each step), the final
state is what the last run to hold the lock decided, and the next plan is clean.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from crash_sweep_support import INTERRUPTED, check_invariants, faasops, state_rows
from signals_support import (
    SignalPoint,
    child_pids,
    finish,
    make_project,
    open_tasks,
    recorded_greetings,
    set_greeting,
    start_faasops,
    stop,
    write_plugin,
)

from faasops.lock import pid_alive

pytestmark = pytest.mark.slow  # signals real applies, one during a real build

COUNT = 12
RACE_TIMEOUT = "240"


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plugin(tmp_path_factory.mktemp("signal-plugin"))


def assert_converged(project: Path, greeting: str) -> None:
    """The state and the deployed files are what a run applying ``greeting`` decided, and a
    plan finds nothing to do."""
    assert set(recorded_greetings(project).values()) == {greeting}, recorded_greetings(project)
    assert check_invariants(project) == []
    assert open_tasks(project) == []
    plan = faasops(project, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output[-2000:]


# (parallelism, signal, address, step): where the signalled run is held when the signal lands.
POINTS = [
    (1, signal.SIGTERM, "demo/f03", "record"),  # between functions
    (1, signal.SIGINT, "demo/f02", "push"),  # between the steps of one function
    (1, signal.SIGTERM, "demo", "namespace"),  # before any function
    (8, signal.SIGTERM, "demo/f05", "deploy"),  # other functions' steps in flight
    (8, signal.SIGINT, "demo/f01", "build"),
]


@pytest.mark.parametrize(("parallelism", "signum", "address", "step"), POINTS,
                         ids=[f"p{p}-{signal.Signals(s).name}-{a}-{st}" for p, s, a, st in POINTS])
def test_signal_stops_between_steps_and_a_racing_apply_gets_the_lock_only_after(
    tmp_path: Path, plugin_dir: Path, parallelism: int, signum: int, address: str, step: str
) -> None:
    project = make_project(tmp_path / "project", COUNT, "v1")
    point = SignalPoint(tmp_path, address, step, delay=0.1)  # slow steps: with -p 8, others are in flight
    first = start_faasops(project, "apply", "--auto-approve", "-p", str(parallelism), env=point.env(plugin_dir))
    second = None
    name = signal.Signals(signum).name
    try:
        point.wait_reached(first)
        set_greeting(project, "v2")  # what the racing run decides
        first.send_signal(signum)
        first.wait_output(f"{name} received: finishing the running steps")
        second = start_faasops(project, "apply", "--auto-approve", "--lock-timeout", RACE_TIMEOUT)
        _wait_for_open_state(second.pid)  # the racing run waits for the lock while the held step still runs
        time.sleep(0.3)
        point.release()
        code, output = finish(first)
        assert code == 128 + signum, output[-3000:]
        assert f"Apply interrupted by {name}:" in output
        assert "not started" in output  # it stopped: the rest was never begun
        assert point.violations_found() == ""
        second_code, second_output = finish(second)
        assert second_code == 0, second_output[-3000:]
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert_converged(project, "v2")


def test_signal_while_planning_exits_at_once_without_changing_anything(tmp_path: Path, plugin_dir: Path) -> None:
    project = make_project(tmp_path / "project", 3, "v1")
    point = SignalPoint(tmp_path, "", "pre-apply")
    run = start_faasops(project, "apply", "--auto-approve", env=point.env(plugin_dir))
    try:
        point.wait_reached(run)
        run.send_signal(signal.SIGTERM)
        code, output = finish(run)
    finally:
        point.release()
        stop(run)
    assert code == 143, output[-2000:]
    assert "Apply interrupted by SIGTERM before any change was made; the state lock is released." in output
    assert state_rows(project, "SELECT count(*) FROM locks") == [(0,)]
    assert state_rows(project, "SELECT count(*) FROM functions") == [(0,)]
    again = faasops(project, "apply", "--auto-approve")
    assert again.code == 0, again.output[-2000:]
    assert_converged(project, "v1")


def test_signal_while_waiting_for_the_lock_leaves_the_holder_alone(tmp_path: Path, plugin_dir: Path) -> None:
    project = make_project(tmp_path / "project", 3, "v1")
    point = SignalPoint(tmp_path, "demo/f01", "deploy")
    holder = start_faasops(project, "apply", "--auto-approve", env=point.env(plugin_dir))
    waiter = None
    try:
        point.wait_reached(holder)
        waiter = start_faasops(project, "apply", "--auto-approve", "--lock-timeout", RACE_TIMEOUT)
        _wait_for_open_state(waiter.pid)  # the first thing it does with the state is to wait for the lock
        time.sleep(0.3)
        waiter.send_signal(signal.SIGINT)
        code, output = finish(waiter)
        assert code == 130, output[-2000:]
        assert "Apply interrupted by SIGINT before any change was made" in output
        point.release()
        holder_code, holder_output = finish(holder)
        assert holder_code == 0, holder_output[-2000:]
    finally:
        point.release()
        stop(holder)
        if waiter is not None:
            stop(waiter)
    assert point.violations_found() == ""
    assert_converged(project, "v1")


def test_second_signal_kills_the_build_marks_it_interrupted_then_releases_the_lock(
    tmp_path: Path, plugin_dir: Path
) -> None:
    project = make_project(tmp_path / "project", 1, "v1", unique="fresh")  # demo/fresh: a real build
    point = SignalPoint(tmp_path, "demo/fresh", "build")
    run = start_faasops(project, "apply", "--auto-approve", "-p", "1", env=point.env(plugin_dir))
    try:
        point.wait_reached(run)
        run.send_signal(signal.SIGTERM)
        run.wait_output("SIGTERM received: finishing the running steps")
        point.release()
        builds = _wait_for_children(run.pid)
        run.send_signal(signal.SIGTERM)
        code, output = finish(run)
    finally:
        stop(run)
    assert code == 143, output[-3000:]
    assert "SIGTERM received again: aborting the running steps" in output
    assert "Apply interrupted by SIGTERM:" in output and "demo/fresh" in output
    assert not any(pid_alive(pid) for pid in builds)
    assert state_rows(project, "SELECT count(*) FROM locks") == [(0,)]  # released: nothing was left running
    assert state_rows(project, "SELECT status, message FROM tasks WHERE function = 'fresh' AND kind = 'build'") == [
        ("failed", INTERRUPTED)]
    assert point.violations_found() == ""
    again = faasops(project, "apply", "--auto-approve")
    assert again.code == 0, again.output[-3000:]
    assert_converged(project, "v1")


def test_second_signal_with_a_step_that_does_not_end_exits_holding_a_lock_the_next_run_takes_over(
    tmp_path: Path, plugin_dir: Path
) -> None:
    project = make_project(tmp_path / "project", 6, "v1")
    point = SignalPoint(tmp_path, "demo/f02", "deploy")  # held until the process is gone
    first = start_faasops(project, "apply", "--auto-approve", "-p", "8", env=point.env(plugin_dir))
    second = None
    try:
        point.wait_reached(first)
        first.send_signal(signal.SIGTERM)
        set_greeting(project, "v2")
        second = start_faasops(project, "apply", "--auto-approve", "--lock-timeout", RACE_TIMEOUT)
        first.wait_output("SIGTERM received: finishing the running steps")
        first.send_signal(signal.SIGTERM)
        code, output = finish(first)
        assert code == 143, output[-3000:]
        aborted = next(line for line in output.splitlines() if line.startswith("Apply aborted by SIGTERM:"))
        assert "still running after 5 s:" in aborted and "demo/f02 deploy" in aborted
        assert "faasops exits holding the state lock" in aborted
        second_code, second_output = finish(second)
        assert second_code == 0, second_output[-3000:]
    finally:
        point.release()
        stop(first)
        if second is not None:
            stop(second)
    assert point.violations_found() == ""
    rows = state_rows(project, "SELECT status, message FROM tasks WHERE function = 'f02' AND kind = 'deploy' "
                               "ORDER BY created_at LIMIT 1")
    assert rows == [("failed", INTERRUPTED)]
    assert_converged(project, "v2")


def test_sigterm_during_destroy_stops_deleting_and_a_racing_apply_restores_everything(
    tmp_path: Path, plugin_dir: Path
) -> None:
    project = make_project(tmp_path / "project", COUNT, "v1")
    assert faasops(project, "apply", "--auto-approve").code == 0
    point = SignalPoint(tmp_path, "demo/f04", "delete", delay=0.2)  # slow steps: deletes are in flight
    first = start_faasops(project, "destroy", "--auto-approve", "-p", "8", env=point.env(plugin_dir))
    second = None
    try:
        point.wait_reached(first)
        first.send_signal(signal.SIGTERM)
        first.wait_output("SIGTERM received: finishing the running steps")
        second = start_faasops(project, "apply", "--auto-approve", "--lock-timeout", RACE_TIMEOUT)
        _wait_for_open_state(second.pid)
        time.sleep(0.3)
        point.release()
        code, output = finish(first)
        assert code == 143, output[-3000:]
        assert "Destroy interrupted by SIGTERM:" in output
        assert "demo/f04" not in _listed(output, "not started")  # the running delete finished
        assert "demo" in _listed(output, "not started")  # its namespace stays: functions are left in it
        assert point.violations_found() == ""
        second_code, second_output = finish(second)
        assert second_code == 0, second_output[-3000:]
    finally:
        point.release()
        stop(first)
        if second is not None:
            stop(second)
    assert_converged(project, "v1")


def _wait_for_children(pid: int, timeout: float = 120) -> list[int]:
    """The child processes (the componentize-py build) once there are any."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = child_pids(pid)
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"process {pid} started no build within {timeout:g} s")


def _listed(output: str, label: str) -> list[str]:
    """The addresses of the report's ``  label: a, b`` line."""
    for line in output.splitlines():
        if line.startswith(f"  {label}: "):
            return line.split(": ", 1)[1].split(", ")
    return []


def _wait_for_open_state(pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fds = Path(f"/proc/{pid}/fd")
        try:
            if any(os.readlink(fd).endswith("state.db") for fd in fds.iterdir()):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not open the state within {timeout:g} s")
