"""Which resources the emulator serves: built-in kinds, and kinds defined by CRDs.

A ``ResourceType`` is one group/version/resource as discovery shows it. The ``Registry`` holds
the built-ins and grows or shrinks as CustomResourceDefinitions are created or deleted, so a
CRD applied through the emulator becomes a served resource at once (the real server takes a
moment to mark it Established; clients that wait for that condition find it already true).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid
from .schema import BUILTIN_SCHEMAS, Schema, with_object_meta

ALL_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
)
READ_VERBS: tuple[str, ...] = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    schema: Schema = field(default=None, compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    field_selectors: tuple[str, ...] = ()
    crd_name: str = ""  # set for kinds served from a CustomResourceDefinition
    has_generation: bool = False
    scale_paths: tuple[str, str] | None = None  # (specReplicasPath, statusReplicasPath)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: objects are shared by all served versions of a group/resource."""
        return (self.group, self.plural)

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def is_custom(self) -> bool:
        return bool(self.crd_name)

    @property
    def status_subresource(self) -> bool:
        return "status" in self.subresources

    def supports_field(self, path: str) -> bool:
        if path in ("metadata.name", "metadata.namespace"):
            return True
        return path in self.field_selectors

    def field_selector_error(self, path: str) -> str:
        if self.is_custom:
            return f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        return f"field label not supported: {path}"

    def base_path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    field_selectors: tuple[str, ...] = (),
    has_generation: bool = False,
    verbs: tuple[str, ...] = ALL_VERBS,
    scale_paths: tuple[str, str] | None = None,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short_names,
        categories=categories,
        verbs=verbs,
        subresources=subresources,
        schema=BUILTIN_SCHEMAS.get(kind),
        field_selectors=field_selectors,
        has_generation=has_generation,
        scale_paths=scale_paths,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin("", "v1", "Namespace", "namespaces", False, ("ns",), subresources=("status", "finalize"),
             field_selectors=("status.phase",)),
    _builtin("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _builtin("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    _builtin("", "v1", "Secret", "secrets", True, field_selectors=("type",)),
    _builtin("", "v1", "Service", "services", True, ("svc",), ("all",), subresources=("status", "proxy")),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _builtin("", "v1", "Pod", "pods", True, ("po",), ("all",), subresources=("status",),
             field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                              "spec.serviceAccountName", "status.phase", "status.podIP")),
    _builtin("", "v1", "Event", "events", True, ("ev",),
             field_selectors=("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                              "involvedObject.uid", "involvedObject.apiVersion",
                              "involvedObject.resourceVersion", "involvedObject.fieldPath",
                              "reason", "reportingComponent", "source", "type")),
    _builtin("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",),
             subresources=("status", "scale"), has_generation=True,
             scale_paths=(".spec.replicas", ".status.replicas")),
    _builtin("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
             ("all",), subresources=("status",), has_generation=True),
    # No RBAC in the emulator: access reviews are answered "allowed" and never stored.
    _builtin("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
             verbs=("create",)),
    _builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
             ("crd", "crds"), ("api-extensions",), subresources=("status",), has_generation=True),
)


# ---------------------------------------------------------------------------------------------
# CRDs
# ---------------------------------------------------------------------------------------------


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served ResourceTypes of a (validated) CRD object."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[ResourceType] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources: list[str] = []
        scale_paths = None
        sub = version.get("subresources") or {}
        if "status" in sub:
            subresources.append("status")
        if "scale" in sub:
            subresources.append("scale")
            scale = sub["scale"] or {}
            scale_paths = (scale.get("specReplicasPath", ".spec.replicas"),
                           scale.get("statusReplicasPath", ".status.replicas"))
        raw_schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
        out.append(
            ResourceType(
                group=spec.get("group", ""),
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(subresources),
                schema=with_object_meta(copy.deepcopy(raw_schema) if raw_schema else None),
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                crd_name=(crd.get("metadata") or {}).get("name", ""),
                has_generation=True,
                scale_paths=scale_paths,
            )
        )
    return out


def validate_crd(crd: dict[str, Any]) -> None:
    """The checks of the real CRD validation that a test is likely to trip over (422)."""
    name = (crd.get("metadata") or {}).get("name", "")
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[tuple[str, str, str]] = []
    group = spec.get("group")
    if not group:
        causes.append(("FieldValueRequired", "spec.group", "Required value"))
    if not names.get("plural"):
        causes.append(("FieldValueRequired", "spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(("FieldValueRequired", "spec.names.kind", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("FieldValueNotSupported", "spec.scope",
                       f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("FieldValueRequired", "spec.versions", "Required value"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(("FieldValueInvalid", "spec.versions",
                       "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: "
                       "must have exactly one version marked as storage version"))
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        causes.append(("FieldValueInvalid", "metadata.name",
                       f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if causes:
        raise invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes)


def crd_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status the apiextensions controllers would settle on: names accepted, Established."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": storage,
    }


def _string_map() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string"}}


_CONDITION = {
    "type": "object",
    "required": ["lastTransitionTime", "message", "reason", "status", "type"],
    "properties": {
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "message": {"type": "string"},
        "observedGeneration": {"type": "integer", "format": "int64"},
        "reason": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "type": {"type": "string"},
    },
}

_HTTP_HEALTH_PROBE = {
    "type": "object",
    "properties": {
        "httpGet": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "httpHeaders": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "value": {"type": "string"}}}},
            },
        },
        "initialDelaySeconds": {"type": "integer"},
        "timeoutSeconds": {"type": "integer"},
        "periodSeconds": {"type": "integer"},
        "successThreshold": {"type": "integer"},
        "failureThreshold": {"type": "integer"},
    },
}

