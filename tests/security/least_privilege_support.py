"""Checking the example IAM policies and RBAC roles against what faasops really does: record
every AWS API call (botocore), every registry request (the OCI distribution API, which ECR
authorises as ``ecr:*`` actions) and every Kubernetes request (the emulator's audit-style
counters), turn each into the permission it needs on the resource it touched, and evaluate that
against the examples — ``Allow`` statements with ``*`` wildcards and the few ``StringEquals`` and
``StringLike`` conditions the examples use."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "security"
ACCOUNT = "111122223333"
REGION = "eu-west-1"
# `service:Action`, as IAM spells them.
IAM_ACTION = re.compile(r"^(dynamodb|s3|ecr|kms|eks):[A-Z][A-Za-z]+$")  # eks: the CI job's kubeconfig
RBAC_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True)
class Need:
    """One permission a call needed: an IAM action on a resource, with the request's condition
    keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        extra = f" with {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra}"


@dataclass
class Recorder:
    """AWS and registry calls seen while recording."""

    aws: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    registry: list[tuple[str, str]] = field(default_factory=list)

    def clear(self) -> None:
        self.aws.clear()
        self.registry.clear()

    def needs(self) -> set[Need]:
        found = {need for service, operation, params in self.aws for need in aws_needs(service, operation, params)}
        return found | {need for method, url in self.registry for need in registry_needs(method, url)}


@contextmanager
def recording(monkeypatch: Any) -> Iterator[Recorder]:
    """Record every botocore API call and every registry HTTP request made in this process."""
    import botocore.client

    from faasops.plugins import ecr

    recorder = Recorder()
    make_api_call = botocore.client.BaseClient._make_api_call
    http = ecr.DistributionClient._http

    def record_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        recorder.aws.append((client.meta.service_model.endpoint_prefix, operation, params))
        return make_api_call(client, operation, params)

    def record_http(client: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        recorder.registry.append((method, url))
        return http(client, method, url, *args, **kwargs)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record_api_call)
    monkeypatch.setattr(ecr.DistributionClient, "_http", record_http)
    yield recorder


# --------------------------------------------------------------------------------- AWS → IAM


