"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` that ``kubectl get`` asks for.

Columns follow the real server's printers for the built-in kinds and a CRD's
``additionalPrinterColumns`` (``Age`` alone when it declares none).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

from .resources import ResourceType

Column = tuple[str, str, str, Callable[[dict[str, Any]], Any]]  # name, type, format, cell


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration`` from apimachinery."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(timezone.utc) - then).total_seconds())


_FILTER = re.compile(r"^\[\?\(@\.(?P<field>[\w.-]+)\s*==\s*[\"'](?P<value>[^\"']*)[\"']\)\]")
_INDEX = re.compile(r"^\[(?P<index>\d+)\]")


def json_path(obj: Any, path: str) -> Any:
    """The subset of JSONPath printer columns use: ``.a.b``, ``[0]``, ``[?(@.k=="v")]``."""
    rest = path.strip()
    if rest.startswith("{") and rest.endswith("}"):
        rest = rest[1:-1]
    current: Any = obj
    while rest:
        if rest.startswith("."):
            match = re.match(r"^\.([\w-]+)", rest)
            if not match:
                return None
            current = current.get(match[1]) if isinstance(current, dict) else None
            rest = rest[match.end():]
        elif (match := _FILTER.match(rest)):
            if not isinstance(current, list):
                return None
            found = [item for item in current
                     if isinstance(item, dict) and str(json_path(item, "." + match["field"])) == match["value"]]
            current = found[0] if found else None
            rest = rest[match.end():]
        elif (match := _INDEX.match(rest)):
            index = int(match["index"])
            current = current[index] if isinstance(current, list) and index < len(current) else None
            rest = rest[match.end():]
        else:
            return None
        if current is None:
            return None
    return current


def _meta(obj: dict[str, Any], key: str) -> Any:
    return (obj.get("metadata") or {}).get(key)


def _name_column() -> Column:
    return ("Name", "string", "name", lambda o: _meta(o, "name"))


def _age_column() -> Column:
    return ("Age", "string", "", lambda o: _age(_meta(o, "creationTimestamp")))


def _ports(obj: dict[str, Any]) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    parts = [f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports]
    return ",".join(parts) or "<none>"


def _ready_pods(obj: dict[str, Any]) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    containers = (obj.get("spec") or {}).get("containers") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


def _deployment_ready(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    desired = (obj.get("spec") or {}).get("replicas", 1)
    return f"{status.get('readyReplicas', 0)}/{desired}"


def _hpa_reference(obj: dict[str, Any]) -> str:
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


_BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "Namespace": [_name_column(), ("Status", "string", "", lambda o: (o.get("status") or {}).get("phase", "")),
                  _age_column()],
    "ConfigMap": [_name_column(),
                  ("Data", "integer", "", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
                  _age_column()],
    "Secret": [_name_column(), ("Type", "string", "", lambda o: o.get("type", "Opaque")),
               ("Data", "string", "", lambda o: len(o.get("data") or {})), _age_column()],
    "Service": [_name_column(),
                ("Type", "string", "", lambda o: (o.get("spec") or {}).get("type", "ClusterIP")),
                ("Cluster-IP", "string", "", lambda o: (o.get("spec") or {}).get("clusterIP", "<none>")),
                ("External-IP", "string", "", lambda o: ",".join((o.get("spec") or {}).get("externalIPs") or []) or "<none>"),
                ("Port(s)", "string", "", _ports), _age_column()],
    "ServiceAccount": [_name_column(), ("Secrets", "string", "", lambda o: len(o.get("secrets") or [])), _age_column()],
    "Pod": [_name_column(), ("Ready", "string", "", _ready_pods),
            ("Status", "string", "", lambda o: (o.get("status") or {}).get("phase", "Pending")),
            ("Restarts", "string", "", lambda o: "0"), _age_column()],
    "Event": [("Last Seen", "string", "", lambda o: _age(o.get("lastTimestamp") or _meta(o, "creationTimestamp"))),
              ("Type", "string", "", lambda o: o.get("type", "")),
              ("Reason", "string", "", lambda o: o.get("reason", "")),
              ("Object", "string", "", lambda o: "{}/{}".format(
                  ((o.get("involvedObject") or {}).get("kind") or "").lower(),
                  (o.get("involvedObject") or {}).get("name", ""))),
              ("Message", "string", "", lambda o: o.get("message", ""))],
    "Deployment": [_name_column(), ("Ready", "string", "", _deployment_ready),
                   ("Up-to-date", "string", "", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
                   ("Available", "string", "", lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
                   _age_column()],
    "HorizontalPodAutoscaler": [
        _name_column(), ("Reference", "string", "", _hpa_reference),
        ("Targets", "string", "", lambda o: "<unknown>"),
        ("MinPods", "string", "", lambda o: (o.get("spec") or {}).get("minReplicas", 1)),
        ("MaxPods", "integer", "", lambda o: (o.get("spec") or {}).get("maxReplicas", 0)),
        ("Replicas", "integer", "", lambda o: (o.get("status") or {}).get("currentReplicas", 0)),
        _age_column()],
    "CustomResourceDefinition": [
        _name_column(),
        ("Created At", "date", "", lambda o: _meta(o, "creationTimestamp"))],
}


def _columns(rt: ResourceType) -> list[Column]:
    if not rt.is_custom:
        return _BUILTIN_COLUMNS.get(rt.kind, [_name_column(), _age_column()])
    if not rt.printer_columns:
        return [_name_column(), _age_column()]
    columns = [_name_column()]
    for spec in rt.printer_columns:
        path = spec.get("jsonPath", "")
        kind = spec.get("type", "string")

        def cell(obj: dict[str, Any], path: str = path, kind: str = kind) -> Any:
            value = json_path(obj, path)
            if kind == "date":
                return _age(value) if isinstance(value, str) else None
            return value

        columns.append((spec.get("name", ""), "string" if kind == "date" else kind, spec.get("format", ""), cell))
    return columns


def table(rt: ResourceType, items: list[dict[str, Any]], metadata: dict[str, Any], include_object: str) -> dict[str, Any]:
    """A ``Table`` of ``items``; ``include_object`` is None, Metadata (default) or Object."""
    columns = _columns(rt)
    definitions = [
        {"name": name, "type": type_, "format": fmt, "description": "", "priority": 0}
        for name, type_, fmt, _ in columns
    ]
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": [cell(obj) for _, _, _, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": definitions, "rows": rows}
