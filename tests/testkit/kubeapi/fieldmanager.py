"""Server-side apply and ``metadata.managedFields``, following structured-merge-diff.

Field paths are tuples of fieldsV1 path elements: ``f:<field>``, ``k:<json of key fields>``
(items of associative lists), ``v:<json value>`` (items of sets) and ``i:<index>``. A field set
is a Python ``set`` of such tuples, which converts one-to-one to the nested ``fieldsV1`` form
(``{"f:spec": {"f:replicas": {}}}``; a node that is itself owned and also has owned children
carries ``".": {}``).

Which paths an object "has" mirrors ``TypedValue.ToFieldSet``: scalars, atomic lists/maps and
list items always; a map only when it is empty or sits under an undeclared key (an entry of a
free-form map such as ``labels``); a non-atomic list only under an undeclared key.

Apply (``Updater.Apply``): merge the applied configuration into the live object, make the
applier own exactly the fields of its configuration, prune fields it owned before and dropped
(unless someone else owns them), then compare live and new: any field another manager owns
whose value changes (or appears) is a conflict, unless ``force`` moves it to the applier.
Update (``Updater.Update``, every non-apply write): changed fields move to the writer, which
is how ``kubectl edit`` or ``kubectl patch`` drift becomes visible to the next apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import ApiError
from .schema import Schema, child_schema, is_atomic_map, items_schema, list_kind

Path = tuple[str, ...]

_CONTAINER = ("<container>",)  # leaf value standing for "a map/list node that is owned itself"

# Metadata the server owns; structured-merge-diff's StripMeta never records these.
_STRIPPED: frozenset[Path] = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
        ("f:metadata", "f:uid"),
        ("f:metadata", "f:resourceVersion"),
        ("f:metadata", "f:generation"),
        ("f:metadata", "f:creationTimestamp"),
        ("f:metadata", "f:selfLink"),
        ("f:metadata", "f:deletionTimestamp"),
        ("f:metadata", "f:deletionGracePeriodSeconds"),
    }
)
_STRIPPED_PREFIXES: tuple[Path, ...] = (("f:metadata", "f:managedFields"),)

# Metadata keys an apply configuration may own; the rest is server-controlled.
APPLYABLE_METADATA = ("name", "namespace", "generateName", "labels", "annotations", "finalizers", "ownerReferences")


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _item_element(item: Any, kind: str, keys: tuple[str, ...], index: int) -> str:
    if kind == "set":
        return "v:" + _compact(item)
    if kind == "map" and isinstance(item, dict):
        present = {k: item[k] for k in keys if k in item}
        if present:
            return "k:" + _compact(present)
    return f"i:{index}"


def _scalar_equal(a: Any, b: Any) -> bool:
    # JSON true and 1 are different values; Python's == would call them equal.
    return type(a) is type(b) and a == b


def path_string(path: Path) -> str:
    """``.spec.containers[name="web"].image`` — the form conflict messages use."""
    out: list[str] = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            fields = json.loads(rest)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(fields.items())) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Field sets of values
# ---------------------------------------------------------------------------------------------


def flatten(value: dict[str, Any], schema: Schema) -> dict[Path, Any]:
    """Every owned-able path of ``value`` mapped to its leaf value (or a container marker)."""
    out: dict[Path, Any] = {}
    _walk_map(value, schema, (), out)
    for path in _STRIPPED:
        out.pop(path, None)
    for prefix in _STRIPPED_PREFIXES:
        for path in [p for p in out if p[: len(prefix)] == prefix]:
            del out[path]
    return out


def _walk_map(value: dict[str, Any], schema: Schema, path: Path, out: dict[Path, Any]) -> None:
    for key, item in value.items():
        sub, declared = child_schema(schema, key)
        _walk_value(item, sub, path + ("f:" + key,), declared, out)


def _walk_value(value: Any, schema: Schema, path: Path, declared: bool, out: dict[Path, Any]) -> None:
    if isinstance(value, dict):
        if is_atomic_map(schema):
            out[path] = value
            return
        _walk_map(value, schema, path, out)
        if not value or not declared:
            out[path] = _CONTAINER
    elif isinstance(value, list):
        kind, keys = list_kind(schema)
        if kind == "atomic":
            out[path] = value
            return
        item_schema = items_schema(schema)
        for index, item in enumerate(value):
            item_path = path + (_item_element(item, kind, keys, index),)
            if isinstance(item, dict) and not is_atomic_map(item_schema):
                _walk_map(item, item_schema, item_path, out)
                out[item_path] = _CONTAINER
            else:
                out[item_path] = item
        if not declared:
            out[path] = _CONTAINER
    else:
        out[path] = value


def compare(old: dict[Path, Any], new: dict[Path, Any]) -> tuple[set[Path], set[Path], set[Path]]:
    """``(added, removed, modified)`` between two flattened values."""
    added = {p for p in new if p not in old}
    removed = {p for p in old if p not in new}
    modified: set[Path] = set()
    for path, value in new.items():
        if path in old:
            before = old[path]
            if before is _CONTAINER and value is _CONTAINER:
                continue
            if isinstance(value, (dict, list)) or isinstance(before, (dict, list)):
                if before != value:
                    modified.add(path)
            elif not _scalar_equal(before, value):
                modified.add(path)
    return added, removed, modified


# ---------------------------------------------------------------------------------------------
# fieldsV1 encoding
# ---------------------------------------------------------------------------------------------


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """The nested ``fieldsV1`` form of a set of paths."""
    root: dict[str, Any] = {}
    members: set[Path] = set()
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        members.add(path)

    def finish(node: dict[str, Any], path: Path) -> dict[str, Any]:
        children = {k: finish(v, path + (k,)) for k, v in sorted(node.items())}
        if children and path in members:
            return {".": {}, **children}
        return children

    return finish(root, ())


def decode_fields(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The set of paths in a ``fieldsV1`` tree."""
    paths: set[Path] = set()
    for key, child in tree.items():
        if key == ".":
            continue
        path = prefix + (key,)
        if not child or "." in child:
            paths.add(path)
        if child:
            paths |= decode_fields(child, path)
    return paths


