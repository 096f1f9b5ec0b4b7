"""Structural schemas: the part of OpenAPI v3 that decides how objects merge and who owns what.

Server-side apply, strategic merge patch and field validation all ask the same questions of a
schema: is this key a declared field or an entry of a free-form map, is this list atomic, a
set, or a map keyed by some fields, and which strategic-merge key does it use. CRDs answer with
their ``openAPIV3Schema`` (``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``,
``x-kubernetes-map-type``, ``x-kubernetes-preserve-unknown-fields``); built-in kinds answer
with the compact schemas below, which declare only what changes behaviour (associative lists,
free-form maps) and leave the rest "deduced", like structured-merge-diff does for unknown
types: unknown maps are granular, unknown lists atomic.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any] | None


def child_schema(schema: Schema, key: str) -> tuple[Schema, bool]:
    """Schema of ``key`` inside an object schema, and whether ``key`` is a declared field."""
    if schema is None:
        return None, False
    properties = schema.get("properties")
    if properties and key in properties:
        return properties[key], True
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        return additional, False
    return None, False


def items_schema(schema: Schema) -> Schema:
    if schema is None:
        return None
    items = schema.get("items")
    return items if isinstance(items, dict) else None


def list_kind(schema: Schema) -> tuple[str, tuple[str, ...]]:
    """``("atomic", ())``, ``("set", ())`` or ``("map", keys)`` for a list schema."""
    if schema is None:
        return "atomic", ()
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        return "map", tuple(schema.get("x-kubernetes-list-map-keys") or ())
    if list_type == "set":
        return "set", ()
    return "atomic", ()


def is_atomic_map(schema: Schema) -> bool:
    return schema is not None and schema.get("x-kubernetes-map-type") == "atomic"


def patch_strategy(schema: Schema) -> tuple[str, str | None]:
    """Strategic-merge ``(strategy, mergeKey)`` for a list or map schema."""
    if schema is None:
        return "", None
    return schema.get("x-kubernetes-patch-strategy", ""), schema.get("x-kubernetes-patch-merge-key")


def _is_closed(schema: dict[str, Any]) -> bool:
    """An object schema that declares its properties and accepts no others."""
    additional = schema.get("additionalProperties")
    return (
        schema.get("properties") is not None
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and not isinstance(additional, dict)
        and additional is not True
    )


def unknown_fields(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Dotted paths of fields a structural schema does not declare (what the server prunes).

    Only objects with ``properties`` and without ``x-kubernetes-preserve-unknown-fields`` or
    ``additionalProperties`` are closed; a ``None`` (deduced) schema accepts anything.
    """
    found: list[str] = []
    if schema is None or value is None:
        return found
    if isinstance(value, dict):
        closed = _is_closed(schema)
        for key, item in value.items():
            sub, declared = child_schema(schema, key)
            if closed and not declared:
                found.append(f"{path}.{key}" if path else key)
                continue
            found.extend(unknown_fields(item, sub, f"{path}.{key}" if path else key))
    elif isinstance(value, list):
        sub = items_schema(schema)
        for index, item in enumerate(value):
            found.extend(unknown_fields(item, sub, f"{path}[{index}]"))
    return found


def prune_unknown(value: Any, schema: Schema) -> Any:
    """Drop undeclared fields, as the apiserver does for CRDs with structural schemas."""
    if schema is None or value is None:
        return value
    if isinstance(value, dict):
        closed = _is_closed(schema)
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub, declared = child_schema(schema, key)
            if closed and not declared:
                continue
            out[key] = prune_unknown(item, sub)
        return out
    if isinstance(value, list):
        sub = items_schema(schema)
        return [prune_unknown(item, sub) for item in value]
    return value


