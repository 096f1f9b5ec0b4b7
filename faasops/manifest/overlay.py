"""Environment overlays (``faas.<env>.yaml`` over the ``faas.yaml`` next to it) and defaults
(a function's settings over ``defaults``): one deep-merge.

Mappings merge key by key; ``workspaces`` and each workspace's ``functions`` merge entry by entry,
matched by ``name`` (an overlay entry with a new name is appended); any other list, and any
scalar, is replaced; ``null`` in the overlay deletes the key. Merged values keep the location they
were read from, so a problem in an overlay value points into the overlay file.
"""

from __future__ import annotations

from typing import Any

from faasops.manifest.yaml_source import YMap, YSeq

# Paths (in keys, "*" for any list index) whose lists merge by entry name rather than replace.
_NAMED_LISTS = {("workspaces",), ("workspaces", "*", "functions")}


def merge_overlay(base: YMap, overlay: YMap) -> YMap:
    """A new tree: ``overlay`` merged over ``base`` (neither is changed)."""
    return _merge_maps(base, overlay, ())


def merge_defaults(defaults: YMap, function: YMap) -> YMap:
    """A function's effective settings: its own merged over ``defaults`` by the same rules, so
    ``autoscaling: null`` on a function turns off autoscaling set in defaults."""
    return _merge_maps(defaults, function, ("function",))


def _merge_maps(base: YMap, overlay: YMap, path: tuple[str, ...]) -> YMap:
    merged = YMap(base.loc)
    for key, value in base.items():
        merged.put(key, value, base.key_locs[key], base.value_locs[key], base.raw.get(key))
    for key, value in overlay.items():
        if value is None:
            if key in merged:
                merged.remove(key)
            continue
        current = merged.get(key)
        if isinstance(current, YMap) and isinstance(value, YMap):
            merged.put(key, _merge_maps(current, value, path + (key,)), base.key_locs[key], base.value_locs[key], None)
            continue
        if isinstance(current, YSeq) and isinstance(value, YSeq) and path + (key,) in _NAMED_LISTS:
            value = _merge_named(current, value, path + (key,))
        else:
            value = _without_nulls(value, path + (key,))
        merged.put(key, value, overlay.key_locs[key], overlay.value_locs[key], overlay.raw.get(key))
    return merged


def _merge_named(base: YSeq, overlay: YSeq, path: tuple[str, ...]) -> YSeq:
    merged = YSeq(base.loc)
    positions: dict[str, int] = {}
    for index, entry in enumerate(base):
        merged.add(entry, base.item_locs[index], base.raw.get(index))
        name = _name_of(entry)
        if name is not None:
            positions.setdefault(name, index)
    for index, entry in enumerate(overlay):
        name = _name_of(entry)
        at = positions.get(name) if name is not None else None
        if at is None:
            merged.add(_without_nulls(entry, path + ("*",)), overlay.item_locs[index], overlay.raw.get(index))
        else:
            merged[at] = _merge_maps(merged[at], entry, path + ("*",))
    return merged


def _name_of(entry: Any) -> str | None:
    if isinstance(entry, YMap) and isinstance(entry.get("name"), str):
        return entry["name"]
    return None


def _without_nulls(value: Any, path: tuple[str, ...]) -> Any:
    # A mapping the base does not have is merged into nothing: its nulls delete nothing, and
    # should not reach validation as values either.
    if isinstance(value, YMap):
        return _merge_maps(YMap(value.loc), value, path)
    return value
