"""The emulated apiserver's behaviour, independent of HTTP.

Every verb lives here: create, get, list, update (PUT), patch (merge, JSON, strategic, apply),
delete, deletecollection and watch, with the admission-like side effects the tests rely on:
namespaces must exist for namespaced creates and take their objects with them when deleted,
CRDs become served resources, status subresources are honoured, managedFields are kept.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import yaml

from . import admission, errors, fieldmanager, patches
from .errors import ApiError
from .protobuf import decode_object
from .resources import (
    Registry,
    ResourceType,
    crd_status,
    scaledobject_crd,
    spinapp_crd,
    spinappexecutor_crd,
    types_from_crd,
    validate_crd,
)
from .schema import prune_unknown, required_missing, unknown_fields
from .selectors import (
    FieldRequirement,
    Requirement,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from .namespaces import NamespaceTerminator
from .operators import SpinOperator
from .store import Event, Store

SPINAPP_GROUP = "core.spinkube.dev"
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")
SERVICE_KEY = ("", "services")
SPINAPP_KEY = (SPINAPP_GROUP, "spinapps")
SCALEDOBJECT_KEY = ("keda.sh", "scaledobjects")
ACCESS_REVIEW_KEY = ("authorization.k8s.io", "selfsubjectaccessreviews")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Kinds whose DELETE answers with the deleted object rather than a Status (ReturnDeletedObject).
_RETURNS_DELETED_OBJECT = {("", "pods"), ("", "serviceaccounts"), NAMESPACE_KEY}

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_KINDS = {NAMESPACE_KEY, SERVICE_KEY}

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def now_timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Options:
    """Behaviour switches of the emulated cluster (see ``KubeEmulator`` for their meaning)."""

    preinstall_spinkube: bool = True
    preinstall_keda: bool = True
    spinapp_ready: bool = False
    spin_operator_webhook: bool = True
    keda_webhook: bool = True
    spin_operator: bool = True
    spin_operator_delay: float = 0.1
    crd_strategic_merge_patch: bool = False
    # Seconds a deleted namespace stays Terminating before it is gone; 0: gone at once.
    namespace_termination: float = 0.0


@dataclass
class WriteParams:
    """Query parameters shared by the write verbs."""

    field_manager: str = ""
    dry_run: bool = False
    force: bool = False
    field_validation: str = ""  # "", Ignore, Warn, Strict


@dataclass
class ListParams:
    labels: list[Requirement] = field(default_factory=list)
    fields: list[FieldRequirement] = field(default_factory=list)
    limit: int = 0
    continue_token: str = ""


@dataclass
class WriteResult:
    obj: dict[str, Any]
    code: int
    warnings: list[str] = field(default_factory=list)


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        obj["metadata"] = metadata
    return metadata


def _get_path(obj: dict[str, Any], dotted: str) -> Any:
    current: Any = obj
    for part in dotted.strip(".").split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return current


def _set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    current = obj
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything generation tracks: all but metadata and status."""
    return _without(obj, "metadata", "status", "apiVersion", "kind")


def _apply_defaults(value: Any, schema: Any) -> Any:
    """Structural-schema ``default``s for absent properties, as the apiserver applies them."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key not in value and isinstance(sub, dict) and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in list(value.items()):
            if key in properties:
                value[key] = _apply_defaults(item, properties[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                value[key] = _apply_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_apply_defaults(item, schema["items"]) for item in value]
    return value


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON, or YAML for apply patches (kubectl sends JSON there too; other clients YAML)."""
    if not raw:
        raise errors.bad_request("the request body is empty")
    if content_type.startswith(PROTOBUF):
        return decode_object(raw)
    try:
        return json.loads(raw)
    except ValueError:
        if "yaml" not in content_type:
            raise errors.bad_request("the object provided is unrecognized (must be of type JSON)") from None
    try:
        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None