@dataclass
class ManagerEntry:
    """One ``managedFields`` entry with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: set[Path]
    subresource: str = ""

    def identity(self) -> tuple[str, str, str, str]:
        # Like BuildManagerIdentifier: appliers are one manager across API versions.
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, self.subresource, version)

    def describe(self) -> str:
        """How conflict messages name this manager (``printManager``)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def encode(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def decode_managed_fields(obj: dict[str, Any] | None) -> list[ManagerEntry]:
    entries: list[ManagerEntry] = []
    for raw in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        entries.append(
            ManagerEntry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                time=raw.get("time", ""),
                fields=decode_fields(raw.get("fieldsV1") or {}),
                subresource=raw.get("subresource", ""),
            )
        )
    return entries


def encode_managed_fields(entries: list[ManagerEntry]) -> list[dict[str, Any]]:
    ordered = sorted(
        (e for e in entries if e.fields),
        key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource),
    )
    return [e.encode() for e in ordered]


# ---------------------------------------------------------------------------------------------
# Merging and pruning values
# ---------------------------------------------------------------------------------------------


def merge(live: Any, applied: Any, schema: Schema) -> Any:
    """Merge an apply configuration into a live value (new structure; inputs are not changed)."""
    if isinstance(applied, dict) and isinstance(live, dict) and not is_atomic_map(schema):
        out = dict(live)
        for key, value in applied.items():
            sub, _ = child_schema(schema, key)
            if value is None:
                # An explicit null is owned but leaves no value behind.
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, sub)
            else:
                out[key] = _drop_nulls(value)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        kind, keys = list_kind(schema)
        if kind == "map":
            item_schema = items_schema(schema)
            index = {_item_element(item, kind, keys, i): i for i, item in enumerate(live)}
            out_list = list(live)
            for i, item in enumerate(applied):
                element = _item_element(item, kind, keys, i)
                if element in index and not element.startswith("i:"):
                    position = index[element]
                    out_list[position] = merge(out_list[position], item, item_schema)
                else:
                    index[element] = len(out_list)
                    out_list.append(_drop_nulls(item))
            return out_list
        if kind == "set":
            out_list = list(live)
            seen = {_compact(v) for v in live}
            for item in applied:
                if _compact(item) not in seen:
                    seen.add(_compact(item))
                    out_list.append(item)
            return out_list
    return _drop_nulls(applied)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _element_matches(element: str, index: int, item: Any) -> bool:
    kind, _, rest = element.partition(":")
    if kind == "k":
        fields = json.loads(rest)
        return isinstance(item, dict) and all(
            k in item and _compact(item[k]) == _compact(v) for k, v in fields.items()
        )
    if kind == "v":
        return _compact(item) == rest
    if kind == "i":
        return index == int(rest)
    return False


def remove_paths(value: Any, paths: set[Path]) -> Any:
    """A copy of ``value`` without ``paths``; maps emptied by the removal disappear too."""
    if not paths:
        return value
    direct: set[str] = set()
    nested: dict[str, set[Path]] = {}
    for path in paths:
        if len(path) == 1:
            direct.add(path[0])
        else:
            nested.setdefault(path[0], set()).add(path[1:])
    if isinstance(value, dict):
        out = dict(value)
        for element in direct:
            if element.startswith("f:"):
                out.pop(element[2:], None)
        for element, sub in nested.items():
            key = element[2:]
            if element.startswith("f:") and key in out:
                before = out[key]
                after = remove_paths(before, sub)
                if isinstance(after, (dict, list)) and not after and before:
                    del out[key]
                else:
                    out[key] = after
        return out
    if isinstance(value, list):
        out_list: list[Any] = []
        for index, item in enumerate(value):
            if any(_element_matches(e, index, item) for e in direct):
                continue
            for element, sub in nested.items():
                if _element_matches(element, index, item):
                    item = remove_paths(item, sub)
            out_list.append(item)
        return out_list
    return value


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for path in paths:
        for end in range(1, len(path) + 1):
            out.add(path[:end])
    return out


