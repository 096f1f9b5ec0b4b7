"""The cloud example applied through fault-injecting proxies in front of moto (DynamoDB, S3, the
ECR API), the registry and the Kubernetes emulator, with the real CLI.

Transient faults — throttling, 5xx, 429 with Retry-After, dropped connections, resets, timeouts —
are absorbed by retries: apply succeeds and the proxies' stats show the injections. A permanent
fault ends the run with exit 1 and one clear line; once it is gone, apply converges and plan is
clean, the state consistent.

A 409 from another field manager (a conflict on server-side apply) is reported and resolved with
``--force-conflicts`` in ``tests/test_cloud_e2e.py::test_drift_made_with_kubectl_shows_in_plan_
and_apply_restores_it``; that 409 and the other permanent answers are never retried
(``test_provider_retries.py::test_kubernetes_permanent_answers_are_not_retried``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fault_support import FaultyCloud

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

pytestmark = pytest.mark.slow  # whole applies through fault-injecting proxies

DYNAMODB_500 = ('{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
                '"message":"Internal server error"}')


def assert_converges(cloud: FaultyCloud, project: Path) -> None:
    applied = cloud.faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    plan = cloud.faasops(project, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output
    assert cloud.consistency_problems() == []


def test_transient_aws_faults_are_retried_and_apply_succeeds(cloud: FaultyCloud, tmp_path: Path) -> None:
    project = cloud.project(tmp_path, state={"timeout_seconds": 1})
    aws = cloud.aws
    aws.inject(aws_throttling("ThrottlingException"), target="TransactWriteItems", times=2)
    aws.inject(aws_throttling("ProvisionedThroughputExceededException"), target="PutItem", times=2)
    aws.inject(http_error(500, DYNAMODB_500, "application/x-amz-json-1.0"), target="Query", times=1)
    aws.inject(drop(), target="GetItem", times=1)
    aws.inject(drop(after_forward=True), target="TransactWriteItems", after=1, times=1)  # answer lost
    aws.inject(delay(3), target="Query", after=1, times=1)  # > timeout_seconds; the retry of the 500
    aws.inject(s3_slow_down(), method="PUT", path="^/acme-faasops-sources/sources/", times=1)
    aws.inject(http_error(503), method="HEAD", path="^/acme-faasops-sources/sources/", times=1)

    applied = cloud.faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    injected = aws.stats()["injected"]
    assert injected == {"aws-throttling": 2, "aws-ProvisionedThroughputExceededException": 2, "http-500": 1,
                        "drop": 1, "drop-after-forward": 1, "delay": 1, "s3-slow-down": 1, "http-503": 1}, aws.stats()
    assert cloud.faasops(project, "plan", "--detailed-exitcode").code == 0
    assert cloud.consistency_problems() == []


def test_transient_kubernetes_and_registry_faults_are_retried_and_apply_succeeds(cloud: FaultyCloud,
                                                                                 tmp_path: Path) -> None:
    project = cloud.project(tmp_path, deployer={"request_timeout_seconds": 1}, registry={"timeout_seconds": 5})
    k8s, oci = cloud.k8s, cloud.oci
    k8s.inject(kube_too_many_requests(retry_after=1), method="PATCH", path="/spinapps/", times=1)
    k8s.inject(kube_status(500, "InternalError", "Internal error occurred: etcdserver: leader changed"),
               method="GET", path="/spinapps\\?", times=1)
    k8s.inject(drop(), method="GET", path="/namespaces/storefront$", times=1)
    k8s.inject(reset_mid_body(), method="PATCH", path="/horizontalpodautoscalers/", times=1)
    k8s.inject(drop(after_forward=True), method="PATCH", path="/namespaces/", times=1)
    k8s.inject(delay(3), method="GET", path="/scaledobjects", times=1)  # > request_timeout_seconds
    oci.inject(http_error(503), method="PUT", path="/blobs/uploads/", times=1)
    oci.inject(drop(), method="HEAD", path="/manifests/", times=1)
    oci.inject(http_error(500), method="PUT", path="/manifests/", times=1)
    oci.inject(http_error(429, headers={"Retry-After": "1"}), method="POST", path="/blobs/uploads/", times=1)

    applied = cloud.faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert k8s.stats()["injected_total"] == 6, k8s.stats()
    assert oci.stats()["injected_total"] == 4, oci.stats()
    assert cloud.faasops(project, "plan", "--detailed-exitcode").code == 0
    assert cloud.consistency_problems() == []


def test_random_faults_on_every_service_are_absorbed(cloud: FaultyCloud, tmp_path: Path) -> None:
    project = cloud.project(tmp_path, state={"max_attempts": 8}, sources={"max_attempts": 8},
                            registry={"max_attempts": 8}, deployer={"max_attempts": 8})
    dynamodb = ("X-Amz-Target", "^DynamoDB_")
    cloud.aws.inject(aws_throttling(), header=dynamodb, probability=0.1)
    cloud.aws.inject(http_error(500, DYNAMODB_500, "application/x-amz-json-1.0"), header=dynamodb, probability=0.05)
    cloud.aws.inject(s3_slow_down(), path="^/acme-faasops-sources", probability=0.1)
    cloud.oci.inject(http_error(503), probability=0.1)
    cloud.oci.inject(drop(), probability=0.05)
    cloud.k8s.inject(kube_too_many_requests(retry_after=0), probability=0.1)
    cloud.k8s.inject(drop(after_forward=True), probability=0.05)

    applied = cloud.faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    stats = cloud.stats()
    assert all(s["injected_total"] > 0 for s in stats.values()), stats
    cloud.disable_faults()
    assert_converges(cloud, project)


def test_dynamodb_failing_permanently_ends_apply_with_one_clear_line(cloud: FaultyCloud, tmp_path: Path) -> None:
    project = cloud.project(tmp_path)
    cloud.aws.inject(http_error(500, DYNAMODB_500, "application/x-amz-json-1.0"), target="TransactWriteItems")

    failed = cloud.faasops(project, "apply", "--auto-approve")
    assert failed.code == 1
    assert "Traceback" not in failed.err
    reasons = [line for line in failed.err.splitlines() if line.startswith("  storefront")]
    assert reasons == [("  storefront: DynamoDB table 'faasops-state': TransactWriteItems failed: InternalServerError: "
                        "Internal server error (HTTP 500, still failing after 5 attempts)")], failed.err
    assert "Error: Apply failed: 1 failed, 2 not started" in failed.err
    assert cloud.lock_item() is None  # released
    assert not [t for t in cloud.tasks() if t["status"]["S"] in ("pending", "running")]
    assert cloud.state_items().keys() <= {"META#SERIAL"}  # nothing recorded

    cloud.disable_faults()
    assert_converges(cloud, project)


def test_kubernetes_forbidding_deploys_ends_apply_with_one_clear_line(cloud: FaultyCloud, tmp_path: Path) -> None:
    project = cloud.project(tmp_path)
    cloud.k8s.inject(kube_status(403, "Forbidden", 'spinapps.core.spinkube.dev "hello" is forbidden: User '
                                 '"system:serviceaccount:ci:faasops" cannot patch resource "spinapps"'),
                     method="PATCH", path="/spinapps/")

    failed = cloud.faasops(project, "apply", "--auto-approve", "-p", "1")
    assert failed.code == 1 and "Traceback" not in failed.err
    reasons = [line for line in failed.err.splitlines() if line.startswith("  storefront/")]
    assert len(reasons) == 1, failed.err
    assert "forbidden: faasops may not patch spinapps in namespace storefront (403): grant it RBAC permission" in reasons[0]
    assert cloud.k8s.stats()["injected"] == {"kube-403": 1}  # not retried
    records = [sk for sk in cloud.state_items() if "#FN#" in sk]
    assert records == []  # a function is recorded only after its deploy

    cloud.disable_faults()
    assert_converges(cloud, project)
