"""Each provider's retry policy, seen through the fault proxy in front of the real service:
transient faults are retried (and counted), permanent ones are not, the time is bounded."""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from faasops.plugins.aws import DynamoDBState, S3SourceStore
from faasops.plugins.ecr import DistributionRegistry, RegistryOptions
from faasops.plugins.kubernetes import KubernetesDeployer
from faasops.plugins.spinkube import SpinKubeScaffolder
from fault_support import NAMESPACE, REGION, FaultyCloud

from faasops.errors import LockError, ProviderError
from faasops.manifest import load_project
from faasops.model import Project, ProviderConfig
from faasops.providers import BuildResult, LockInfo, SourceSnapshot, WorkspaceRecord
from faasops.retry import RetryPolicy, parse_retry_after
from testkit.faultproxy import (
    aws_throttling,
    delay,
    drop,
    http_error,
    kube_status,
    kube_too_many_requests,
    reset_mid_body,
    s3_slow_down,
)

PASSWORD_ENV = "FAASOPS_TEST_REGISTRY_PASSWORD"


@pytest.fixture
def project(cloud: FaultyCloud, tmp_path: Path) -> Project:
    return load_project(cloud.project(tmp_path), "local")


def function(project: Project, name: str = "hello") -> Any:
    return next(f for f in project.functions() if f.name == name)


# ------------------------------------------------------------------------------- faasops.retry


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    import random

    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(0)
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.8 and min(waits) < ceiling * 0.2  # spread over the whole range


def test_attempts_stop_at_max_attempts_and_at_the_time_budget() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    attempts = RetryPolicy(max_attempts=3, max_seconds=100).start(clock=lambda: clock[0], sleep=sleep)
    assert attempts.retry() and attempts.retry() and not attempts.retry()
    assert attempts.made == 3 and len(slept) == 2

    timed = RetryPolicy(max_attempts=100, max_seconds=5, base_delay_s=1, max_delay_s=1).start(
        clock=lambda: clock[0], sleep=sleep)
    clock[0] += 4.5  # most of the budget went into the first attempt
    assert not timed.retry(retry_after=2)  # the wait would end past the deadline
    honoured = RetryPolicy(max_seconds=60, retry_after_cap_s=3).start(clock=lambda: clock[0], sleep=sleep)
    assert honoured.retry(retry_after=2) and slept[-1] >= 2
    assert honoured.retry(retry_after=50) and slept[-1] == 3  # capped


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import datetime

    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:07 GMT", lambda: now) == 7.0


def test_retry_options_are_validated() -> None:
    with pytest.raises(ProviderError, match="max_attempts must be a whole number"):
        RetryPolicy.from_options({"max_attempts": 0}, "providers.deployer")
    with pytest.raises(ProviderError, match="retry_max_seconds must be a positive number"):
        RetryPolicy.from_options({"retry_max_seconds": "1m"}, "providers.registry")
    assert RetryPolicy.from_options({"max_attempts": 2, "retry_max_seconds": 9}, "x") == RetryPolicy(2, 9.0)


# ------------------------------------------------------------------------------- Kubernetes


def deployer(cloud: FaultyCloud, **options: Any) -> KubernetesDeployer:
    return KubernetesDeployer({"kubeconfig": str(cloud.kubeconfig), **options})


def deploy_hello(project: Project, kube: KubernetesDeployer) -> None:
    kube.ensure_workspace(project, project.workspaces[0])
    hello = function(project)
    kube.deploy(project, hello, SpinKubeScaffolder().render(project, hello, "registry.example/hello@sha256:" + "a" * 64))


def test_kubernetes_429_is_retried_after_the_time_the_server_asks(cloud: FaultyCloud, project: Project) -> None:
    cloud.k8s.inject(kube_too_many_requests(retry_after=1), method="PATCH", path="/spinapps/", times=2)
    kube = deployer(cloud)
    started = time.monotonic()
    deploy_hello(project, kube)
    assert time.monotonic() - started >= 2.0  # Retry-After: 1, twice
    assert kube.calls["retries"] == 2 and kube.calls["PATCH spinapps"] == 3
    assert cloud.k8s.stats()["injected"] == {"kube-429": 2}
    assert "hello" in cloud.spinapps()


