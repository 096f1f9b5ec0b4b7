"""Discovery (legacy and aggregated v2) and the OpenAPI documents kubectl reads.

kubectl 1.3x asks ``/api`` and ``/apis`` for aggregated discovery
(``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``) and falls back to
the legacy documents when the server answers plain JSON; both are served. OpenAPI v3
(``/openapi/v3`` and one document per group-version) is what kubectl's default
``--validate=strict`` consults: it looks for the ``fieldValidation`` query parameter on the
PATCH operation of the object's GVK (CRDs are checked against the Namespace document), and when
present sends ``fieldValidation=Strict`` and leaves validation to the server. The same
documents carry the schemas ``kubectl explain`` and client-side apply's strategic merge use.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from typing import Any

from .resources import READ_VERBS, Registry, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

SERVER_VERSION = {
    "major": "1",
    "minor": "36",
    "emulationMajor": "1",
    "emulationMinor": "36",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "35",
    "gitVersion": "v1.36.0-faasops-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_SUBRESOURCE_VERBS = {"status": ("get", "patch", "update"), "scale": ("get", "patch", "update"),
                      "finalize": ("update",), "proxy": ("create", "delete", "get", "patch", "update")}


def _subresource_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "scale":
        return ("autoscaling", "v1", "Scale")
    if sub == "proxy":
        return ("", "v1", "ServiceProxyOptions")
    return (rt.group, rt.version, rt.kind)


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).hexdigest()[:11]


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    """Legacy ``APIResourceList`` for ``/api/v1`` or ``/apis/<group>/<version>``."""
    resources: list[dict[str, Any]] = []
    for rt in sorted(registry.resources(group, version), key=lambda r: r.plural):
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = _storage_hash(rt)
        resources.append(entry)
        for sub in rt.subresources:
            sub_group, sub_version, sub_kind = _subresource_kind(rt, sub)
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub_kind,
                "verbs": list(_SUBRESOURCE_VERBS.get(sub, READ_VERBS)),
            }
            if sub_group != rt.group or sub_version != rt.version:
                sub_entry["group"] = sub_group
                sub_entry["version"] = sub_version
            resources.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
            "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = []
    for group, versions in registry.group_versions():
        if not group:
            continue
        body = api_group(group, versions)
        del body["kind"], body["apiVersion"]
        groups.append(body)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def aggregated(registry: Registry, core: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict[str, Any]:
    """``APIGroupDiscoveryList`` for ``/api`` (``core``) or ``/apis``."""
    items: list[dict[str, Any]] = []
    for group, versions in registry.group_versions():
        if bool(group) == core:
            continue
        version_entries = []
        for version in versions:
            resources = []
            for rt in sorted(registry.resources(group, version), key=lambda r: r.plural):
                entry: dict[str, Any] = {
                    "resource": rt.plural,
                    "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": list(rt.verbs),
                }
                if rt.short_names:
                    entry["shortNames"] = list(rt.short_names)
                if rt.categories:
                    entry["categories"] = list(rt.categories)
                if rt.subresources:
                    entry["subresources"] = []
                    for sub in rt.subresources:
                        sub_group, sub_version, sub_kind = _subresource_kind(rt, sub)
                        entry["subresources"].append({
                            "subresource": sub,
                            "responseKind": {"group": sub_group, "version": sub_version, "kind": sub_kind},
                            "verbs": list(_SUBRESOURCE_VERBS.get(sub, READ_VERBS)),
                        })
                resources.append(entry)
            version_entries.append({"version": version, "resources": resources, "freshness": "Current"})
        metadata: dict[str, Any] = {"creationTimestamp": None}
        if group:
            metadata["name"] = group
        items.append({"metadata": metadata, "versions": version_entries})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


# ---------------------------------------------------------------------------------------------
# OpenAPI
# ---------------------------------------------------------------------------------------------

_BUILTIN_SCHEMA_PREFIX = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "autoscaling": "io.k8s.api.autoscaling",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "authorization.k8s.io": "io.k8s.api.authorization",
}


def schema_name(rt: ResourceType) -> str:
    """``io.k8s.api.apps.v1.Deployment`` for built-ins, ``dev.spinkube.core.v1alpha1.SpinApp`` for CRs."""
    if not rt.is_custom and rt.group in _BUILTIN_SCHEMA_PREFIX:
        return f"{_BUILTIN_SCHEMA_PREFIX[rt.group]}.{rt.version}.{rt.kind}"
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _operation_id(verb: str, rt: ResourceType, namespaced_path: bool, collection: bool = False) -> str:
    group = "".join(part.capitalize() for part in rt.group.replace("-", ".").split(".")) or "Core"
    version = rt.version.capitalize()
    scope = "Namespaced" if namespaced_path else ""
    suffix = "Collection" if collection else ""
    return f"{verb}{group}{version}{suffix}{scope}{rt.kind}"


def _query(name: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": type_, "uniqueItems": True}}


_WRITE_PARAMS = [_query("dryRun"), _query("fieldManager"), _query("fieldValidation")]
_LIST_PARAMS = [_query("allowWatchBookmarks", "boolean"), _query("continue"), _query("fieldSelector"),
                _query("labelSelector"), _query("limit", "integer"), _query("resourceVersion"),
                _query("resourceVersionMatch"), _query("sendInitialEvents", "boolean"),
                _query("timeoutSeconds", "integer"), _query("watch", "boolean")]


def _response(ref: str) -> dict[str, Any]:
    content = {"schema": {"$ref": ref}}
    return {"200": {"description": "OK", "content": {"application/json": content, "application/yaml": content}},
            "401": {"description": "Unauthorized"}}


def _paths_for(rt: ResourceType) -> dict[str, Any]:
    ref = f"#/components/schemas/{schema_name(rt)}"
    extensions = {"x-kubernetes-group-version-kind": _gvk(rt)}
    paths: dict[str, Any] = {}
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    collection = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    item = f"{collection}/{{name}}"
    path_params = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True}}]
    if rt.namespaced:
        path_params.append({"name": "namespace", "in": "path", "required": True,
                            "schema": {"type": "string", "uniqueItems": True}})
    namespaced = rt.namespaced

    def op(verb: str, action: str, params: list[dict[str, Any]], coll: bool = False) -> dict[str, Any]:
        return {"tags": [rt.group or "core_v1"], "operationId": _operation_id(verb, rt, namespaced, coll),
                "parameters": params, "responses": _response(ref),
                "x-kubernetes-action": action, **extensions}

    verbs = set(rt.verbs)
    collection_ops: dict[str, Any] = {}
    if "list" in verbs:
        collection_ops["get"] = op("list", "list", _LIST_PARAMS)
    if "create" in verbs:
        collection_ops["post"] = {**op("create", "post", _WRITE_PARAMS),
                                  "requestBody": {"content": {"*/*": {"schema": {"$ref": ref}}}, "required": True}}
    if "deletecollection" in verbs:
        collection_ops["delete"] = op("delete", "deletecollection", _LIST_PARAMS, coll=True)
    paths[collection] = {**collection_ops, "parameters": path_params[1:]}
    if "get" not in verbs:
        return paths
    paths[item] = {
        "get": op("read", "get", []),
        "put": {**op("replace", "put", _WRITE_PARAMS),
                "requestBody": {"content": {"*/*": {"schema": {"$ref": ref}}}, "required": True}},
        "patch": {**op("patch", "patch", _WRITE_PARAMS + [_query("force", "boolean")]),
                  "requestBody": {"content": _patch_content(rt), "required": True}},
        "delete": op("delete", "delete", [_query("dryRun"), _query("gracePeriodSeconds", "integer"),
                                          _query("propagationPolicy")]),
        "parameters": path_params,
    }
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "get": op("read", "get", []),
            "patch": op("patch", "patch", _WRITE_PARAMS + [_query("force", "boolean")]),
            "put": op("replace", "put", _WRITE_PARAMS),
            "parameters": path_params,
        }
    return paths


def _patch_content(rt: ResourceType) -> dict[str, Any]:
    """The patch media types a PATCH operation lists. Custom resources have no strategic merge
    patch (the server answers 415), and the real server leaves it out of their operations:
    kubectl's client-side apply reads that list and sends a JSON merge patch instead."""
    types = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
    if not rt.is_custom:
        types.append("application/strategic-merge-patch+json")
    return {media_type: {"schema": {"type": "object"}} for media_type in types}