def required_missing(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Dotted paths of ``required`` properties that are absent."""
    missing: list[str] = []
    if schema is None or not isinstance(value, dict):
        return missing
    for name in schema.get("required") or ():
        if name not in value or value[name] is None:
            missing.append(f"{path}.{name}" if path else name)
    for key, item in value.items():
        sub, declared = child_schema(schema, key)
        if declared and isinstance(item, dict):
            missing.extend(required_missing(item, sub, f"{path}.{key}" if path else key))
    return missing


# ---------------------------------------------------------------------------------------------
# Compact built-in schemas (only the behaviour-changing parts of the real OpenAPI definitions)
# ---------------------------------------------------------------------------------------------


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _string() -> dict[str, Any]:
    return {"type": "string"}


def _int() -> dict[str, Any]:
    return {"type": "integer"}


def _bool() -> dict[str, Any]:
    return {"type": "boolean"}


def _string_map() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def _list_map(item: dict[str, Any], *keys: str, merge_key: str | None = None) -> dict[str, Any]:
    return {
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": list(keys),
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-patch-merge-key": merge_key or keys[0],
    }


def _set_of_strings() -> dict[str, Any]:
    return {
        "type": "array",
        "items": _string(),
        "x-kubernetes-list-type": "set",
        "x-kubernetes-patch-strategy": "merge",
    }


def _atomic_list(item: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "array", "items": item or {"type": "object"}, "x-kubernetes-list-type": "atomic"}


OWNER_REFERENCE = _obj(
    apiVersion=_string(), kind=_string(), name=_string(), uid=_string(),
    controller=_bool(), blockOwnerDeletion=_bool(),
)

OBJECT_META = _obj(
    name=_string(),
    generateName=_string(),
    namespace=_string(),
    uid=_string(),
    resourceVersion=_string(),
    generation=_int(),
    creationTimestamp=_string(),
    deletionTimestamp=_string(),
    deletionGracePeriodSeconds=_int(),
    labels=_string_map(),
    annotations=_string_map(),
    finalizers=_set_of_strings(),
    ownerReferences=_list_map(OWNER_REFERENCE, "uid"),
    managedFields=_atomic_list(),
    selfLink=_string(),
)

LABEL_SELECTOR = _obj(
    matchLabels=_string_map(),
    matchExpressions=_atomic_list(
        _obj(key=_string(), operator=_string(), values=_atomic_list(_string()))
    ),
)
LABEL_SELECTOR["x-kubernetes-map-type"] = "atomic"

RESOURCE_REQUIREMENTS = _obj(
    limits={"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": True}},
    requests={"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": True}},
)

ENV_VAR = _obj(name=_string(), value=_string(), valueFrom={"type": "object"})

CONTAINER_PORT = _obj(
    name=_string(), containerPort=_int(), protocol=_string(), hostPort=_int(), hostIP=_string()
)

CONTAINER = _obj(
    name=_string(),
    image=_string(),
    imagePullPolicy=_string(),
    command=_atomic_list(_string()),
    args=_atomic_list(_string()),
    workingDir=_string(),
    ports=_list_map(CONTAINER_PORT, "containerPort", "protocol"),
    env=_list_map(ENV_VAR, "name"),
    envFrom=_atomic_list(),
    resources=RESOURCE_REQUIREMENTS,
    volumeMounts=_list_map(
        _obj(name=_string(), mountPath=_string(), readOnly=_bool(), subPath=_string()),
        "mountPath",
    ),
    livenessProbe={"type": "object"},
    readinessProbe={"type": "object"},
    startupProbe={"type": "object"},
    securityContext={"type": "object"},
    terminationMessagePath=_string(),
    terminationMessagePolicy=_string(),
)

POD_SPEC = _obj(
    containers=_list_map(CONTAINER, "name"),
    initContainers=_list_map(CONTAINER, "name"),
    volumes=_list_map({"type": "object", "properties": {"name": _string()}}, "name"),
    imagePullSecrets=_list_map(_obj(name=_string()), "name"),
    nodeSelector={**_string_map(), "x-kubernetes-map-type": "atomic"},
    tolerations=_atomic_list(),
    serviceAccountName=_string(),
    serviceAccount=_string(),
    runtimeClassName=_string(),
    restartPolicy=_string(),
    dnsPolicy=_string(),
    schedulerName=_string(),
    terminationGracePeriodSeconds=_int(),
    securityContext={"type": "object"},
    affinity={"type": "object"},
    nodeName=_string(),
)

POD_TEMPLATE = _obj(metadata=OBJECT_META, spec=POD_SPEC)

CONDITIONS = _list_map(
    _obj(type=_string(), status=_string(), reason=_string(), message=_string(),
         lastTransitionTime=_string(), lastUpdateTime=_string()),
    "type",
)


def _kind(**properties: Any) -> dict[str, Any]:
    return _obj(apiVersion=_string(), kind=_string(), metadata=OBJECT_META, **properties)


BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "Namespace": _kind(
        spec=_obj(finalizers=_atomic_list(_string())),
        status=_obj(phase=_string(), conditions=CONDITIONS),
    ),
    "ConfigMap": _kind(data=_string_map(), binaryData=_string_map(), immutable=_bool()),
    # KEDA's webhook reads LimitRange defaults (isContainerResourceLimitSet).
    "LimitRange": _kind(spec=_obj(limits=_atomic_list(_obj(
        type=_string(), **{part: RESOURCE_REQUIREMENTS["properties"]["limits"]
                           for part in ("default", "defaultRequest", "max", "min", "maxLimitRequestRatio")})))),
    "Secret": _kind(data=_string_map(), stringData=_string_map(), type=_string(), immutable=_bool()),
    "ServiceAccount": _kind(
        secrets=_list_map(_obj(name=_string()), "name"),
        imagePullSecrets=_atomic_list(_obj(name=_string())),
        automountServiceAccountToken=_bool(),
    ),
    "Service": _kind(
        spec=_obj(
            type=_string(),
            selector={**_string_map(), "x-kubernetes-map-type": "atomic"},
            ports=_list_map(
                _obj(name=_string(), port=_int(), protocol=_string(),
                     targetPort={"x-kubernetes-int-or-string": True}, nodePort=_int(),
                     appProtocol=_string()),
                "port", "protocol", merge_key="port",
            ),
            clusterIP=_string(),
            clusterIPs=_atomic_list(_string()),
            externalIPs=_atomic_list(_string()),
            sessionAffinity=_string(),
            ipFamilies=_atomic_list(_string()),
            ipFamilyPolicy=_string(),
            internalTrafficPolicy=_string(),
        ),
        status={"type": "object"},
    ),
    "Pod": _kind(spec=POD_SPEC, status={"type": "object", "properties": {"conditions": CONDITIONS}}),
    "Event": _kind(
        involvedObject=_obj(kind=_string(), namespace=_string(), name=_string(), uid=_string(),
                            apiVersion=_string(), resourceVersion=_string(), fieldPath=_string()),
        reason=_string(), message=_string(), type=_string(), count=_int(),
        source={"type": "object"}, firstTimestamp=_string(), lastTimestamp=_string(),
    ),
    "Deployment": _kind(
        spec=_obj(
            replicas=_int(),
            selector=LABEL_SELECTOR,
            template=POD_TEMPLATE,
            strategy={"type": "object", "x-kubernetes-patch-strategy": "retainKeys"},
            minReadySeconds=_int(),
            revisionHistoryLimit=_int(),
            progressDeadlineSeconds=_int(),
            paused=_bool(),
        ),
        status=_obj(replicas=_int(), readyReplicas=_int(), availableReplicas=_int(),
                    updatedReplicas=_int(), observedGeneration=_int(), conditions=CONDITIONS),
    ),
    "HorizontalPodAutoscaler": _kind(
        spec=_obj(
            scaleTargetRef=_obj(apiVersion=_string(), kind=_string(), name=_string()),
            minReplicas=_int(),
            maxReplicas=_int(),
            metrics=_atomic_list(),
            behavior={"type": "object"},
        ),
        status={"type": "object", "properties": {"conditions": CONDITIONS}},
    ),
    # CRD specs are validated by the emulator in code; the schema only needs to keep the
    # embedded openAPIV3Schema free-form and the versions list atomic, as upstream does.
    "CustomResourceDefinition": _kind(
        spec=_obj(
            group=_string(),
            names=_obj(plural=_string(), singular=_string(), kind=_string(), listKind=_string(),
                       shortNames=_atomic_list(_string()), categories=_atomic_list(_string())),
            scope=_string(),
            versions=_atomic_list(),
            conversion={"type": "object"},
            preserveUnknownFields=_bool(),
        ),
        status={"type": "object"},
    ),
}


def with_object_meta(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A CRD's openAPIV3Schema with apiVersion/kind/metadata declared, as the server treats it."""
    base = dict(schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    properties = dict(base.get("properties") or {})
    properties["apiVersion"] = _string()
    properties["kind"] = _string()
    properties["metadata"] = OBJECT_META
    base["properties"] = properties
    return base
