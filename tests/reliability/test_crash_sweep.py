"""SIGKILL sweep on the local backend: apply is killed at many points — around and inside every
step of a function (snapshot, upload, build, push, scaffold, deploy, record), the workspace's
steps, between functions, during an update, a prune and a real build — and after each kill the
next ``apply`` converges: exit 0, a clean ``plan --detailed-exitcode``, no duplicated or
orphaned state rows, OCI refs or deployed manifests, no temporary files, the killed run's lock
stale and its running tasks marked interrupted.

Builds come from the session's shared cache (the three functions share one source), except in
``test_kill_during_a_real_build_…``. ``bench/crash_sweep.py`` runs the same check at N random
points.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import pytest
import yaml
from crash_sweep_support import (
    WORKSPACE,
    CaseReport,
    KillPoint,
    check_after_kill,
    check_converged,
    faasops,
    kill_apply,
    make_project,
    run_case,
    write_plugin,
)

pytestmark = pytest.mark.slow  # kills real applies at every step, one real build

# -p 1: steps run one after another, so "after X" means nothing else is running.
SEQUENTIAL_POINTS = [
    KillPoint(WORKSPACE, "", "pre-apply"),
    KillPoint(WORKSPACE, "namespace", "start"),
    KillPoint(WORKSPACE, "namespace", "after"),
    KillPoint(WORKSPACE, "record", "after"),
    KillPoint("demo/hello", "snapshot", "start"),
    KillPoint("demo/hello", "snapshot", "after"),
    KillPoint("demo/hello", "upload", "start"),
    KillPoint("demo/hello", "upload", "during"),
    KillPoint("demo/hello", "upload", "after"),
    KillPoint("demo/hello", "build", "start"),
    KillPoint("demo/hello", "build", "after"),
    KillPoint("demo/hello", "push", "start"),
    KillPoint("demo/hello", "push", "during", 0.03),
    KillPoint("demo/hello", "push", "after"),
    KillPoint("demo/hello", "scaffold", "start"),
    KillPoint("demo/hello", "scaffold", "after"),
    KillPoint("demo/hello", "deploy", "start"),
    KillPoint("demo/hello", "deploy", "during"),
    KillPoint("demo/hello", "deploy", "after"),  # deployed, not recorded
    KillPoint("demo/hello", "record", "start"),
    KillPoint("demo/hello", "record", "after"),  # between functions
    KillPoint("demo/hola", "record", "after"),  # between functions
    KillPoint("demo/ciao", "deploy", "during"),
]
# Default parallelism: the other functions' steps are in flight when the kill lands.
PARALLEL_POINTS = [
    KillPoint("demo/hola", "push", "after"),
    KillPoint("demo/ciao", "deploy", "start"),
    KillPoint("demo/hello", "record", "during"),
]


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plugin(tmp_path_factory.mktemp("crash-plugin"))


def assert_recovered(report: CaseReport) -> None:
    problems = report.problems
    assert not problems, f"{report.point} (died at {report.died_at}):\n" + "\n".join(problems)


@pytest.mark.parametrize("point", SEQUENTIAL_POINTS, ids=str)
def test_apply_killed_one_step_at_a_time_converges(point: KillPoint, plugin_dir: Path, tmp_path: Path) -> None:
    assert_recovered(run_case(tmp_path, plugin_dir, point, parallelism=1))


@pytest.mark.parametrize("point", PARALLEL_POINTS, ids=str)
def test_apply_killed_with_functions_in_parallel_converges(point: KillPoint, plugin_dir: Path, tmp_path: Path) -> None:
    assert_recovered(run_case(tmp_path, plugin_dir, point, parallelism=4))


def test_update_killed_after_deploy_before_record_converges(plugin_dir: Path, tmp_path: Path) -> None:
    def change_env(project: Path) -> tuple[str, ...]:
        assert faasops(project, "apply", "--auto-approve").code == 0
        manifest = yaml.safe_load((project / "faas.yaml").read_text())
        manifest["workspaces"][0]["functions"][1]["env"] = {"GREETING": "buenas"}
        (project / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return ()

    report = run_case(tmp_path, plugin_dir, KillPoint("demo/hola", "deploy", "after"), prepare=change_env)
    assert_recovered(report)


def test_prune_killed_after_delete_before_record_converges(plugin_dir: Path, tmp_path: Path) -> None:
    def remove_ciao(project: Path) -> tuple[str, ...]:
        assert faasops(project, "apply", "--auto-approve").code == 0
        manifest = yaml.safe_load((project / "faas.yaml").read_text())
        manifest["workspaces"][0]["functions"] = [f for f in manifest["workspaces"][0]["functions"] if f["name"] != "ciao"]
        (project / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return ("--prune",)

    report = run_case(tmp_path, plugin_dir, KillPoint("demo/ciao", "delete", "after"), prepare=remove_ciao,
                      pruned=("ciao",))
    assert_recovered(report)


def test_recovering_apply_killed_again_still_converges(plugin_dir: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    first, _ = kill_apply(project, plugin_dir, KillPoint("demo/hello", "deploy", "after"))
    assert not check_after_kill(project, first)
    second, died = kill_apply(project, plugin_dir, KillPoint("demo/hola", "push", "start"))
    assert not check_after_kill(project, second), second.output
    assert died["reason"] == "start of demo/hola push"
    problems, _, interrupted = check_converged(project)
    assert_recovered(CaseReport("twice", died, problems=problems))
    assert interrupted == 1


def test_kill_during_a_real_build_converges_and_leaves_no_build_behind(
        plugin_dir: Path, tmp_path: Path, shared_build_cache: Path) -> None:
    # A private build cache seeded with the shared one: the three identical functions stay
    # cached, the unique one builds for real (~8 s) and is killed 2 s into componentize-py.
    cache = tmp_path / "build-cache"
    cache.mkdir()
    for entry in shared_build_cache.iterdir():
        if entry.is_file():
            try:
                os.link(entry, cache / entry.name)
            except OSError:
                shutil.copy2(entry, cache / entry.name)
    scratch = tmp_path / "tmp"  # the builds' temporary directories go here
    scratch.mkdir()
    env = {"FAASOPS_BUILD_CACHE": str(cache), "TMPDIR": str(scratch)}
    project = make_project(tmp_path / "project", unique="unique")

    killed, died = kill_apply(project, plugin_dir, KillPoint("demo/unique", "build", "during", 2.0), env=env)
    assert not check_after_kill(project, killed), killed.output
    assert died["running"] == ["demo/unique:build"], died
    orphans = processes_under(scratch)  # componentize-py children of the killed apply
    for pid in orphans:  # started (indirectly) by this test: end them by pid, not to slow the rest
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    problems, _, interrupted = check_converged(project, env=env)
    leaked = sorted(p.name for p in scratch.iterdir() if p.name.startswith("faasops-build-"))

    assert_recovered(CaseReport("during build", died, problems=problems))
    assert interrupted == 1
    assert not [p.name for p in cache.iterdir() if ".tmp" in p.name], "temporary files in the build cache"
    assert not orphans, "componentize-py outlived the apply that started it"
    assert not leaked, "the killed build's directory was not cleaned up by the next build"


def processes_under(directory: Path) -> list[int]:
    """Pids of the live processes whose working directory is inside ``directory``. A process
    that already has SIGKILL pending (the parent-death signal its killed apply left it) is on
    its way out, not alive: the kernel delivers that signal as the parent dies, and the scan
    can see the process between delivery and exit."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory) and not _being_killed(entry):
                    found.append(int(entry.name))
    return found


def _being_killed(proc: Path) -> bool:
    """Whether SIGKILL is pending for the process (thread-private or shared pending set)."""
    kill_bit = 1 << (signal.SIGKILL - 1)
    for line in (proc / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd") and int(value.strip(), 16) & kill_bit:
            return True
    return False
