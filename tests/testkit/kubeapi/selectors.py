"""Label and field selectors with the grammar and error messages of ``k8s.io/apimachinery``.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a`` (exists),
``!a`` (does not exist), ``a>1``/``a<1`` (numeric), comma-joined (AND).
Field selectors: ``path=value``, ``path==value``, ``path!=value``, comma-joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    """One label requirement; ``op`` is one of =, !=, in, notin, exists, !, gt, lt."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            # Like the real server: a missing key satisfies "!=".
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            if not present:
                return False
            try:
                number = int(value or "")
            except ValueError:
                return False
            bound = int(self.values[0])
            return number > bound if self.op == "gt" else number < bound
        return False  # pragma: no cover - parse() only builds the ops above


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( … )`` value sets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> None:
    if not key or len(key) > 317 or not _KEY_RE.match(key):
        raise bad_request(
            f"unable to parse requirement: invalid label key \"{key}\": name part must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise bad_request(
            f"unable to parse requirement: values[0][label]: Invalid value: \"{value}\": a valid "
            "label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character"
        )


_SET_RE = re.compile(r"^\s*(?P<key>\S+?)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^=!<>\s]*)\s*$")


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector string; raises a 400 ``ApiError`` on bad syntax."""
    if not text or not text.strip():
        return []
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        match = _SET_RE.match(part)
        if match:
            key = match["key"]
            _check_key(key)
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip() != "")
            for value in values:
                _check_value(value)
            if not values and match["op"] == "in":
                raise bad_request("unable to parse requirement: for 'in', 'notin' operators, values set can't be empty")
            requirements.append(Requirement(key, match["op"], values))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key)
            requirements.append(Requirement(key, "!"))
            continue
        match = _CMP_RE.match(part)
        if match:
            key, op, value = match["key"], match["op"], match["value"]
            _check_key(key)
            if op in (">", "<"):
                if not value.lstrip("-").isdigit():
                    raise bad_request(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                requirements.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                continue
            _check_value(value)
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            continue
        key = part
        _check_key(key)
        requirements.append(Requirement(key, "exists"))
    return requirements


def labels_match(requirements: list[Requirement], obj: dict[str, Any]) -> bool:
    """True when every requirement holds for the object's ``metadata.labels``."""
    if not requirements:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(req.matches(labels) for req in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    """``path`` (dotted, e.g. ``metadata.name``) compared with ``value`` by ``=`` or ``!=``."""

    path: str
    op: str
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        current: Any = obj
        for segment in self.path.split("."):
            current = current.get(segment) if isinstance(current, dict) else None
        if current is None:
            text = ""
        elif isinstance(current, bool):
            text = "true" if current else "false"
        else:
            text = str(current)
        return (text == self.value) if self.op == "=" else (text != self.value)


def parse_field_selector(
    text: str | None, supported: Callable[[str], bool], unsupported_message: Callable[[str], str]
) -> list[FieldRequirement]:
    """Parse a field selector; ``supported(path)`` says which paths the resource indexes."""
    if not text or not text.strip():
        return []
    requirements: list[FieldRequirement] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "!=" in part:
            path, value = part.split("!=", 1)
            op = "!="
        elif "==" in part:
            path, value = part.split("==", 1)
            op = "="
        elif "=" in part:
            path, value = part.split("=", 1)
            op = "="
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path = path.strip()
        if not supported(path):
            raise bad_request(unsupported_message(path))
        requirements.append(FieldRequirement(path, op, value.strip()))
    return requirements


def fields_match(requirements: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all(req.matches(obj) for req in requirements)


__all__ = [
    "FieldRequirement",
    "Requirement",
    "fields_match",
    "labels_match",
    "parse_field_selector",
    "parse_label_selector",
]
