"""The three non-apply patch formats: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic.

Strategic merge patch follows ``k8s.io/apimachinery/pkg/util/strategicpatch`` for what kubectl
sends: lists with ``x-kubernetes-patch-strategy: merge`` merge by their merge key (or as a set
of primitives), other lists are replaced; ``$patch: replace|delete|merge`` directives,
``$retainKeys``, ``$setElementOrder/<field>`` and ``$deleteFromPrimitiveList/<field>``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import ApiError
from .schema import Schema, child_schema, items_schema, patch_strategy


def _invalid_patch(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = json_merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid_patch(f"the server rejected our request due to an error in our request: invalid path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    current = doc
    for part in parts:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise _invalid_patch(f"jsonpatch: path {path!r} does not exist")
    return current


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 on a deep copy of ``target``."""
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _invalid_patch("the server rejected our request due to an error in our request")
        kind = op["op"]
        path = op["path"]
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _invalid_patch(f"the server rejected our request due to an error in our request: missing value for {kind}")
        if kind == "test":
            if _resolve(doc, parts, path) != op["value"]:
                raise _invalid_patch(f"the server rejected our request due to an error in our request: testing value {path} failed")
            continue
        if kind in ("move", "copy"):
            source_parts = _pointer(op.get("from", ""))
            value = copy.deepcopy(_resolve(doc, source_parts, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, source_parts, op.get("from", ""))
            doc = _add(doc, parts, value, path, replace=False)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path, replace=False)
        elif kind == "replace":
            _resolve(doc, parts, path)
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path, replace=True)
        elif kind == "remove":
            doc = _remove(doc, parts, path)
        else:
            raise _invalid_patch(f"the server rejected our request due to an error in our request: unexpected kind of operation {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any, path: str, replace: bool) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise _invalid_patch(f"jsonpatch: index out of range in {path!r}")
    else:
        raise _invalid_patch(f"jsonpatch: path {path!r} does not exist")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        raise _invalid_patch("jsonpatch: cannot remove the root")
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise _invalid_patch(f"jsonpatch: path {path!r} does not exist")
    return doc


# ---------------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------------

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target: Any, patch: Any, schema: Schema) -> Any:
    """Apply a strategic merge patch to ``target`` (a deep copy is returned)."""
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, schema)


def _smp_map(target: dict[str, Any], patch: dict[str, Any], schema: Schema) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != _DIRECTIVE}
    retain = patch.get(_RETAIN_KEYS)
    out = dict(target)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN_KEYS):
            continue
        if key.startswith(_SET_ORDER):
            orders[key[len(_SET_ORDER):]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVES):
            field = key[len(_DELETE_PRIMITIVES):]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        sub, _ = child_schema(schema, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(out.get(key) if isinstance(out.get(key), dict) else {}, value, sub)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _smp_list(out.get(key) if isinstance(out.get(key), list) else [], value, sub)
        else:
            out[key] = value
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _reorder(out[field], order, child_schema(schema, field)[0])
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _smp_list(target: list[Any], patch: list[Any], schema: Schema) -> list[Any]:
    strategy, merge_key = patch_strategy(schema)
    if "merge" not in strategy.split(","):
        return [v for v in copy.deepcopy(patch) if not (isinstance(v, dict) and _DIRECTIVE in v)]
    if any(isinstance(v, dict) and v.get(_DIRECTIVE) == "replace" for v in patch):
        return [v for v in copy.deepcopy(patch) if not (isinstance(v, dict) and _DIRECTIVE in v)]
    item_schema = items_schema(schema)
    if merge_key is None:
        # A set of primitives: union, keeping the target's order first.
        out = list(target)
        for value in patch:
            if value not in out:
                out.append(value)
        return out
    out = list(target)
    for item in patch:
        if not isinstance(item, dict):
            raise _invalid_patch("strategic merge patch: list items must be maps with a merge key")
        key_value = item.get(merge_key)
        position = next(
            (i for i, existing in enumerate(out) if isinstance(existing, dict) and existing.get(merge_key) == key_value),
            None,
        )
        if item.get(_DIRECTIVE) == "delete":
            if position is not None:
                del out[position]
            continue
        if position is None:
            out.append(_smp_map({}, item, item_schema))
        else:
            out[position] = _smp_map(out[position], item, item_schema)
    return out


def _reorder(values: list[Any], order: list[Any], schema: Schema) -> list[Any]:
    _, merge_key = patch_strategy(schema)

    def identity(value: Any) -> str:
        if merge_key and isinstance(value, dict):
            return json.dumps(value.get(merge_key), sort_keys=True)
        return json.dumps(value, sort_keys=True)

    rank = {identity(v): i for i, v in enumerate(order)}
    ordered = sorted(
        enumerate(values), key=lambda pair: (rank.get(identity(pair[1]), len(rank) + pair[0]))
    )
    return [v for _, v in ordered]