def test_kubernetes_server_errors_dropped_connections_and_resets_are_retried(cloud: FaultyCloud, project: Project) -> None:
    cloud.k8s.inject(http_error(500), method="GET", path="/namespaces/storefront$", times=1)
    cloud.k8s.inject(drop(), method="PATCH", path="/namespaces/storefront\\?", times=1)
    cloud.k8s.inject(kube_status(503, "ServiceUnavailable", "etcd leader changed"), method="GET",
                     path="/horizontalpodautoscalers", times=1)
    cloud.k8s.inject(reset_mid_body(), method="PATCH", path="/spinapps/hello", times=1)
    cloud.k8s.inject(drop(after_forward=True), method="PATCH", path="/horizontalpodautoscalers/", times=1)
    cloud.k8s.inject(http_error(502), method="DELETE", times=1)
    cloud.k8s.inject(http_error(504), method="GET", path="/spinapps\\?", times=1)
    kube = deployer(cloud)
    deploy_hello(project, kube)
    checkout = function(project, "checkout")  # autoscaled: an HPA too
    kube.deploy(project, checkout, SpinKubeScaffolder().render(project, checkout, "r.example/c@sha256:" + "b" * 64))
    kube.undeploy(project, "storefront", NAMESPACE, "checkout")
    live = kube.observe(project, project.workspaces)
    assert sorted(live) == ["storefront/hello"]
    assert kube.calls["retries"] == cloud.k8s.stats()["injected_total"] == 7


def test_kubernetes_timeouts_are_retried(cloud: FaultyCloud, project: Project) -> None:
    cloud.k8s.inject(delay(5), method="GET", times=1)
    kube = deployer(cloud, request_timeout_seconds=0.5)
    deploy_hello(project, kube)
    # The held GET timed out after 0.5 s and was retried (waiting out the 5 s delay retries nothing).
    assert kube.calls["retries"] == 1


@pytest.mark.parametrize("status, reason, expected", [
    (400, "BadRequest", "was rejected (400)"),
    (403, "Forbidden", "forbidden: faasops may not patch spinapps in namespace storefront (403)"),
    (404, "NotFound", "the cluster has no SpinApp CRD"),
    (409, "Conflict", "conflict with another field manager"),
    (422, "Invalid", "was rejected (422)"),
])
def test_kubernetes_permanent_answers_are_not_retried(cloud: FaultyCloud, project: Project, status: int,
                                                      reason: str, expected: str) -> None:
    cloud.k8s.inject(kube_status(status, reason, f"injected {reason}"), method="PATCH", path="/spinapps/")
    kube = deployer(cloud)
    with pytest.raises(ProviderError, match=re.escape(expected)):
        deploy_hello(project, kube)
    assert kube.calls["PATCH spinapps"] == 1 and kube.calls["retries"] == 0


