"""`faasops reconcile` deploying functions (real builds, from the shared build cache): a pushed
commit reaches the cluster, a change made with kubectl is healed the next round, a real
Prometheus scrapes /metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit.availability import unavailable
from testkit.kubectl import KubectlRunner
from testkit.prometheus import PrometheusServer, PrometheusUnavailable
from reconcile_support import DeployRepository, Reconciler, manifest

HELLO = """\
- name: demo
  functions:
    - name: hello
      source: functions/hello
      replicas: {replicas}
"""


def spinapp(kubectl: KubectlRunner, name: str) -> dict | None:
    found = kubectl("-n", "demo", "get", "spinapp", name, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


@pytest.mark.slow
def test_a_pushed_function_is_deployed_and_a_kubectl_edit_is_healed_next_round(
        repo: DeployRepository, kubeconfig: Path, kubectl: KubectlRunner,
        start_reconciler: Callable[..., Reconciler]) -> None:
    repo.push(manifest(HELLO.format(replicas=1)), "hello")
    reconciler = start_reconciler("--repo", str(repo.bare), "--interval", "1s", env={"KUBECONFIG": str(kubeconfig)})
    first = reconciler.wait_for_round("hello is deployed", lambda r: r["outcome"] == "applied")
    assert first["plan"] == "create demo, create demo/hello"
    assert spinapp(kubectl, "hello")["spec"]["replicas"] == 1

    scaled = repo.push(manifest(HELLO.format(replicas=2)), "scale hello")
    rescaled = reconciler.wait_for_round("the new commit is deployed",
                                         lambda r: r["outcome"] == "applied" and r["revision"] == scaled[:12])
    assert rescaled["plan"] == "update demo/hello"
    assert spinapp(kubectl, "hello")["spec"]["replicas"] == 2

    kubectl("-n", "demo", "patch", "spinapp", "hello", "--type", "merge", "-p", '{"spec":{"replicas":5}}')

    healed = reconciler.wait_for_round("the drift is healed", lambda r: r["drift"] == "1",
                                       after=int(rescaled["round"]))
    assert healed["outcome"] == "applied" and healed["plan"] == "update demo/hello (drift)"
    assert spinapp(kubectl, "hello")["spec"]["replicas"] == 2
    reconciler.wait_for_round("a quiet round after the healing", lambda r: r["outcome"] == "no_changes",
                              after=int(healed["round"]))
    assert reconciler.metric("faasops_reconcile_drift_detected_total") == 1
    assert reconciler.metric("faasops_reconcile_drift_found") == 0  # the last plan found none


@pytest.mark.slow
def test_without_force_conflicts_a_kubectl_edit_fails_the_round_and_counts(
        repo: DeployRepository, kubeconfig: Path, kubectl: KubectlRunner,
        start_reconciler: Callable[..., Reconciler]) -> None:
    repo.push(manifest(HELLO.format(replicas=1)))
    reconciler = start_reconciler("--repo", str(repo.bare), "--interval", "1s", "--no-force-conflicts",
                                  env={"KUBECONFIG": str(kubeconfig)})
    first = reconciler.wait_for_round("hello is deployed", lambda r: r["outcome"] == "applied")

    kubectl("-n", "demo", "patch", "spinapp", "hello", "--type", "merge", "-p", '{"spec":{"replicas":5}}')

    failed = reconciler.wait_for_round("the drift fails the round", lambda r: r["outcome"] == "failed",
                                       after=int(first["round"]))
    assert failed["stage"] == "apply" and failed["drift"] == "1" and "kubectl-patch" in failed["error"]
    assert reconciler.metric("faasops_reconcile_failures_total", stage="apply") >= 1
    assert reconciler.metric("faasops_reconcile_drift_found") == 1
    assert spinapp(kubectl, "hello")["spec"]["replicas"] == 5  # left as found


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_reconcile_metrics(
        repo: DeployRepository, kubeconfig: Path, start_reconciler: Callable[..., Reconciler]) -> None:
    revision = repo.push(manifest(HELLO.format(replicas=1)))
    reconciler = start_reconciler("--repo", str(repo.bare), "--interval", "1s", env={"KUBECONFIG": str(kubeconfig)})
    reconciler.wait_for_round("hello is deployed", lambda r: r["outcome"] == "applied")
    try:
        prometheus = PrometheusServer(scrape_targets=[reconciler.url.removeprefix("http://")])
    except PrometheusUnavailable as exc:
        unavailable(str(exc))
    with prometheus:
        info = prometheus.wait_for("faasops_reconcile_revision_info", timeout_s=60)
        applied = prometheus.wait_for("faasops_reconcile_changes_applied_total", timeout_s=60)
        up = prometheus.wait_for('up{job="exporter"} == 1', timeout_s=60)

    assert info[0]["metric"]["revision"] == revision
    assert float(applied[0]["value"][1]) == 2  # the workspace and the function
    assert up