_FREE_FORM = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

SPINAPP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "SpinApp is the Schema for the spinapps API",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "description": "SpinAppSpec defines the desired state of SpinApp",
            "required": ["executor", "image"],
            "properties": {
                "checks": {"type": "object", "properties": {
                    "liveness": _HTTP_HEALTH_PROBE, "readiness": _HTTP_HEALTH_PROBE}},
                "components": {"type": "array", "items": {"type": "string"}},
                "deploymentAnnotations": _string_map(),
                "enableAutoscaling": {"type": "boolean"},
                "executor": {"type": "string"},
                "image": {"type": "string"},
                "imagePullSecrets": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}},
                    "x-kubernetes-map-type": "atomic"}},
                "podAnnotations": _string_map(),
                "podLabels": _string_map(),
                "replicas": {"type": "integer", "format": "int32", "minimum": 1},
                "resources": {"type": "object", "properties": {
                    "limits": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": True}},
                    "requests": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": True}},
                }},
                "runtimeConfig": _FREE_FORM,
                "serviceAnnotations": _string_map(),
                "serviceAccountName": {"type": "string"},
                "variables": {"type": "array", "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"},
                                   "valueFrom": _FREE_FORM}}},
                "volumeMounts": {"type": "array", "items": _FREE_FORM},
                "volumes": {"type": "array", "items": _FREE_FORM},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "activeScheduler": {"type": "string"},
                "conditions": {"type": "array", "items": _CONDITION},
                "readyReplicas": {"type": "integer", "format": "int32"},
            },
        },
    },
}


def spinapp_crd() -> dict[str, Any]:
    """The SpinApp CRD as spin-operator installs it (trimmed to the fields faasops renders)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "spinapps.core.spinkube.dev"},
        "spec": {
            "group": "core.spinkube.dev",
            "names": {"kind": "SpinApp", "listKind": "SpinAppList", "plural": "spinapps",
                      "singular": "spinapp", "shortNames": ["spinapp"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Executor", "type": "string", "jsonPath": ".spec.executor"},
                ],
                "schema": {"openAPIV3Schema": copy.deepcopy(SPINAPP_SCHEMA)},
            }],
        },
    }


def spinappexecutor_crd() -> dict[str, Any]:
    """SpinAppExecutor, which a SpinApp's ``executor`` names (schema kept free-form)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "spinappexecutors.core.spinkube.dev"},
        "spec": {
            "group": "core.spinkube.dev",
            "names": {"kind": "SpinAppExecutor", "listKind": "SpinAppExecutorList",
                      "plural": "spinappexecutors", "singular": "spinappexecutor"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": _FREE_FORM, "status": _FREE_FORM}}},
            }],
        },
    }


def scaledobject_crd() -> dict[str, Any]:
    """KEDA's ScaledObject (spec free-form: KEDA's own schema is large and faasops only renders it)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "scaledobjects.keda.sh"},
        "spec": {
            "group": "keda.sh",
            "names": {"kind": "ScaledObject", "listKind": "ScaledObjectList", "plural": "scaledobjects",
                      "singular": "scaledobject", "shortNames": ["so"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "ScaleTargetKind", "type": "string", "jsonPath": ".status.scaleTargetKind"},
                    {"name": "ScaleTargetName", "type": "string", "jsonPath": ".spec.scaleTargetRef.name"},
                    {"name": "Min", "type": "integer", "jsonPath": ".spec.minReplicaCount"},
                    {"name": "Max", "type": "integer", "jsonPath": ".spec.maxReplicaCount"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                ],
                "schema": {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {"type": "object", "required": ["scaleTargetRef", "triggers"],
                             "x-kubernetes-preserve-unknown-fields": True,
                             "properties": {
                                 "scaleTargetRef": {"type": "object", "required": ["name"], "properties": {
                                     "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                     "name": {"type": "string"},
                                     "envSourceContainerName": {"type": "string"}}},
                                 "minReplicaCount": {"type": "integer", "format": "int32"},
                                 "maxReplicaCount": {"type": "integer", "format": "int32"},
                                 "pollingInterval": {"type": "integer", "format": "int32"},
                                 "cooldownPeriod": {"type": "integer", "format": "int32"},
                                 "triggers": {"type": "array", "items": _FREE_FORM},
                             }},
                    "status": _FREE_FORM}}},
            }],
        },
    }


class Registry:
    """Served resource types by group/version/plural, thread-safe, discovery-ordered."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self.generation = 0  # bumps on every change so cached discovery documents refresh
        for rt in BUILTIN_TYPES:
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self.generation += 1

    def set_crd_types(self, crd_name: str, types: list[ResourceType]) -> None:
        """Replace whatever ``crd_name`` served with ``types``."""
        with self._lock:
            for key in [k for k, rt in self._types.items() if rt.crd_name == crd_name]:
                del self._types[key]
            for rt in types:
                self._add(rt)
            self.generation += 1

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> list[tuple[str, list[str]]]:
        """``[(group, [versions…])]`` with the core group first, like the real discovery order."""
        with self._lock:
            order: dict[str, list[str]] = {}
            for rt in self._types.values():
                versions = order.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return [(g, _sort_versions(v)) for g, v in order.items()]

    def resources(self, group: str, version: str) -> list[ResourceType]:
        with self._lock:
            return [rt for rt in self._types.values() if rt.group == group and rt.version == version]

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        with self._lock:
            return [rt for rt in self._types.values() if rt.group == group and rt.plural == plural]


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major = int(match[1])
    stage = {"alpha": 2, "beta": 1, None: 0}[match[2]]
    minor = int(match[3] or 0)
    return (stage, -major, -minor)


def _sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=_version_priority)