def test_kubernetes_retries_end_within_retry_max_seconds(cloud: FaultyCloud, project: Project) -> None:
    cloud.k8s.inject(kube_status(503, "ServiceUnavailable", "the server is currently unable to handle the request"))
    kube = deployer(cloud, max_attempts=50, retry_max_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as failed:
        deploy_hello(project, kube)
    assert time.monotonic() - started < 4  # 50 attempts would take far longer
    message = str(failed.value)
    assert message.startswith("get Namespace storefront failed (503): the server is currently unable")
    assert "gave up after" in message and "retry_max_seconds" in message and "\n" not in message


def test_kubernetes_max_attempts_one_turns_retries_off(cloud: FaultyCloud, project: Project) -> None:
    cloud.k8s.inject(http_error(500), times=1)
    kube = deployer(cloud, max_attempts=1)
    with pytest.raises(ProviderError, match=r"failed \(500\)"):
        deploy_hello(project, kube)
    assert cloud.k8s.stats()["requests"] == 1


# ------------------------------------------------------------------------------- registry


@pytest.fixture
def registry(cloud: FaultyCloud, project: Project, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(PASSWORD_ENV, cloud.registry_password)

    def make(**options: Any) -> DistributionRegistry:
        config = ProviderConfig("registry", "oci", {"registry_url": cloud.oci.url, "username": "AWS",
                                                    "password_env": PASSWORD_ENV, **options})
        return DistributionRegistry(project, RegistryOptions.parse(config))

    return make


@pytest.fixture
def build(tmp_path: Path) -> BuildResult:
    """A stand-in component, new to the registry (which stores bytes; it does not run them)."""
    data = b"\0asm\x01\0\0\0" + os.urandom(16) + bytes(range(256)) * 1200
    path = tmp_path / "component.wasm"
    path.write_bytes(data)
    return BuildResult("sha256:" + "c" * 64, path, "sha256:" + hashlib.sha256(data).hexdigest(), cached=True)


CREATED = "2025-01-01T00:00:00Z"


def test_registry_upload_session_failing_midway_restarts_the_upload(cloud: FaultyCloud, project: Project,
                                                                     registry: Any, build: BuildResult) -> None:
    cloud.oci.inject(http_error(503), method="PUT", path="/blobs/uploads/", times=1)
    cloud.oci.inject(drop(), method="POST", path="/blobs/uploads/", after=1, times=1)
    pushing = registry()
    artifact = pushing.push(function(project), build, CREATED)
    assert artifact.pushed
    assert pushing.calls["blob.upload restarted"] == 2
    assert cloud.registry_tags(f"faasops/shop/{NAMESPACE}/hello") == [build.build_key[7:23]]


def test_registry_upload_whose_answer_was_lost_is_not_uploaded_again(cloud: FaultyCloud, project: Project,
                                                                      registry: Any, build: BuildResult) -> None:
    cloud.oci.inject(drop(after_forward=True), method="PUT", path="/blobs/uploads/", times=1)
    pushing = registry()
    assert pushing.push(function(project), build, CREATED).pushed
    assert pushing.calls["blob.upload restarted"] == 0  # the HEAD after the failure found it
    assert pushing.calls["registry.PUT blob"] == 3  # config, wasm, locked app: none twice


def test_registry_idempotent_requests_are_retried(cloud: FaultyCloud, project: Project, registry: Any,
                                                  build: BuildResult) -> None:
    cloud.oci.inject(http_error(500), method="HEAD", path="/manifests/", times=2)
    cloud.oci.inject(http_error(429, headers={"Retry-After": "1"}), method="PUT", path="/manifests/", times=1)
    cloud.oci.inject(drop(), method="HEAD", path="/blobs/sha256:", times=1)
    cloud.oci.inject(delay(5), method="HEAD", path="/blobs/sha256:", times=1)
    pushing = registry(timeout_seconds=1)
    started = time.monotonic()
    assert pushing.push(function(project), build, CREATED).pushed
    assert time.monotonic() - started >= 1.0  # the 429's Retry-After
    assert pushing.calls["registry.retries"] == cloud.oci.stats()["injected_total"] == 5


def test_registry_permanent_answers_are_not_retried(cloud: FaultyCloud, project: Project, registry: Any,
                                                    build: BuildResult) -> None:
    cloud.oci.inject(http_error(403, '{"errors":[{"code":"DENIED","message":"no push"}]}', "application/json"),
                     method="HEAD", path="/manifests/")
    with pytest.raises(ProviderError, match="denied HEAD manifest .* for user AWS: HTTP 403"):
        registry().push(function(project), build, CREATED)
    assert cloud.oci.stats()["requests"] == 1


def test_registry_gives_up_with_one_clear_line(cloud: FaultyCloud, project: Project, registry: Any,
                                               build: BuildResult) -> None:
    cloud.oci.inject(http_error(503, "overloaded"), method="POST", path="/blobs/uploads/")
    with pytest.raises(ProviderError) as failed:
        registry(max_attempts=3).push(function(project), build, CREATED)
    message = str(failed.value)
    assert "blob upload in faasops/shop/storefront/hello failed with HTTP 503: overloaded" in message
    assert "still failing after retries: max_attempts 3" in message and "\n" not in message
    assert cloud.oci.stats()["by_request"]["POST"] == 3


# ------------------------------------------------------------------------------- AWS


def state(cloud: FaultyCloud, **options: Any) -> DynamoDBState:
    return DynamoDBState("shop", "faasops-state", region=REGION, endpoint_url=cloud.aws.url, create_table=True,
                         **options)


def lock_info(name: str = "ci") -> LockInfo:
    import os
    import socket

    return LockInfo(id=f"lock-{name}", holder=name, host=socket.gethostname(), pid=os.getpid(),
                    command="faasops apply", created_at="2025-01-01T00:00:00Z", expires_at="")


def test_dynamodb_throttling_is_retried_by_botocore(cloud: FaultyCloud) -> None:
    backend = state(cloud)
    backend.put_workspace(WorkspaceRecord("other", {}))  # creates the table
    cloud.aws.reset_stats()
    backend.calls.clear()
    cloud.aws.inject(aws_throttling("ThrottlingException"), target="TransactWriteItems", times=2)
    cloud.aws.inject(aws_throttling("ProvisionedThroughputExceededException"), target="Query", times=1)
    backend.put_workspace(WorkspaceRecord("storefront", {"namespace": "storefront"}))
    assert "storefront" in backend.read().workspaces
    by_request = cloud.aws.stats()["by_request"]
    assert by_request["POST TransactWriteItems"] == 3 and backend.calls["dynamodb.TransactWriteItems"] == 1
    assert by_request["POST Query"] == 2
    backend.close()


def test_dynamodb_gives_up_after_max_attempts_attempts(cloud: FaultyCloud) -> None:
    backend = state(cloud, max_attempts=2)
    backend.put_workspace(WorkspaceRecord("storefront", {}))
    cloud.aws.reset_stats()
    cloud.aws.inject(aws_throttling(), target="Query")
    with pytest.raises(ProviderError, match=r"Query was throttled \(ThrottlingException\) and still failed after 2 attempts"):
        backend.read()
    assert cloud.aws.stats()["by_request"]["POST Query"] == 2  # attempts, not retries
    backend.close()


def test_dynamodb_server_errors_and_timeouts_are_retried(cloud: FaultyCloud) -> None:
    backend = state(cloud, timeout_s=1)
    backend.put_workspace(WorkspaceRecord("storefront", {}))
    cloud.aws.inject(http_error(500, '{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
                                     '"message":"Internal server error"}', "application/x-amz-json-1.0"),
                     target="Query", times=1)
    cloud.aws.inject(delay(4), target="Query", times=1)
    cloud.aws.inject(reset_mid_body(), target="Query", times=1)
    started = time.monotonic()
    assert "storefront" in backend.read().workspaces
    assert time.monotonic() - started < 4
    assert cloud.aws.stats()["injected_total"] == 3
    backend.close()


def test_dynamodb_permanent_server_error_is_one_line(cloud: FaultyCloud) -> None:
    backend = state(cloud, max_attempts=2)
    backend.read()
    cloud.aws.inject(http_error(500, '{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
                                     '"message":"Internal server error"}', "application/x-amz-json-1.0"),
                     target="TransactWriteItems")
    with pytest.raises(ProviderError) as failed:
        backend.put_workspace(WorkspaceRecord("storefront", {}))
    assert str(failed.value) == ("DynamoDB table 'faasops-state': TransactWriteItems failed: InternalServerError: "
                                 "Internal server error (HTTP 500, still failing after 2 attempts)")
    backend.close()


def test_lock_whose_write_answer_was_lost_is_still_ours(cloud: FaultyCloud) -> None:
    backend = state(cloud)
    backend.read()
    backend.put_workspace(WorkspaceRecord("storefront", {}))  # the table exists
    cloud.aws.inject(drop(after_forward=True), target="PutItem", times=1)
    lock = backend.acquire_lock(lock_info(), timeout_s=0)
    assert lock.id == "lock-ci" and backend.current_lock().id == "lock-ci"
    assert cloud.aws.stats()["by_request"]["POST PutItem"] == 2  # the retry failed its condition
    backend.release_lock(lock.id)
    assert backend.current_lock() is None
    backend.close()


def test_force_unlock_whose_answer_was_lost_succeeds(cloud: FaultyCloud) -> None:
    holder = state(cloud)
    holder.put_workspace(WorkspaceRecord("storefront", {}))
    lock = holder.acquire_lock(lock_info("gone"), timeout_s=0)
    holder._stop_heartbeat()
    admin = state(cloud)
    cloud.aws.inject(drop(after_forward=True), target="DeleteItem", times=1)
    admin.force_unlock(lock.id)
    assert admin.current_lock() is None
    with pytest.raises(LockError, match="not locked"):
        admin.force_unlock(lock.id)
    holder.close()
    admin.close()


def test_s3_slow_down_is_retried(cloud: FaultyCloud, project: Project) -> None:
    store = S3SourceStore("acme-faasops-sources", region=REGION, endpoint_url=cloud.aws.url, create_bucket=True)
    cloud.aws.inject(s3_slow_down(), method="PUT", path="^/acme-faasops-sources/sources/", times=2)
    snapshot = SourceSnapshot(digest="sha256:" + "d" * 64, archive=b"archive bytes", files=("app.py",), size=13)
    uri = store.upload(function(project), snapshot)
    assert uri.startswith("s3://acme-faasops-sources/sources/")
    assert cloud.aws.stats()["injected"] == {"s3-slow-down": 2}
    store.close()
