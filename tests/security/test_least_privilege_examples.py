"""The least-privilege examples SECURITY.md points to (``examples/security/``) are well formed,
and they are enough: every AWS call, registry request and Kubernetes request faasops makes while
planning (read-only identity), while applying, destroying and invoking (deployer identity) and
while collecting garbage (``gc`` and ``destroy --purge``: the maintenance identity) is allowed by
them — checked by recording the calls against the cloud example on moto, the registry and the
Kubernetes emulator, and evaluating them against the policies and roles.

The Kubernetes emulator serves no ``rbac.authorization.k8s.io`` group, so the RBAC documents are
checked for structure here (and for coverage below), not applied; the Namespace and
ServiceAccount of the same file are applied with ``kubectl apply --server-side``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from click.testing import CliRunner

from faasops.cli import cli

from faasops.engine import Engine
from faasops.errors import ProviderError
from faasops.manifest import load_project
from faasops.plan import PlanOptions
from faasops.providers import InvokeRequest

from cloud_security_support import Secrets, SecureCloud
from least_privilege_support import (
    EXAMPLES,
    IAM_ACTION,
    RBAC_VERBS,
    kube_needs,
    load_policy,
    load_rbac,
    policy_allows,
    recording,
    role_rules,
    rules_allow,
)

POLICIES = ("iam-plan-policy.json", "iam-apply-policy.json", "iam-gc-policy.json")


@pytest.mark.parametrize("name", POLICIES)
def test_iam_policy_is_valid_json_with_known_looking_actions_and_arns(name: str) -> None:
    policy = json.loads((EXAMPLES / name).read_text())
    assert policy["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids)
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert actions and all(IAM_ACTION.match(action) for action in actions), actions
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource == "*" and actions == ["ecr:GetAuthorizationToken"] or resource.startswith("arn:aws:"), resource
    assert "*" not in json.dumps(policy).replace('"*"', "").replace("/*", "").replace("index/*", ""), \
        "wildcards only for ecr:GetAuthorizationToken and below a prefix"


def test_plan_policy_is_read_only() -> None:
    actions = {a for s in load_policy("iam-plan-policy.json")["Statement"] for a in s["Action"]}
    # eks:DescribeCluster: `aws eks update-kubeconfig` in the CI example; it reads the cluster's
    # endpoint and CA, nothing inside the cluster (RBAC governs that).
    assert actions <= {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:DescribeTable", "eks:DescribeCluster"}, actions


def test_rbac_manifests_are_well_formed() -> None:
    documents = load_rbac()
    kinds = [doc["kind"] for doc in documents]
    assert kinds.count("ClusterRole") == 3 and "ServiceAccount" in kinds
    roles = {doc["metadata"]["name"] for doc in documents if doc["kind"] == "ClusterRole"}
    for doc in documents:
        assert set(doc) <= {"apiVersion", "kind", "metadata", "rules", "roleRef", "subjects"}, doc
        assert doc["metadata"]["name"]
        if doc["kind"] in ("ClusterRole", "Role"):
            assert doc["apiVersion"] == "rbac.authorization.k8s.io/v1"
            for rule in doc["rules"]:
                assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
                assert all(isinstance(v, str) for key in rule for v in rule[key]), rule
                assert set(rule["verbs"]) <= RBAC_VERBS and "*" not in rule["resources"], rule
                assert "secrets" not in rule["resources"], "faasops never reads Secrets"
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert doc["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
            assert doc["roleRef"]["name"] in roles
            assert doc["subjects"] and all(s["kind"] in ("ServiceAccount", "User", "Group") for s in doc["subjects"])


# ------------------------------------------------------------------------------ coverage


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCloud]:
    services = SecureCloud(tmp_path_factory.mktemp("least-privilege"), Secrets())
    try:
        yield services.start()
    finally:
        services.stop()


def test_examples_allow_every_call_faasops_makes(cloud: SecureCloud, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in cloud.env.items():
        monkeypatch.setenv(name, value)
    project = cloud.copy_example(tmp_path)
    # The IRSA-style path: ECR credentials from GetAuthorizationToken, no password override.
    cloud.overlay(project, registry={"username": None, "password_env": None})
    engine = lambda: Engine(load_project(project, "local"))  # noqa: E731
    assert cloud.kube is not None

    with recording(monkeypatch) as calls:
        # A pull-request job: plan, task history, logs — the read-only identity.
        cloud.kube.reset_stats()
        with engine() as e:
            assert e.plan().has_changes
            e.state.list_tasks()
            e.state.list_tasks("storefront")
            plan_needs = calls.needs()
            with pytest.raises(ProviderError):  # no logs table: the read (and its diagnosis) still counts
                e.operations_provider("logs").read("storefront", "hello", limit=5)
        read_needs, read_kube = calls.needs(), kube_needs(cloud.kube.stats())

        # The deploy job: apply (creating the table, bucket and repositories), re-apply a change
        # (blob and manifest checks), destroy; and an operator's invoke.
        calls.clear()
        cloud.kube.reset_stats()
        for options in (None, "change", PlanOptions(destroy=True)):
            if options == "change":
                cloud.overlay(project, registry={"username": None, "password_env": None},
                              extra={"workspaces": [{"name": "storefront",
                                                     "functions": [{"name": "hello", "env": {"V": "2"}}]}]})
                options = None
            with engine() as e, e.locked("faasops apply"):
                result = e.apply(e.plan(options))
                assert result.ok, result.failed
        apply_needs, apply_kube = calls.needs(), kube_needs(cloud.kube.stats())
        cloud.kube.reset_stats()
        with engine() as e, pytest.raises(ProviderError):  # nothing serves it: the request is what counts
            e.operations_provider("invoker").invoke("storefront", "hello", InvokeRequest("GET", "/"))
        invoke_kube = kube_needs(cloud.kube.stats())

    assert {n.action for n in apply_needs} >= {"ecr:GetAuthorizationToken", "ecr:PutImage", "s3:PutObject",
                                               "dynamodb:ConditionCheckItem", "ecr:CreateRepository"}
    print("AWS permissions used (read):", sorted({n.action for n in read_needs}))
    print("AWS permissions used (apply):", sorted({n.action for n in apply_needs}))
    print("Kubernetes (read):", sorted(read_kube), "(apply):", sorted(apply_kube), "(invoke):", sorted(invoke_kube))
    plan_policy, apply_policy = load_policy("iam-plan-policy.json"), load_policy("iam-apply-policy.json")
    assert [str(n) for n in sorted(read_needs, key=str) if not policy_allows(plan_policy, n)] == []
    # The deploy job plans before it applies; it never reads logs.
    assert [str(n) for n in sorted(plan_needs | apply_needs, key=str) if not policy_allows(apply_policy, n)] == []

    assert read_kube and apply_kube and invoke_kube
    plan_rules, apply_rules, invoke_rules = role_rules("faasops-plan"), role_rules("faasops-apply"), role_rules("faasops-invoke")
    assert sorted(n for n in read_kube if not rules_allow(plan_rules, *n)) == []
    assert sorted(n for n in read_kube | apply_kube if not rules_allow(apply_rules, *n)) == []
    assert sorted(n for n in invoke_kube if not rules_allow(invoke_rules, *n)) == []


@pytest.mark.slow  # the changed function is built for real (a shared-cache hit after the first run)
def test_gc_policy_allows_every_call_of_gc_and_destroy_purge(cloud: SecureCloud, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in cloud.env.items():
        monkeypatch.setenv(name, value)
    project = cloud.copy_example(tmp_path)
    cloud.overlay(project, registry={"username": None, "password_env": None})  # credentials from GetAuthorizationToken
    # Garbage, made by the deploy identity (not recorded): an apply, a source change, an apply.
    handler = project / "functions" / "hello" / "app.py"
    for text in (None, "Hello from the maintenance job!"):
        if text is not None:
            handler.write_text(handler.read_text().replace("Hello from Blue FaaS!", text))
        with Engine(load_project(project, "local")) as e, e.locked("faasops apply"):
            result = e.apply(e.plan())
            assert result.ok, result.failed

    def faasops(*args: str) -> dict:
        run = CliRunner().invoke(cli, ["-C", str(project), "-e", "local", *args], catch_exceptions=False)
        assert run.exit_code == 0, run.output
        return json.loads(run.output) if "--format" in args else {}

    assert cloud.kube is not None
    with recording(monkeypatch) as calls:
        cloud.kube.reset_stats()
        freed = faasops("gc", "--keep", "0", "--format", "json")
        gc_needs, gc_kube = calls.needs(), kube_needs(cloud.kube.stats())
        calls.clear()
        cloud.kube.reset_stats()
        faasops("destroy", "--auto-approve", "--purge")
        purge_needs, purge_kube = calls.needs(), kube_needs(cloud.kube.stats())

    # The run removed something of every kind the policy is for: a source archive, an image, then
    # (purge) the repositories; otherwise the recording proves nothing about deleting.
    assert freed["kinds"]["source"]["count"] >= 1 and freed["kinds"]["image"]["count"] >= 1, freed
    assert {n.action for n in gc_needs} >= {"s3:ListBucket", "s3:DeleteObject", "ecr:BatchDeleteImage",
                                            "ecr:DescribeRepositories", "dynamodb:PutItem"}
    assert "ecr:DeleteRepository" in {n.action for n in purge_needs}
    print("AWS permissions used (gc):", sorted({n.action for n in gc_needs}))
    print("AWS permissions used (destroy --purge):", sorted({n.action for n in purge_needs}))
    print("Kubernetes (gc):", sorted(gc_kube), "(destroy --purge):", sorted(purge_kube))
    gc_policy = load_policy("iam-gc-policy.json")
    assert [str(n) for n in sorted(gc_needs | purge_needs, key=str) if not policy_allows(gc_policy, n)] == []
    # Least privilege: every action the policy grants is one these runs used.
    assert {a for s in gc_policy["Statement"] for a in s["Action"]} == {n.action for n in gc_needs | purge_needs}
    # The read-only identity can do none of the deleting (nor the listing and locking before it).
    plan_policy = load_policy("iam-plan-policy.json")
    writes = {n for n in gc_needs | purge_needs if n.action.split(":")[1].startswith(("Delete", "BatchDelete", "Put"))}
    assert writes and [str(n) for n in sorted(writes, key=str) if policy_allows(plan_policy, n)] == []
    assert [str(n) for n in sorted(gc_needs | purge_needs, key=str)
            if n.action.startswith(("s3:", "ecr:")) and policy_allows(plan_policy, n)] == []
    # gc never talks to the cluster; the destroy before the purge is the deployer's RBAC role.
    assert gc_kube == set()
    assert purge_kube and sorted(n for n in purge_kube if not rules_allow(role_rules("faasops-apply"), *n)) == []


def test_gc_policy_deletes_only_below_the_sources_prefix_and_in_faasops_repositories() -> None:
    from least_privilege_support import Need, _repository

    policy = load_policy("iam-gc-policy.json")
    bucket = "arn:aws:s3:::acme-faasops-sources"
    assert policy_allows(policy, Need("s3:DeleteObject", f"{bucket}/sources/shop/{'0' * 64}.tar.gz"))
    assert not policy_allows(policy, Need("s3:DeleteObject", f"{bucket}/backups/state.json"))
    assert policy_allows(policy, Need("s3:ListBucket", bucket, (("s3:prefix", "sources/shop/"),)))
    assert not policy_allows(policy, Need("s3:ListBucket", bucket, (("s3:prefix", ""),)))
    assert not policy_allows(policy, Need("s3:ListBucket", bucket))  # no prefix: the whole bucket
    assert policy_allows(policy, Need("ecr:BatchDeleteImage", _repository("faasops/shop/storefront/hello")))
    assert not policy_allows(policy, Need("ecr:BatchDeleteImage", _repository("other-team/app")))
    assert not policy_allows(policy, Need("ecr:DeleteRepository", _repository("other-team/app")))
    # The maintenance identity pushes nothing and creates nothing.
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not actions & {"ecr:PutImage", "ecr:CreateRepository", "s3:PutObject", "dynamodb:CreateTable"}


def test_namespace_and_service_account_of_the_rbac_example_apply_with_kubectl(cloud: SecureCloud, tmp_path: Path) -> None:
    core = [doc for doc in load_rbac() if doc["apiVersion"] == "v1"]
    manifest = tmp_path / "core.yaml"
    manifest.write_text(yaml.safe_dump_all(core))
    applied = cloud.kubectl("apply", "--server-side", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    got = cloud.kubectl("-n", "faasops-system", "get", "serviceaccount", "faasops", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("role/faasops-apply")


def test_the_policy_check_notices_a_missing_permission_or_a_wrong_condition() -> None:
    from least_privilege_support import Need, _repository

    policy = load_policy("iam-apply-policy.json")
    push = Need("ecr:PutImage", _repository("faasops/shop/storefront/hello"))
    assert policy_allows(policy, push)
    assert not policy_allows(policy, Need("ecr:PutImage", _repository("other-team/app")))
    stripped = {"Statement": [{**s, "Action": [a for a in s["Action"] if a != "ecr:PutImage"]}
                              for s in policy["Statement"] if isinstance(s["Action"], list)]}
    assert not policy_allows(stripped, push)
    key = "arn:aws:s3:::acme-faasops-sources/sources/x.tar.gz"
    assert policy_allows(policy, Need("s3:PutObject", key, (("s3:x-amz-server-side-encryption", "AES256"),)))
    assert not policy_allows(policy, Need("s3:PutObject", key))
    assert not rules_allow(role_rules("faasops-plan"), "core.spinkube.dev", "spinapps", "patch")
