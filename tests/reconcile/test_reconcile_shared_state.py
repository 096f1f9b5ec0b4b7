"""Two reconcilers of one repository sharing the cloud state (DynamoDB on moto, the state lock
included) and one cluster (the emulator), as two replicas or a reconciler and a CI job would:
never two applies at once — the one that finds the lock taken skips its round, and plans again
under the lock next time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.availability import unavailable
from testkit.faultproxy import delay
from testkit.kubeapi import KubeEmulator
from testkit.kubectl import KubectlRunner
from testkit.moto import MotoServer, MotoServerNotFound, aws_env
from reconcile_support import DeployRepository, Reconciler, namespace_exists, slow_kube, wait_until


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    try:
        server = MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


def cloud_manifest(moto: MotoServer, workspaces: str) -> str:
    return ("apiVersion: faasops/v1\nproject: rc\nbackend: aws\nproviders:\n"
            f"  state: {{type: dynamodb, table: faasops-state, region: eu-west-1, endpoint_url: '{moto.url}', create_table: true}}\n"
            f"  sources: {{type: s3, bucket: rc-sources, region: eu-west-1, endpoint_url: '{moto.url}', create_bucket: true}}\n"
            f"  registry: {{type: ecr, region: eu-west-1, endpoint_url: '{moto.url}'}}\n"
            "  deployer: {type: kubernetes}\n"
            "workspaces:\n" + workspaces)


def test_two_reconcilers_sharing_the_state_never_apply_at_once(
        moto: MotoServer, repo: DeployRepository, kube: KubeEmulator, kubectl: KubectlRunner, tmp_path: Path,
        start_reconciler: Callable[..., Reconciler]) -> None:
    moto.reset()
    proxy, slow_config = slow_kube(kube, tmp_path)
    try:
        # Each namespace apply takes a while: the other reconciler's rounds meet the lock.
        proxy.inject(delay(2, forward=True), method="PATCH", path=r"^/api/v1/namespaces/")
        env = {**aws_env(), "KUBECONFIG": str(slow_config)}
        repo.push(cloud_manifest(moto, "  - name: demo\n"))
        reconcilers = [start_reconciler("--repo", str(repo.bare), "--interval", "1s",
                                        directory=tmp_path / f"checkout-{n}", env=env) for n in range(2)]

        def applied(plan: str) -> list[dict[str, str]]:
            return [r for reconciler in reconcilers for r in reconciler.rounds()
                    if r["outcome"] == "applied" and r.get("plan") == plan]

        wait_until(lambda: applied("create demo"), "demo is applied", lambda: "\n".join(r.log() for r in reconcilers))
        repo.push(cloud_manifest(moto, "  - name: demo\n  - name: shop\n"))
        wait_until(lambda: applied("create shop"), "shop is applied", lambda: "\n".join(r.log() for r in reconcilers))
        for reconciler in reconcilers:  # both have seen the final state since
            last = max(int(r["round"]) for r in reconciler.rounds())
            reconciler.wait_for_round("a quiet round", lambda r: r["outcome"] == "no_changes", after=last)
    finally:
        proxy.stop()

    assert len(applied("create demo")) == 1 and len(applied("create shop")) == 1
    locked = [r for reconciler in reconcilers for r in reconciler.rounds() if r["outcome"] == "locked"]
    assert locked and all("faasops reconcile" in r["error"] for r in locked)
    assert all(r["outcome"] != "failed" for reconciler in reconcilers for r in reconciler.rounds())
    assert namespace_exists(kubectl, "demo") and namespace_exists(kubectl, "shop")