def _component_schema(rt: ResourceType) -> dict[str, Any]:
    schema = copy.deepcopy(rt.schema) if rt.schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


class OpenAPI:
    """Builds and caches the OpenAPI documents for the current registry generation."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._generation = -1
        self._docs: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._v2: bytes = b""

    def _refresh(self) -> None:
        with self._lock:
            if self._generation == self._registry.generation:
                return
            docs: dict[str, bytes] = {}
            hashes: dict[str, str] = {}
            definitions: dict[str, Any] = {}
            for group, versions in self._registry.group_versions():
                for version in versions:
                    types = self._registry.resources(group, version)
                    doc_path = f"apis/{group}/{version}" if group else f"api/{version}"
                    paths: dict[str, Any] = {}
                    schemas: dict[str, Any] = {}
                    for rt in types:
                        paths.update(_paths_for(rt))
                        schemas[schema_name(rt)] = _component_schema(rt)
                    definitions.update(schemas)
                    doc = {
                        "openapi": "3.0.0",
                        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
                        "paths": paths,
                        "components": {"schemas": schemas},
                    }
                    body = json.dumps(doc, separators=(",", ":")).encode()
                    docs[doc_path] = body
                    hashes[doc_path] = hashlib.sha512(body).hexdigest().upper()[:128]
            self._docs = docs
            self._hashes = hashes
            self._v2 = json.dumps({
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
                "paths": {},
                "definitions": definitions,
            }, separators=(",", ":")).encode()
            self._generation = self._registry.generation

    def root(self) -> dict[str, Any]:
        self._refresh()
        return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
                          for path, digest in self._hashes.items()}}

    def document(self, path: str) -> bytes | None:
        self._refresh()
        return self._docs.get(path)

    def swagger(self) -> bytes:
        self._refresh()
        return self._v2
