"""Decoding of ``application/vnd.kubernetes.protobuf`` request bodies for common built-in kinds.

kubectl's typed clients (``kubectl create namespace|configmap|secret|serviceaccount|service|
deployment``) send protobuf and client-go has no JSON fallback for it, so the emulator decodes
those bodies. Responses stay JSON: clients accept ``application/json`` as well. Field numbers
come from ``k8s.io/api/{core,apps}/v1/generated.proto``; fields not listed here are skipped.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"

# field number -> (json name, kind, message type or None, repeated)
Descriptor = dict[int, tuple[str, str, str | None, bool]]


def _f(name: str, kind: str = "string", message: str | None = None, repeated: bool = False) -> tuple[str, str, str | None, bool]:
    return (name, kind, message, repeated)


MESSAGES: dict[str, Descriptor] = {
    "TypeMeta": {1: _f("apiVersion"), 2: _f("kind")},
    "Unknown": {1: _f("typeMeta", "msg", "TypeMeta"), 2: _f("raw", "bytes"), 3: _f("contentEncoding"),
                4: _f("contentType")},
    "Time": {1: _f("seconds", "int"), 2: _f("nanos", "int")},
    "IntOrString": {1: _f("type", "int"), 2: _f("intVal", "int"), 3: _f("strVal")},
    "Quantity": {1: _f("string")},
    "ObjectMeta": {
        1: _f("name"), 2: _f("generateName"), 3: _f("namespace"), 4: _f("selfLink"), 5: _f("uid"),
        6: _f("resourceVersion"), 7: _f("generation", "int"), 8: _f("creationTimestamp", "time"),
        9: _f("deletionTimestamp", "time"), 10: _f("deletionGracePeriodSeconds", "int"),
        11: _f("labels", "map"), 12: _f("annotations", "map"),
        13: _f("ownerReferences", "msg", "OwnerReference", True), 14: _f("finalizers", repeated=True),
    },
    "OwnerReference": {1: _f("kind"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
                       6: _f("controller", "bool"), 7: _f("blockOwnerDeletion", "bool")},
    "ObjectReference": {1: _f("kind"), 2: _f("namespace"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
                        6: _f("resourceVersion"), 7: _f("fieldPath")},
    "LocalObjectReference": {1: _f("name")},
    "LabelSelector": {1: _f("matchLabels", "map"),
                      2: _f("matchExpressions", "msg", "LabelSelectorRequirement", True)},
    "LabelSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _f("values", repeated=True)},
    "Namespace": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("spec", "msg", "NamespaceSpec"),
                  3: _f("status", "msg", "NamespaceStatus")},
    "NamespaceSpec": {1: _f("finalizers", repeated=True)},
    "NamespaceStatus": {1: _f("phase")},
    "ConfigMap": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("data", "map"), 3: _f("binaryData", "bytesmap"),
                  4: _f("immutable", "bool")},
    "Secret": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("data", "bytesmap"), 3: _f("type"),
               4: _f("stringData", "map"), 5: _f("immutable", "bool")},
    "ServiceAccount": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("secrets", "msg", "ObjectReference", True),
                       3: _f("imagePullSecrets", "msg", "LocalObjectReference", True),
                       4: _f("automountServiceAccountToken", "bool")},
    "Service": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("spec", "msg", "ServiceSpec"),
                3: _f("status", "msg", "Empty")},
    "ServiceSpec": {1: _f("ports", "msg", "ServicePort", True), 2: _f("selector", "map"), 3: _f("clusterIP"),
                    4: _f("type"), 5: _f("externalIPs", repeated=True), 7: _f("sessionAffinity"),
                    10: _f("externalName")},
    "ServicePort": {1: _f("name"), 2: _f("protocol"), 3: _f("port", "int"), 4: _f("targetPort", "intorstring"),
                    5: _f("nodePort", "int"), 6: _f("appProtocol")},
    "Deployment": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("spec", "msg", "DeploymentSpec"),
                   3: _f("status", "msg", "Empty")},
    "DeploymentSpec": {1: _f("replicas", "int"), 2: _f("selector", "msg", "LabelSelector"),
                       3: _f("template", "msg", "PodTemplateSpec"), 4: _f("strategy", "msg", "DeploymentStrategy"),
                       5: _f("minReadySeconds", "int"), 6: _f("revisionHistoryLimit", "int"),
                       7: _f("paused", "bool"), 9: _f("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: _f("type"), 2: _f("rollingUpdate", "msg", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: _f("maxUnavailable", "intorstring"), 2: _f("maxSurge", "intorstring")},
    "PodTemplateSpec": {1: _f("metadata", "msg", "ObjectMeta"), 2: _f("spec", "msg", "PodSpec")},
    "PodSpec": {2: _f("containers", "msg", "Container", True), 3: _f("restartPolicy"),
                4: _f("terminationGracePeriodSeconds", "int"), 6: _f("dnsPolicy"), 7: _f("nodeSelector", "map"),
                8: _f("serviceAccountName"), 15: _f("imagePullSecrets", "msg", "LocalObjectReference", True),
                19: _f("schedulerName"), 20: _f("initContainers", "msg", "Container", True)},
    "Container": {1: _f("name"), 2: _f("image"), 3: _f("command", repeated=True), 4: _f("args", repeated=True),
                  5: _f("workingDir"), 6: _f("ports", "msg", "ContainerPort", True),
                  7: _f("env", "msg", "EnvVar", True), 8: _f("resources", "msg", "ResourceRequirements"),
                  13: _f("terminationMessagePath"), 14: _f("imagePullPolicy"),
                  20: _f("terminationMessagePolicy")},
    "ContainerPort": {1: _f("name"), 2: _f("hostPort", "int"), 3: _f("containerPort", "int"), 4: _f("protocol"),
                      5: _f("hostIP")},
    "EnvVar": {1: _f("name"), 2: _f("value")},
    "ResourceRequirements": {1: _f("limits", "quantitymap"), 2: _f("requests", "quantitymap")},
    "SelfSubjectAccessReview": {1: _f("metadata", "msg", "ObjectMeta"),
                                2: _f("spec", "msg", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {1: _f("resourceAttributes", "msg", "ResourceAttributes"),
                                    2: _f("nonResourceAttributes", "msg", "NonResourceAttributes")},
    "ResourceAttributes": {1: _f("namespace"), 2: _f("verb"), 3: _f("group"), 4: _f("version"),
                           5: _f("resource"), 6: _f("subresource"), 7: _f("name")},
    "NonResourceAttributes": {1: _f("path"), 2: _f("verb")},
    "Empty": {},
}

# Pointer fields in the Go types: a zero value there was set on purpose and must survive. Every
# other zero scalar is what gogo-protobuf writes for an unset non-pointer field, which JSON's
# omitempty would have left out.
_POINTERS = {
    ("DeploymentSpec", "replicas"), ("DeploymentSpec", "revisionHistoryLimit"),
    ("DeploymentSpec", "progressDeadlineSeconds"), ("PodSpec", "terminationGracePeriodSeconds"),
    ("ServiceAccount", "automountServiceAccountToken"), ("ConfigMap", "immutable"), ("Secret", "immutable"),
    ("OwnerReference", "controller"), ("OwnerReference", "blockOwnerDeletion"),
    ("ObjectMeta", "deletionGracePeriodSeconds"), ("ContainerPort", "containerPort"), ("ServicePort", "port"),
}

_TOP_LEVEL = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"),
              ("v1", "Service"), ("apps/v1", "Deployment"),
              ("authorization.k8s.io/v1", "SelfSubjectAccessReview")}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` triples of one message."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, raw in _fields(data):
        if number == 1:
            key = raw.decode()
        elif number == 2:
            value = raw
    return key, value


def decode_message(data: bytes, message: str) -> dict[str, Any]:
    descriptor = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, _, raw in _fields(data):
        spec = descriptor.get(number)
        if spec is None:
            continue
        name, kind, sub, repeated = spec
        if kind in ("map", "bytesmap", "quantitymap"):
            key, value = _map_entry(raw)
            target = out.setdefault(name, {})
            if kind == "map":
                target[key] = value.decode()
            elif kind == "bytesmap":
                target[key] = base64.b64encode(value).decode()
            else:
                target[key] = decode_message(value, "Quantity").get("string", "")
            continue
        if kind == "string":
            value: Any = raw.decode()
        elif kind == "bytes":
            value = raw
        elif kind == "int":
            value = _signed(raw)
        elif kind == "bool":
            value = bool(raw)
        elif kind == "time":
            seconds = decode_message(raw, "Time").get("seconds", 0)
            if not seconds:
                continue
            value = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "intorstring":
            ios = decode_message(raw, "IntOrString")
            value = ios.get("strVal", "") if ios.get("type") == 1 else ios.get("intVal", 0)
        else:
            value = decode_message(raw, sub or "Empty")
        if not repeated and kind in ("string", "int", "bool") and not value and (message, name) not in _POINTERS:
            continue
        if repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded built-in object as the JSON-shaped dict the rest of the emulator uses."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    try:
        unknown = decode_message(body[len(MAGIC):], "Unknown")
        type_meta = unknown.get("typeMeta", {})
        key = (type_meta.get("apiVersion", ""), type_meta.get("kind", ""))
        if key not in _TOP_LEVEL:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the emulator cannot decode protobuf {key[1]} objects; send application/json")
        obj = decode_message(unknown.get("raw", b""), key[1])
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BadRequest", f"unable to decode protobuf body: {exc}") from None
    if obj.get("status") == {}:
        del obj["status"]
    return {"apiVersion": key[0], "kind": key[1], **obj}