# ---------------------------------------------------------------------------------------------
# Apply and Update
# ---------------------------------------------------------------------------------------------


class ApplyConflict(ApiError):
    """409 with the apiserver's ``Apply failed with N conflict(s)`` message and causes."""

    def __init__(self, conflicts: list[tuple[ManagerEntry, Path]]) -> None:
        causes = [
            {"type": "FieldManagerConflict", "message": f"conflict with {entry.describe()}", "field": path_string(path)}
            for entry, path in conflicts
        ]
        if len(conflicts) == 1:
            entry, path = conflicts[0]
            message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_string(path)}"
        else:
            by_manager: dict[str, list[str]] = {}
            for entry, path in conflicts:
                by_manager.setdefault(entry.describe(), []).append(path_string(path))
            lines: list[str] = []
            for manager in sorted(by_manager):
                lines.append(f"conflicts with {manager}:")
                lines.extend(f"- {p}" for p in by_manager[manager])
            message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        super().__init__(409, "Conflict", message, {"causes": causes})


@dataclass
class FieldManagerResult:
    """The object to store (without managedFields) and its new managedFields entries."""

    obj: dict[str, Any]
    entries: list[ManagerEntry]


def _strip_for_tracking(obj: dict[str, Any], ignore_status: bool) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if not (ignore_status and k == "status")}
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        out["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return out


def _only_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {"status": obj["status"]} if "status" in obj else {}


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    schema: Schema,
    api_version: str,
    now: str,
    status_subresource: bool,
    subresource: str = "",
) -> FieldManagerResult:
    """Server-side apply ``config`` (already stripped of server-owned metadata) onto ``live``."""
    entries = decode_managed_fields(live)
    base = _strip_for_tracking(live or {}, ignore_status=False)
    if subresource == "status":
        tracked_config = _only_status(config)
    else:
        tracked_config = _strip_for_tracking(config, ignore_status=status_subresource)
    merged = merge(base, tracked_config, schema)

    identity = (manager, "Apply", subresource, "")
    previous = next((e for e in entries if e.identity() == identity), None)
    applied_set = set(flatten(tracked_config, schema))
    others = [e for e in entries if e.identity() != identity]

    # Prune what this manager applied last time and no longer does, unless another manager
    # still owns it (or owns something inside it).
    if previous is not None:
        dropped = previous.fields - applied_set
        still_owned = _prefixes(p for e in others for p in e.fields)
        to_remove = {p for p in dropped if p not in still_owned and p not in applied_set}
        merged = remove_paths(merged, to_remove)

    live_flat = flatten(base, schema)
    merged_flat = flatten(merged, schema)
    added, removed, modified = compare(live_flat, merged_flat)
    changed = added | modified
    conflicts: list[tuple[ManagerEntry, Path]] = []
    for entry in others:
        for path in sorted(entry.fields & changed):
            conflicts.append((entry, path))
    if conflicts and not force:
        raise ApplyConflict(conflicts)

    new_entries: list[ManagerEntry] = []
    for entry in others:
        entry.fields = entry.fields - changed - removed
        if entry.fields:
            new_entries.append(entry)
    if previous is not None and previous.fields == applied_set:
        previous_time = previous.time
    else:
        previous_time = now
    new_entries.append(
        ManagerEntry(manager, "Apply", api_version, previous_time, applied_set, subresource)
    )
    return FieldManagerResult(merged, new_entries)


def update(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    schema: Schema,
    api_version: str,
    now: str,
    subresource: str = "",
    entries: list[ManagerEntry] | None = None,
) -> list[ManagerEntry]:
    """Record a non-apply write of ``new`` over ``live`` by ``manager``; returns new entries."""
    if entries is None:
        entries = decode_managed_fields(live)
    live_flat = flatten(_strip_for_tracking(live or {}, ignore_status=False), schema)
    new_flat = flatten(_strip_for_tracking(new, ignore_status=False), schema)
    added, removed, modified = compare(live_flat, new_flat)
    changed = added | modified
    identity = (manager, "Update", subresource, api_version)
    mine = next((e for e in entries if e.identity() == identity), None)
    out: list[ManagerEntry] = []
    for entry in entries:
        if entry is mine:
            continue
        entry.fields = entry.fields - changed - removed
        if entry.fields:
            out.append(entry)
    fields = ((mine.fields if mine else set()) - removed) | changed
    if fields:
        unchanged = mine is not None and mine.fields == fields
        out.append(
            ManagerEntry(manager, "Update", api_version, mine.time if unchanged and mine else now, fields, subresource)
        )
    return out
