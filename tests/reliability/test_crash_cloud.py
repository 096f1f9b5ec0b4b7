"""Two SIGKILLs of apply on the cloud stack (DynamoDB state and lock, S3, registry, Kubernetes):
the next apply takes the dead run's lock, marks its open tasks (the deploys not yet recorded:
tasks are written in step groups there) interrupted and converges.
``test_crash_sweep.py`` sweeps many more kill points on the local backend."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from crash_sweep_support import INTERRUPTED, KillPoint, plugin_env, write_plugin
from fault_support import FaultyCloud

from faasops.lock import pid_alive

pytestmark = pytest.mark.slow  # kills cloud applies at every step


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plugin(tmp_path_factory.mktemp("crash-plugin"))


@pytest.mark.parametrize("point, parallelism", [
    (KillPoint("storefront/hello", "deploy", "after"), 1),  # in the cluster, not in the state
    (KillPoint("storefront/checkout", "push", "during", 0.05), 4),  # a blob upload session open
], ids=lambda v: str(v) if isinstance(v, KillPoint) else f"p{v}")
def test_cloud_apply_killed_converges(cloud: FaultyCloud, tmp_path: Path, plugin_dir: Path, point: KillPoint,
                                      parallelism: int) -> None:
    project = cloud.project(tmp_path)
    marker = tmp_path / "killed.json"
    cloud.env.update(plugin_env(plugin_dir, point, marker))
    try:
        killed = cloud.faasops(project, "apply", "--auto-approve", "-p", str(parallelism))
    finally:
        for name in plugin_env(plugin_dir, point, marker):
            cloud.env.pop(name, None)
    assert killed.code == -signal.SIGKILL, killed.output
    running_at_death = json.loads(marker.read_text())["running"]
    lock = cloud.lock_item()
    assert lock is not None and not pid_alive(int(lock["pid"]["N"]))  # stale: its holder is gone
    open_tasks = [t for t in cloud.tasks() if t["status"]["S"] == "running"]
    open_ids = [t["task_id"]["S"] for t in open_tasks]
    # On DynamoDB apply writes a function's tasks in step groups (faasops.executor.TaskJournal):
    # a step that changes the cluster is written as running before it starts, the steps before it
    # with it, and its completion with the record. So a kill leaves open exactly the deploys that
    # started and were not recorded yet — every deploy still running among them.
    opened = {f"{t['workspace']['S']}/{t.get('function', {}).get('S')}:{t['kind']['S']}" for t in open_tasks}
    assert all(name.endswith(":deploy") for name in opened), opened
    assert {name for name in running_at_death if name.endswith(":deploy")} <= opened, (opened, running_at_death)
    if (point.step, point.when) == ("deploy", "after"):
        assert opened == {f"{point.address}:deploy"}, opened

    applied = cloud.faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert cloud.faasops(project, "plan", "--detailed-exitcode").code == 0
    assert cloud.consistency_problems() == []
    tasks = {t["task_id"]["S"]: t for t in cloud.tasks()}
    assert all((tasks[i]["status"]["S"], tasks[i]["message"]["S"]) == ("failed", INTERRUPTED) for i in open_ids)