class Cluster:
    """State and verbs of the emulated API server."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.registry = Registry()
        self.store = Store()
        self._uid_counter = 0
        self._cluster_ip = 0
        self._ip_lock = threading.Lock()
        self.operator = SpinOperator(self, self.options.spin_operator_delay) if self.options.spin_operator else None
        self.terminator = NamespaceTerminator(self)
        self.bootstrap()

    # -----------------------------------------------------------------------------------------
    # Setup
    # -----------------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """(Re)create the initial namespaces and preinstalled CRDs."""
        manager = WriteParams(field_manager="kube-apiserver")
        ns_type = self.registry.lookup("", "v1", "namespaces")
        assert ns_type is not None
        for name in INITIAL_NAMESPACES:
            self.create(ns_type, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, manager)
        crd_type = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_type is not None
        crds: list[dict[str, Any]] = []
        if self.options.preinstall_spinkube:
            crds += [spinapp_crd(), spinappexecutor_crd()]
        if self.options.preinstall_keda:
            crds.append(scaledobject_crd())
        for crd in crds:
            self.create(crd_type, None, crd, WriteParams(field_manager="helm"))

    def reset(self) -> None:
        """Wipe every object and CRD and start over (resourceVersion keeps counting up)."""
        with self.store.lock:
            for rt in self.registry.all():
                if rt.is_custom:
                    self.registry.set_crd_types(rt.crd_name, [])
            self.terminator.clear()
            self.store.wipe()
            self.bootstrap()

    # -----------------------------------------------------------------------------------------
    # Reads
    # -----------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.key, namespace or "", name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return self._served(rt, obj)

    def _served(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as seen through ``rt``'s version (CRD versions share storage, no conversion)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    def parse_list_params(self, rt: ResourceType, query: dict[str, str]) -> ListParams:
        params = ListParams(
            labels=parse_label_selector(query.get("labelSelector")),
            fields=parse_field_selector(query.get("fieldSelector"), rt.supports_field, rt.field_selector_error),
        )
        limit = query.get("limit", "")
        if limit:
            try:
                params.limit = max(0, int(limit))
            except ValueError:
                raise errors.bad_request(f"limit: Invalid value: \"{limit}\"") from None
        params.continue_token = query.get("continue", "")
        return params

    def matches(self, params: ListParams, obj: dict[str, Any]) -> bool:
        return labels_match(params.labels, obj) and fields_match(params.fields, obj)

    def list(self, rt: ResourceType, namespace: str | None, params: ListParams) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Matching objects and the list metadata (resourceVersion, continue, remainingItemCount)."""
        with self.store.lock:
            list_rv = self.store.resource_version
            objects = self.store.list(rt.key, namespace)
        # Objects come sorted by (namespace, name); a continue token resumes after that pair.
        start_after: tuple[str, str] | None = None
        if params.continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(params.continue_token.encode()))
                start_after = (str(token["start"][0]), str(token["start"][1]))
                list_rv = int(token.get("rv", list_rv))
            except (ValueError, KeyError, TypeError, IndexError):
                raise errors.bad_request("continue key is not valid: illegal base64 data") from None
        items: list[dict[str, Any]] = []
        remaining = 0
        last_key = ("", "")
        for obj in objects:
            metadata = obj["metadata"]
            sort_key = (metadata.get("namespace", ""), metadata["name"])
            if start_after is not None and sort_key <= start_after:
                continue
            if not self.matches(params, obj):
                continue
            if params.limit and len(items) >= params.limit:
                remaining += 1
                continue
            items.append(self._served(rt, obj))
            last_key = sort_key
        metadata_out: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if remaining:
            token = {"v": "meta.k8s.io/v1", "rv": list_rv, "start": list(last_key)}
            metadata_out["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            metadata_out["remainingItemCount"] = remaining
        return items, metadata_out

    # -----------------------------------------------------------------------------------------
    # Writes: helpers
    # -----------------------------------------------------------------------------------------

    def _check_type(self, rt: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type map)")
        api_version = body.get("apiVersion")
        if api_version and api_version != rt.api_version:
            if rt.is_custom and any(v.api_version == api_version for v in self.registry.versions_of(rt.group, rt.plural)):
                pass  # another served version of the same CRD: stored as is
            else:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
                )
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        return body

    def _validate_name(self, rt: ResourceType, name: str) -> None:
        pattern = _DNS_LABEL if rt.key in _DNS_LABEL_KINDS else _DNS_SUBDOMAIN
        limit = 63 if rt.key in _DNS_LABEL_KINDS else 253
        if not pattern.fullmatch(name) or len(name) > limit:  # fullmatch: `$` lets "x\n" through
            kind_text = "RFC 1123 label" if rt.key in _DNS_LABEL_KINDS else "RFC 1123 subdomain"
            raise errors.invalid(
                rt.group, rt.kind, name,
                [("FieldValueInvalid", "metadata.name",
                  f'Invalid value: "{name}": a lowercase {kind_text} must consist of lower case alphanumeric '
                  "characters, '-'" + ("" if rt.key in _DNS_LABEL_KINDS else " or '.'") +
                  ", and must start and end with an alphanumeric character")],
            )

    def _require_namespace(self, namespace: str) -> None:
        if self.store.get(NAMESPACE_KEY, "", namespace) is None:
            raise errors.not_found("", "namespaces", namespace)

    def _refuse_if_terminating(self, rt: ResourceType, namespace: str, name: str) -> None:
        """The NamespaceLifecycle admission plugin: nothing new in a namespace being deleted
        (updates of what is there stay allowed)."""
        live = self.store.get(NAMESPACE_KEY, "", namespace)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(rt.group, rt.plural, name, namespace)

    def _validate_custom(self, rt: ResourceType, obj: dict[str, Any], params: WriteParams,
                         complete: bool = True) -> tuple[dict[str, Any], list[str]]:
        """Prune unknown fields (400 under Strict, a warning under Warn); for a complete object
        also apply schema defaults and check ``required`` (422).

        An apply configuration is partial, so it is only pruned here; the merged object gets
        the defaults and required checks (``_complete_custom``).
        """
        warnings: list[str] = []
        if not rt.is_custom or rt.schema is None:
            return obj, warnings
        body = _without(obj, "metadata")
        unknown = unknown_fields(body, rt.schema)
        if unknown:
            if params.field_validation == "Strict":
                raise errors.bad_request(
                    f".{unknown[0]}: field not declared in schema" if len(unknown) == 1
                    else "[" + ", ".join(f".{u}: field not declared in schema" for u in unknown) + "]"
                )
            if params.field_validation in ("", "Warn"):
                warnings.extend(f"unknown field \"{u}\"" for u in unknown)
            obj = {**prune_unknown(body, rt.schema), "metadata": obj.get("metadata", {})}
        if complete:
            obj = self._complete_custom(rt, obj)
        return obj, warnings

    def _complete_custom(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        if not rt.is_custom or rt.schema is None:
            return obj
        obj = _apply_defaults(obj, rt.schema)
        missing = required_missing(_without(obj, "metadata", "status"), rt.schema)
        if missing:
            name = _metadata(obj).get("name", "")
            raise errors.invalid(rt.group, rt.kind, name, [("FieldValueRequired", m, "Required value") for m in missing])
        return obj

    def _admit(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None, dry_run: bool) -> None:
        """The validating webhooks of components the emulator stands in for (spin-operator's,
        KEDA's; see :mod:`.admission`), on creates and updates."""
        denial = None
        if rt.key == SPINAPP_KEY and self.options.spin_operator_webhook:
            denial = admission.spinapp_denial(obj, namespace or "", self._stored)
        elif rt.key == SCALEDOBJECT_KEY and self.options.keda_webhook and not dry_run:
            # KEDA skips its cpu/memory checks for dry runs (verifyCPUMemoryScalers).
            denial = admission.scaledobject_denial(obj, namespace or "", self._stored, self._stored_in)
        if denial is not None:
            raise denial

    def _stored(self, key: tuple[str, str], namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(key, namespace, name)

    def _stored_in(self, key: tuple[str, str], namespace: str) -> list[dict[str, Any]]:
        return list(self.store.list(key, namespace)) if namespace in self.store.namespaces_of(key) else []

    def _next_cluster_ip(self) -> str:
        with self._ip_lock:
            self._cluster_ip += 1
            n = self._cluster_ip
        return f"10.96.{(n // 254) % 256}.{n % 254 + 1}"

    def _default(self, rt: ResourceType, obj: dict[str, Any], live: dict[str, Any] | None) -> None:
        """Server-side defaulting for the built-in kinds the emulator serves."""
        if rt.key == NAMESPACE_KEY:
            name = _metadata(obj)["name"]
            labels = dict(_metadata(obj).get("labels") or {})
            labels["kubernetes.io/metadata.name"] = name
            _metadata(obj)["labels"] = labels
            spec = obj.setdefault("spec", {})
            if live is None:
                # The namespace strategy's PrepareForCreate: the namespace controller's finalizer.
                spec.setdefault("finalizers", ["kubernetes"])
                obj["status"] = {"phase": "Active"}
            elif (live.get("spec") or {}).get("finalizers"):
                # PrepareForUpdate: only the /finalize subresource changes them.
                spec["finalizers"] = list(live["spec"]["finalizers"])
        elif rt.key == SERVICE_KEY:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if "clusterIP" not in spec:
                live_ip = ((live or {}).get("spec") or {}).get("clusterIP")
                spec["clusterIP"] = live_ip or self._next_cluster_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec["ports"] = [
                {**port, "protocol": port.get("protocol", "TCP"), "targetPort": port.get("targetPort", port.get("port"))}
                for port in spec.get("ports") or []
            ]
        elif rt.key == ("apps", "deployments"):
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            if not (spec.get("strategy") or {}).get("type"):
                spec["strategy"] = {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        elif rt.key == ("", "secrets"):
            obj.setdefault("type", "Opaque")
            string_data = obj.pop("stringData", None)
            if string_data:
                data = dict(obj.get("data") or {})
                for key, value in string_data.items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
                obj["data"] = data

    def _ready_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        spec = obj.get("spec") or {}
        replicas = spec.get("replicas") or 1
        now = now_timestamp()
        return {
            "activeScheduler": "containerd-shim-spin",
            "readyReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.", "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet has successfully progressed.", "lastTransitionTime": now},
            ],
        }

    def _finish_write(self, rt: ResourceType, obj: dict[str, Any], live: dict[str, Any] | None) -> None:
        """Side effects computed for every create/update before storing."""
        if rt.key == CRD_KEY:
            validate_crd(obj)
            obj["status"] = crd_status(obj, now_timestamp())
        if rt.key == SPINAPP_KEY and self.options.spinapp_ready:
            obj["status"] = self._ready_status(obj)

    def _commit(self, rt: ResourceType, obj: dict[str, Any], live: dict[str, Any] | None, dry_run: bool) -> dict[str, Any]:
        metadata = _metadata(obj)
        namespace = metadata.get("namespace", "") if rt.namespaced else ""
        if dry_run:
            return obj
        rv = self.store.next_rv()
        metadata["resourceVersion"] = str(rv)
        if live is not None and metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            # The last finalizer went away: the pending deletion completes now.
            self.store.delete(rt.key, namespace, metadata["name"], obj, rv)
            self._after_delete(rt, obj)
            return obj
        self.store.put(rt.key, namespace, metadata["name"], obj, "ADDED" if live is None else "MODIFIED", live, rv)
        if rt.key == CRD_KEY:
            self.registry.set_crd_types(metadata["name"], types_from_crd(obj))
        if rt.key == SPINAPP_KEY and self.operator is not None:
            self.operator.spinapp_written(namespace, metadata["name"])
        return obj

    # -----------------------------------------------------------------------------------------
    # create
    # -----------------------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str | None, body: Any, params: WriteParams) -> WriteResult:
        body = self._check_type(rt, copy.deepcopy(body))
        if rt.key == ACCESS_REVIEW_KEY:
            body["apiVersion"], body["kind"] = rt.api_version, rt.kind
            body["status"] = {"allowed": True, "reason": "the emulator does not enforce RBAC"}
            return WriteResult(body, 201)
        metadata = _metadata(body)
        if rt.namespaced:
            body_ns = metadata.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or body_ns or "default"
        name = metadata.get("name") or ""
        if not name and metadata.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            name = metadata["generateName"] + suffix
        if not name:
            raise errors.invalid(rt.group, rt.kind, "", [
                ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")])
        self._validate_name(rt, name)
        body["apiVersion"] = body.get("apiVersion") or rt.api_version
        body["kind"] = rt.kind
        body, warnings = self._validate_custom(rt, body, params)
        self._admit(rt, body, namespace, params.dry_run)
        with self.store.lock:
            if rt.namespaced:
                assert namespace is not None
                self._require_namespace(namespace)
            if self.store.get(rt.key, namespace or "", name) is not None:
                raise errors.already_exists(rt.group, rt.plural, name)
            if rt.namespaced and not params.dry_run:
                self._refuse_if_terminating(rt, namespace or "", name)
            obj = self._new_object(rt, body, name, namespace)
            self._finish_write(rt, obj, None)
            entries = fieldmanager.update(
                None, obj, manager=params.field_manager, schema=rt.schema,
                api_version=rt.api_version, now=now_timestamp(),
            )
            obj["metadata"]["managedFields"] = fieldmanager.encode_managed_fields(entries)
            self._commit(rt, obj, None, params.dry_run)
        return WriteResult(obj, 201, warnings)

    def _new_object(self, rt: ResourceType, body: dict[str, Any], name: str, namespace: str | None) -> dict[str, Any]:
        metadata = dict(_metadata(body))
        server_owned = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                        "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink")
        for key in server_owned:
            metadata.pop(key, None)
        new_meta: dict[str, Any] = {"name": name}
        if metadata.get("generateName"):
            new_meta["generateName"] = metadata["generateName"]
        if rt.namespaced:
            new_meta["namespace"] = namespace
        new_meta["uid"] = str(uuid.uuid4())
        if rt.has_generation:
            new_meta["generation"] = 1
        new_meta["creationTimestamp"] = now_timestamp()
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if metadata.get(key):
                new_meta[key] = metadata[key]
        obj = {"apiVersion": body["apiVersion"], "kind": rt.kind, "metadata": new_meta}
        obj.update({k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")})
        if rt.status_subresource and rt.key != NAMESPACE_KEY:
            obj.pop("status", None)
        self._default(rt, obj, None)
        return obj

    # -----------------------------------------------------------------------------------------
    # update (PUT) and the shared write path of patches
    # -----------------------------------------------------------------------------------------

    def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any, params: WriteParams,
               subresource: str = "") -> WriteResult:
        body = self._check_type(rt, copy.deepcopy(body))
        body_name = _metadata(body).get("name")
        if body_name and body_name != name:
            raise errors.bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        with self.store.lock:
            live = self.store.get(rt.key, namespace or "", name)
            if live is None:
                raise errors.not_found(rt.group, rt.plural, name)
            return self._write_update(rt, live, body, params, subresource)

    def _write_update(self, rt: ResourceType, live: dict[str, Any], new: dict[str, Any], params: WriteParams,
                      subresource: str) -> WriteResult:
        """Turn a client's full new object into the stored one (PUT and non-apply patches)."""
        live_meta = live["metadata"]
        new_meta = _metadata(new)
        requested_rv = new_meta.get("resourceVersion")
        if requested_rv and requested_rv != live_meta.get("resourceVersion"):
            raise errors.version_conflict(rt.group, rt.plural, live_meta["name"])
        if new_meta.get("uid") and new_meta["uid"] != live_meta.get("uid"):
            raise errors.version_conflict(rt.group, rt.plural, live_meta["name"])
        warnings: list[str] = []
        if subresource == "status":
            # The status endpoint changes status only (metadata stays the server's).
            obj = {**_without(live, "status"), "metadata": dict(live_meta)}
            if "status" in new:
                obj["status"] = new["status"]
        else:
            new, warnings = self._validate_custom(rt, new, params)
            self._admit(rt, new, live_meta.get("namespace"), params.dry_run)
            obj = {"apiVersion": new.get("apiVersion") or live["apiVersion"], "kind": rt.kind}
            obj["metadata"] = self._merged_metadata(live_meta, new_meta)
            obj.update({k: v for k, v in new.items() if k not in ("apiVersion", "kind", "metadata", "status")})
            if rt.status_subresource:
                if "status" in live:
                    obj["status"] = live["status"]
            elif "status" in new:
                obj["status"] = new["status"]
            self._default(rt, obj, live)
            self._finish_write(rt, obj, live)
        self._bump_generation(rt, live, obj)
        incoming_managed = new_meta.get("managedFields")
        base_entries = None
        if incoming_managed is not None and incoming_managed != live_meta.get("managedFields"):
            # A client may rewrite managedFields explicitly (e.g. [] resets them).
            base_entries = fieldmanager.decode_managed_fields({"metadata": {"managedFields": incoming_managed}})
        entries = fieldmanager.update(
            live, obj, manager=params.field_manager, schema=rt.schema, api_version=rt.api_version,
            now=now_timestamp(), subresource=subresource, entries=base_entries,
        )
        obj["metadata"]["managedFields"] = fieldmanager.encode_managed_fields(entries)
        return self._store_if_changed(rt, live, obj, params, warnings)

    def _merged_metadata(self, live_meta: dict[str, Any], new_meta: dict[str, Any]) -> dict[str, Any]:
        out = dict(live_meta)
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if new_meta.get(key):
                out[key] = new_meta[key]
            else:
                out.pop(key, None)
        return out

    def _bump_generation(self, rt: ResourceType, live: dict[str, Any], obj: dict[str, Any]) -> None:
        if not rt.has_generation:
            return
        generation = live["metadata"].get("generation", 1)
        if _spec_part(live) != _spec_part(obj):
            generation += 1
        obj["metadata"]["generation"] = generation

    def _store_if_changed(self, rt: ResourceType, live: dict[str, Any], obj: dict[str, Any], params: WriteParams,
                          warnings: list[str]) -> WriteResult:
        # A write that changes nothing is not persisted: same resourceVersion, no watch event.
        candidate = {**obj, "metadata": {**obj["metadata"], "resourceVersion": live["metadata"].get("resourceVersion")}}
        if candidate == live:
            return WriteResult(self._served(rt, live), 200, warnings)
        self._commit(rt, obj, live, params.dry_run)
        return WriteResult(self._served(rt, obj), 200, warnings)

    # -----------------------------------------------------------------------------------------
    # patch
    # -----------------------------------------------------------------------------------------

    def patch(self, rt: ResourceType, namespace: str | None, name: str, raw: bytes, content_type: str,
              params: WriteParams, subresource: str = "") -> WriteResult:
        if content_type in (APPLY_PATCH, APPLY_PATCH_CBOR):
            if content_type == APPLY_PATCH_CBOR:
                raise errors.unsupported_media_type(self._patch_types(rt))
            return self.apply(rt, namespace, name, parse_body(raw, content_type), params, subresource)
        accepted = self._patch_types(rt)
        if content_type not in accepted:
            raise errors.unsupported_media_type(accepted)
        patch_body = parse_body(raw, content_type)
        with self.store.lock:
            live = self.store.get(rt.key, namespace or "", name)
            if live is None:
                raise errors.not_found(rt.group, rt.plural, name)
            if content_type == JSON_PATCH:
                new = patches.json_patch(live, patch_body)
            elif content_type == MERGE_PATCH or rt.is_custom:
                if not isinstance(patch_body, dict):
                    raise errors.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                new = patches.json_merge_patch(live, patch_body)
            else:
                if not isinstance(patch_body, dict):
                    raise errors.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                new = patches.strategic_merge_patch(live, patch_body, rt.schema)
            if not isinstance(new, dict):
                raise errors.bad_request("the patch produced something that is not an object")
            new_meta = _metadata(new)
            # A patch only conflicts if it names a resourceVersion itself.
            patch_rv = (patch_body.get("metadata") or {}).get("resourceVersion") if isinstance(patch_body, dict) else None
            if not patch_rv:
                new_meta["resourceVersion"] = live["metadata"].get("resourceVersion")
            if new_meta.get("name") != name:
                raise errors.bad_request(f"the name of the object ({new_meta.get('name')}) does not match the name on the URL ({name})")
            return self._write_update(rt, live, new, params, subresource)

    def _patch_types(self, rt: ResourceType) -> list[str]:
        if rt.is_custom and not self.options.crd_strategic_merge_patch:
            return [JSON_PATCH, MERGE_PATCH, APPLY_PATCH, APPLY_PATCH_CBOR]
        return [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH, APPLY_PATCH_CBOR]

    # -----------------------------------------------------------------------------------------
    # server-side apply
    # -----------------------------------------------------------------------------------------

    def apply(self, rt: ResourceType, namespace: str | None, name: str, config: Any, params: WriteParams,
              subresource: str = "") -> WriteResult:
        if not params.field_manager:
            raise errors.bad_request("PATCH /apply: fieldManager is required for apply requests")
        config = self._check_type(rt, config)
        if not config.get("apiVersion") or not config.get("kind"):
            raise errors.bad_request("invalid object type: /, Kind=")
        meta = _metadata(config)
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        config_rv = meta.get("resourceVersion")
        # Empty metadata maps vanish in the typed ObjectMeta (omitempty), so they own nothing.
        stripped_meta = {k: v for k, v in meta.items()
                         if k in fieldmanager.APPLYABLE_METADATA and v not in ({}, [], None)}
        stripped_meta["name"] = name
        config = {**config, "metadata": stripped_meta}
        config, warnings = self._validate_custom(rt, config, params, complete=False)
        with self.store.lock:
            if rt.namespaced:
                assert namespace is not None
                self._require_namespace(namespace)
            live = self.store.get(rt.key, namespace or "", name)
            if live is not None and config_rv and config_rv != live["metadata"].get("resourceVersion"):
                raise errors.version_conflict(rt.group, rt.plural, name)
            if live is None and rt.namespaced and not params.dry_run:
                self._refuse_if_terminating(rt, namespace or "", name)
            if live is None and subresource:
                raise errors.not_found(rt.group, rt.plural, name)
            result = fieldmanager.apply(
                live, config, manager=params.field_manager, force=params.force, schema=rt.schema,
                api_version=rt.api_version, now=now_timestamp(), status_subresource=rt.status_subresource,
                subresource=subresource,
            )
            merged = result.obj
            merged["apiVersion"] = config.get("apiVersion") or rt.api_version
            merged["kind"] = rt.kind
            managed = fieldmanager.encode_managed_fields(result.entries)
            if live is None:
                obj = self._complete_custom(rt, self._new_object(rt, merged, name, namespace))
                self._admit(rt, obj, namespace, params.dry_run)
                self._finish_write(rt, obj, None)
                obj["metadata"]["managedFields"] = managed
                self._commit(rt, obj, None, params.dry_run)
                return WriteResult(obj, 201, warnings)
            obj = dict(merged)
            obj["metadata"] = {**live["metadata"], **{k: v for k, v in merged["metadata"].items()
                                                       if k in fieldmanager.APPLYABLE_METADATA}}
            for key in ("labels", "annotations", "finalizers", "ownerReferences"):
                if key not in merged["metadata"] or not merged["metadata"][key]:
                    obj["metadata"].pop(key, None)
            if subresource != "status":
                obj = self._complete_custom(rt, obj)
                self._admit(rt, obj, namespace, params.dry_run)
                self._default(rt, obj, live)
                self._finish_write(rt, obj, live)
            self._bump_generation(rt, live, obj)
            obj["metadata"]["managedFields"] = managed
            return self._store_if_changed(rt, live, obj, params, warnings)

    # -----------------------------------------------------------------------------------------
    # delete
    # -----------------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str | None, name: str, options: dict[str, Any],
               dry_run: bool) -> WriteResult:
        with self.store.lock:
            live = self.store.get(rt.key, namespace or "", name)
            if live is None:
                raise errors.not_found(rt.group, rt.plural, name)
            preconditions = options.get("preconditions") or {}
            if preconditions.get("uid") and preconditions["uid"] != live["metadata"].get("uid"):
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {errors.group_resource(rt.group, rt.plural)} "{name}": '
                               f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                               f"UID in object meta: {live['metadata'].get('uid')}",
                               {"name": name, "kind": rt.plural})
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != live["metadata"].get("resourceVersion"):
                raise errors.version_conflict(rt.group, rt.plural, name)
            propagation = options.get("propagationPolicy")
            if propagation not in (None, "", "Orphan", "Background", "Foreground"):
                raise errors.invalid(rt.group, rt.kind, name, [(
                    "FieldValueNotSupported", "propagationPolicy",
                    f'Unsupported value: "{propagation}": supported values: "Foreground", "Background", "Orphan", "nil"')])
            final = {**live, "metadata": {**live["metadata"], "deletionTimestamp": now_timestamp(),
                                          "deletionGracePeriodSeconds": 0}}
            if rt.key == NAMESPACE_KEY:
                final["status"] = {**(live.get("status") or {}), "phase": "Terminating"}
            if dry_run:
                return WriteResult(self._delete_answer(rt, final), 200)
            if live["metadata"].get("finalizers"):
                # Finalizers hold the object until a client removes them.
                if live["metadata"].get("deletionTimestamp"):
                    return WriteResult(self._served(rt, live), 200)
                rv = self.store.next_rv()
                final["metadata"]["resourceVersion"] = str(rv)
                self.store.put(rt.key, namespace or "", name, final, "MODIFIED", live, rv)
                return WriteResult(self._served(rt, final), 200)
            if rt.key == NAMESPACE_KEY and self.options.namespace_termination > 0:
                return WriteResult(self._served(rt, self._terminate_namespace(live, final)), 200)
            rv = self.store.next_rv()
            final["metadata"]["resourceVersion"] = str(rv)
            self.store.delete(rt.key, namespace or "", name, final, rv)
            self._after_delete(rt, final)
        return WriteResult(self._delete_answer(rt, final), 200)

    def _terminate_namespace(self, live: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
        """Mark the namespace Terminating, delete its contents (the namespace controller's
        first step), and schedule its purge. Called with the store lock held."""
        name = live["metadata"]["name"]
        if live["metadata"].get("deletionTimestamp"):
            raise errors.namespace_finalizing(name)
        rv = self.store.next_rv()
        final["metadata"]["resourceVersion"] = str(rv)
        final["metadata"].pop("deletionGracePeriodSeconds", None)
        self.store.put(NAMESPACE_KEY, "", name, final, "MODIFIED", live, rv)
        self._delete_namespace_contents(name)
        self.terminator.terminating(name, str(live["metadata"].get("uid", "")), self.options.namespace_termination)
        return final

    def purge_namespace(self, name: str, uid: str | None = None) -> bool:
        """The end of a namespace's termination: it is gone (if it is still the one with
        ``uid``, when given). False when no such namespace is terminating."""
        with self.store.lock:
            live = self.store.get(NAMESPACE_KEY, "", name)
            if live is None or not live["metadata"].get("deletionTimestamp") \
                    or (uid is not None and str(live["metadata"].get("uid", "")) != uid):
                return False
            self._delete_namespace_contents(name)
            rv = self.store.next_rv()
            gone = {**live, "metadata": {**live["metadata"], "resourceVersion": str(rv)}}
            self.store.delete(NAMESPACE_KEY, "", name, gone, rv)
        return True

    def _delete_namespace_contents(self, name: str) -> None:
        for key in self.store.keys():
            if name not in self.store.namespaces_of(key):
                continue
            for obj in self.store.list(key, name):
                rv = self.store.next_rv()
                gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv),
                                            "deletionTimestamp": now_timestamp()}}
                self.store.delete(key, name, obj["metadata"]["name"], gone, rv)

    def _delete_answer(self, rt: ResourceType, final: dict[str, Any]) -> dict[str, Any]:
        if rt.key in _RETURNS_DELETED_OBJECT:
            return self._served(rt, final)
        details: dict[str, Any] = {"name": final["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = final["metadata"].get("uid")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _after_delete(self, rt: ResourceType, final: dict[str, Any]) -> None:
        """Cascades the real controllers would perform: namespace contents, CRD instances."""
        name = final["metadata"]["name"]
        if rt.key == NAMESPACE_KEY:
            self._delete_namespace_contents(name)
        elif rt.key == SPINAPP_KEY and self.operator is not None:
            self.operator.spinapp_deleted(final)
        elif rt.key == CRD_KEY:
            group = (final.get("spec") or {}).get("group", "")
            plural = ((final.get("spec") or {}).get("names") or {}).get("plural", "")
            self.registry.set_crd_types(name, [])
            self.store.drop_resource((group, plural))

    def delete_collection(self, rt: ResourceType, namespace: str | None, params: ListParams,
                          options: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        items, metadata = self.list(rt, namespace, ListParams(params.labels, params.fields))
        deleted: list[dict[str, Any]] = []
        for obj in items:
            try:
                result = self.delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], options, dry_run)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(result.obj if result.obj.get("kind") != "Status" else obj)
        return {"apiVersion": rt.api_version, "kind": rt.list_kind,
                "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted}

    # -----------------------------------------------------------------------------------------
    # scale subresource
    # -----------------------------------------------------------------------------------------

    def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.get(rt, namespace, name)
        spec_path, status_path = rt.scale_paths or (".spec.replicas", ".status.replicas")
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in obj["metadata"]},
            "spec": {"replicas": _get_path(obj, spec_path) or 0},
            "status": {"replicas": _get_path(obj, status_path) or 0,
                       "selector": ",".join(f"{k}={v}" for k, v in selector.items())},
        }

    def set_scale(self, rt: ResourceType, namespace: str | None, name: str, replicas: int,
                  params: WriteParams) -> dict[str, Any]:
        with self.store.lock:
            live = self.store.get(rt.key, namespace or "", name)
            if live is None:
                raise errors.not_found(rt.group, rt.plural, name)
            new = copy.deepcopy(live)
            _set_path(new, (rt.scale_paths or (".spec.replicas", ""))[0], replicas)
            self._write_update(rt, live, new, params, "scale")
        return self.get_scale(rt, namespace, name)

    # -----------------------------------------------------------------------------------------
    # watch
    # -----------------------------------------------------------------------------------------

    def watch(self, rt: ResourceType, namespace: str | None, params: ListParams, resource_version: str,
              timeout: float, bookmarks: bool, send_initial: bool | None,
              alive: Callable[[], bool]) -> Iterator[list[dict[str, Any]]]:
        """Yield batches of watch events (possibly empty, about once a second) until ``timeout``."""
        deadline = time.monotonic() + timeout
        reset_count = self.store.reset_count

        def visible(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return self.matches(params, obj)

        with self.store.lock:
            current_rv = self.store.resource_version
            initial: list[dict[str, Any]] = []
            if resource_version in ("", "0") or send_initial:
                for obj in self.store.list(rt.key, namespace):
                    if self.matches(params, obj):
                        initial.append({"type": "ADDED", "object": self._served(rt, obj)})
                last_rv = current_rv
            else:
                try:
                    last_rv = int(resource_version)
                except ValueError:
                    raise errors.bad_request(f'resourceVersion: Invalid value: "{resource_version}"') from None
                if last_rv > current_rv:
                    # The real server waits for the version to appear; nothing newer exists here.
                    last_rv = current_rv
        if send_initial:
            initial.append({"type": "BOOKMARK", "object": {
                "kind": rt.kind, "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(last_rv),
                             "annotations": {"k8s.io/initial-events-end": "true"}}}})
        if initial:
            yield initial
        while time.monotonic() < deadline and alive():
            with self.store.lock:
                if self.store.reset_count != reset_count:
                    return
                events, too_old = self.store.events_since(rt.key, last_rv)
                if too_old:
                    status = errors.gone(f"too old resource version: {last_rv} ({self.store.resource_version})").status()
                    yield [{"type": "ERROR", "object": status}]
                    return
                if not events:
                    self.store.changed.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                    events, _ = self.store.events_since(rt.key, last_rv)
                    if self.store.reset_count != reset_count:
                        return
            batch: list[dict[str, Any]] = []
            for event in events:
                last_rv = event.rv
                kind = self._visible_event(event, visible)
                if kind:
                    batch.append({"type": kind, "object": self._served(rt, event.obj)})
            yield batch

    @staticmethod
    def _visible_event(event: Event, visible: Callable[[dict[str, Any] | None], bool]) -> str:
        if event.type == "ADDED":
            return "ADDED" if visible(event.obj) else ""
        if event.type == "DELETED":
            return "DELETED" if visible(event.old or event.obj) else ""
        before, after = visible(event.old), visible(event.obj)
        if before and after:
            return "MODIFIED"
        if after:
            return "ADDED"
        if before:
            return "DELETED"
        return ""

    # -----------------------------------------------------------------------------------------
    # Test conveniences
    # -----------------------------------------------------------------------------------------

    def mark_ready(self, namespace: str, name: str, ready_replicas: int | None = None) -> dict[str, Any]:
        """Set a SpinApp's status as spin-operator would once its pods are ready."""
        rt = self.registry.lookup(SPINAPP_GROUP, "v1alpha1", "spinapps")
        if rt is None:
            raise errors.not_found(SPINAPP_GROUP, "spinapps", name)
        with self.store.lock:
            live = self.store.get(rt.key, namespace, name)
            if live is None:
                raise errors.not_found(rt.group, rt.plural, name)
            status = self._ready_status(live)
            if ready_replicas is not None:
                status["readyReplicas"] = ready_replicas
            new = {**live, "status": status}
            return self._write_update(rt, live, new, WriteParams(field_manager="spin-operator"), "status").obj
