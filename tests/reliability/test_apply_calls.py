"""API calls per function applied on the aws stack, counted by the proxies in front of moto
(DynamoDB, S3, the ECR API), the registry and the Kubernetes emulator, with the real CLI.

A changed function whose build is cached and whose artifact is the recorded one costs two
DynamoDB writes (its tasks up to the deploy, then its record with the rest of its tasks), one
server-side apply per object and at most one S3 HEAD (its source is there): the registry and ECR
are not asked what the recorded state already says.
The task history still shows every step, completed, in order.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml
from fault_support import FaultyCloud

FUNCTION_STEPS = ["snapshot", "upload", "build", "push", "scaffold", "deploy", "record"]
# The ECR API and DynamoDB share moto's proxy; the operation (X-Amz-Target) tells them apart.
ECR_OPERATIONS = {"GetAuthorizationToken", "DescribeRepositories", "CreateRepository", "BatchCheckLayerAvailability",
                  "BatchGetImage", "PutImage"}


def with_three_functions(project: Path) -> None:
    """Add ``hola`` to the cloud example: the source of ``hello`` (so its build is cached)."""
    path = project / "faas.yaml"
    document = yaml.safe_load(path.read_text())
    document["workspaces"][0]["functions"].append({"name": "hola", "source": "functions/hello"})
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def scale_hello(project: Path, replicas: int) -> None:
    """A change of one function's manifests that keeps its artifact."""
    path = project / "faas.yaml"
    document = yaml.safe_load(path.read_text())
    document["workspaces"][0]["functions"][0]["replicas"] = replicas
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def raise_memory_limit(project: Path, mebibytes: int) -> None:
    """A change of every function's manifests that keeps its artifact."""
    path = project / "faas.yaml"
    document = yaml.safe_load(path.read_text())
    document["defaults"]["resources"]["limits"]["memory"] = f"{mebibytes}Mi"
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def calls_by_service(cloud: FaultyCloud) -> Counter[str]:
    """The requests the proxies saw since their stats were reset, by service."""
    stats = cloud.stats()
    counts: Counter[str] = Counter()
    for request, n in stats["aws"]["by_request"].items():
        method, _, operation = request.partition(" ")
        if not operation:
            counts["s3"] += n
        elif operation in ECR_OPERATIONS:
            counts["ecr"] += n
        else:
            counts["dynamodb"] += n
    counts["registry"] += stats["registry"]["requests"]
    counts["kubernetes"] += stats["kubernetes"]["requests"]
    return counts


def measured_apply(cloud: FaultyCloud, project: Path) -> Counter[str]:
    for proxy in cloud.proxies:
        proxy.reset_stats()
    applied = cloud.faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    return calls_by_service(cloud)


def test_changed_functions_with_cached_builds_cost_at_most_six_calls_each(cloud: FaultyCloud, tmp_path: Path) -> None:
    project = cloud.project(tmp_path)
    with_three_functions(project)
    first = cloud.faasops(project, "apply", "--auto-approve")
    assert first.code == 0, first.output

    # A run with one function changed (the run's own calls: lock, state read, observe, the
    # namespace's executor, unlock; and one function's) …
    scale_hello(project, 3)
    one = measured_apply(cloud, project)
    # … and with all three changed: two functions more.
    raise_memory_limit(project, 320)
    three = measured_apply(cloud, project)
    per_function = {service: (three[service] - one[service]) / 2 for service in three | one}

    assert per_function.get("dynamodb", 0) <= 2, (one, three)
    # The source archive is content-addressed: one HEAD finds it there (none for a source
    # another function of the run already found, unless both ask at the same moment).
    assert per_function.get("s3", 0) <= 1, (one, three)
    assert per_function.get("ecr", 0) == 0, (one, three)
    assert per_function.get("registry", 0) == 0, (one, three)
    # One server-side apply per object: hola's SpinApp, checkout's SpinApp and HPA; and, once a
    # run, checkout's spot executor (looked up, then applied): hello's plain one was made sure
    # of in both runs.
    assert three["kubernetes"] - one["kubernetes"] == 1 + 2 + 2, (one, three)
    assert sum(per_function.values()) <= 6, per_function
    assert cloud.faasops(project, "plan", "--detailed-exitcode").code == 0


def test_grouped_task_writes_still_show_every_step_of_every_function(cloud: FaultyCloud, tmp_path: Path) -> None:
    project = cloud.project(tmp_path)
    with_three_functions(project)
    assert cloud.faasops(project, "apply", "--auto-approve").code == 0
    raise_memory_limit(project, 384)
    assert cloud.faasops(project, "apply", "--auto-approve").code == 0

    listed = cloud.faasops(project, "tasks", "--limit", "200", "--format", "json")
    assert listed.code == 0, listed.output
    tasks = json.loads(listed.out)
    latest_run = tasks[0]["run_id"]
    by_function: dict[str, list[dict]] = {}
    for task in reversed(tasks):  # oldest first
        if task["run_id"] == latest_run and task.get("function"):
            by_function.setdefault(task["function"], []).append(task)
    assert sorted(by_function) == ["checkout", "hello", "hola"]
    for function, steps in by_function.items():
        assert [t["kind"] for t in steps] == FUNCTION_STEPS, function
        assert {t["status"] for t in steps} == {"completed"}, function
        assert all(t["created_at"] <= t["updated_at"] for t in steps)
        assert [t["created_at"] for t in steps] == sorted(t["created_at"] for t in steps)
    assert not [t for t in cloud.tasks() if t["status"]["S"] in ("pending", "running")]