def _table(name: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _repository(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_S3_ACTIONS = {"HeadObject": "GetObject", "GetObject": "GetObject", "PutObject": "PutObject",
               "CreateBucket": "CreateBucket", "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
               "ListObjectsV2": "ListBucket", "HeadBucket": "ListBucket"}
# Listing repositories without naming them is authorised on every repository of the registry.
_ALL_REPOSITORIES = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*"


def aws_needs(service: str, operation: str, params: dict[str, Any]) -> list[Need]:
    """The IAM permissions one API call needs (IAM authorises TransactWriteItems per item)."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return [Need(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table(body["TableName"]))
                    for item in params["TransactItems"] for kind, body in item.items()]
        if operation in ("BatchWriteItem", "BatchGetItem"):  # authorised once per table named
            return [Need(f"dynamodb:{operation}", _table(table)) for table in params["RequestItems"]]
        return [Need(f"dynamodb:{operation}", _table(params["TableName"], params.get("IndexName")))]
    if service == "s3":
        if operation == "DeleteObjects":  # a multi-object delete is authorised per key as s3:DeleteObject
            return [Need("s3:DeleteObject", f"arn:aws:s3:::{params['Bucket']}/{entry['Key']}")
                    for entry in params["Delete"]["Objects"]]
        if operation == "ListObjectsV2":  # on the bucket; the prefix listed is the s3:prefix condition key
            return [Need("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", (("s3:prefix", params.get("Prefix", "")),))]
        action = f"s3:{_S3_ACTIONS[operation]}"
        resource = f"arn:aws:s3:::{params['Bucket']}" + (f"/{params['Key']}" if "Key" in params else "")
        context = (("s3:x-amz-server-side-encryption", params["ServerSideEncryption"]),) \
            if operation == "PutObject" and "ServerSideEncryption" in params else ()
        return [Need(action, resource, context)]
    if service == "api.ecr":
        if operation == "GetAuthorizationToken":
            return [Need("ecr:GetAuthorizationToken", "*")]
        if operation == "DescribeRepositories" and not params.get("repositoryNames"):
            return [Need("ecr:DescribeRepositories", _ALL_REPOSITORIES)]
        names = params.get("repositoryNames") or [params["repositoryName"]]
        tags = tuple((f"aws:RequestTag/{tag['Key']}", tag["Value"]) for tag in params.get("tags", ()))
        needs = [Need(f"ecr:{operation}", _repository(name), tags) for name in names]
        if operation == "CreateRepository" and tags:  # tagging on create is authorised as TagResource too
            needs += [Need("ecr:TagResource", _repository(name), tags) for name in names]
        return needs
    raise AssertionError(f"unexpected AWS service {service} ({operation})")


_REGISTRY_PATH = re.compile(r"^/v2/(?P<repository>.+)/(?P<kind>blobs/uploads|blobs|manifests|tags/list)(?:/(?P<rest>.*))?$")


def registry_needs(method: str, url: str) -> list[Need]:
    """The ECR actions an OCI distribution API request is authorised as."""
    parts = urlsplit(url)
    match = _REGISTRY_PATH.match(parts.path)
    if match is None:  # `GET /v2/` and the token flow: authenticated by the login alone
        return []
    repository, kind = _repository(match["repository"]), match["kind"]
    if kind == "tags/list":  # the tags of a repository: its image list
        return [Need("ecr:ListImages", repository)]
    if kind == "manifests":
        # DELETE of a manifest by digest removes the image: ECR's one image-deleting action.
        action = {"PUT": "ecr:PutImage", "DELETE": "ecr:BatchDeleteImage"}.get(method, "ecr:BatchGetImage")
        return [Need(action, repository)]
    if kind == "blobs":
        return [Need("ecr:GetDownloadUrlForLayer" if method == "GET" else "ecr:BatchCheckLayerAvailability", repository)]
    query = parse_qs(parts.query)
    if method == "POST":
        needs = [Need("ecr:InitiateLayerUpload", repository)]
        if "from" in query:  # a cross-repository mount reads the layer from the other repository
            needs.append(Need("ecr:GetDownloadUrlForLayer", _repository(query["from"][0])))
        return needs
    if method == "PATCH":
        return [Need("ecr:UploadLayerPart", repository)]
    # PUT with ?digest= ends the upload; its body, when there is one, is a layer part.
    return [Need("ecr:UploadLayerPart", repository), Need("ecr:CompleteLayerUpload", repository)]


def load_policy(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def policy_allows(policy: dict[str, Any], need: Need) -> bool:
    """Whether an Allow statement covers ``need`` (no Deny statements in the examples)."""
    context = dict(need.context)
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if not any(fnmatch.fnmatchcase(need.action.lower(), a.lower()) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(need.resource, r) for r in resources):
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringEquals", "StringLike"}, conditions
        # A key the request does not carry matches no condition on it (IAM's missing-key rule).
        if all(context.get(key) == value for key, value in conditions.get("StringEquals", {}).items()) and \
                all(key in context and fnmatch.fnmatchcase(context[key], value)
                    for key, value in conditions.get("StringLike", {}).items()):
            return True
    return False


# ------------------------------------------------------------------------- Kubernetes → RBAC


def kube_needs(stats: dict[str, Any]) -> set[tuple[str, str, str]]:
    """``(apiGroup, resource, verb)`` for every request the emulator counted. A server-side apply
    (PATCH) that creates its object is authorised as ``create`` too; the service proxy is
    ``services/proxy`` with the HTTP method's verb (faasops invoke sends GET here)."""
    needs: set[tuple[str, str, str]] = set()
    for key in stats["requests"]:
        verb, resource = key.split(" ", 1)
        if resource.startswith("/"):  # discovery and OpenAPI: allowed to every authenticated user
            continue
        name, _, group = resource.partition(".")
        if verb == "proxy":
            needs.add(("", f"{name}/proxy", "get"))
            continue
        needs.add((group, name, verb))
        if verb == "patch":
            needs.add((group, name, "create"))
    return needs


def load_rbac() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((EXAMPLES / "rbac.yaml").read_text()))


def role_rules(name: str) -> list[dict[str, Any]]:
    (role,) = [doc for doc in load_rbac() if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == name]
    return role["rules"]


def rules_allow(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"] for rule in rules)
