"""Round-trip edits of ``faas.yaml``: the API changes one entry and leaves the rest of the file
— comments, key order, quoting, indentation — as the people who wrote it left it.

:mod:`ruamel.yaml`'s round-trip mode does the work; the file's indentation is detected on
load, so a file indented ``  - name:`` keeps that style for the entries the API adds.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from faasops.errors import FaasopsError


class EntryNotFound(FaasopsError):
    """The workspace or function is not declared in the manifest."""


class EntryExists(FaasopsError):
    """A workspace or function with that name is declared already."""


class ManifestDocument:
    """One ``faas.yaml`` loaded for a round-trip edit; :meth:`save` writes it back."""

    def __init__(self, path: Path):
        self.path = path
        text = path.read_text(encoding="utf-8")
        _, sequence, offset = load_yaml_guess_indent(text)
        self._yaml = YAML(typ="rt")
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096  # never re-wrap long lines someone wrote on one line
        self._yaml.indent(mapping=_mapping_indent(text), sequence=sequence or 2, offset=offset or 0)
        self.data: CommentedMap = self._yaml.load(text)
        if self.data is None:
            self.data = CommentedMap()

    def save(self) -> None:
        out = io.StringIO()
        self._yaml.dump(self.data, out)
        self.path.write_text(out.getvalue(), encoding="utf-8")

    # ------------------------------------------------------------ workspaces

    def _workspaces(self, create: bool = False) -> CommentedSeq:
        found = self.data.get("workspaces")
        if found is None:
            if not create:
                return CommentedSeq()
            found = self.data["workspaces"] = CommentedSeq()
        return found

    def workspace(self, name: str) -> CommentedMap:
        for entry in self._workspaces():
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
        raise EntryNotFound(f"workspace '{name}' not found")

    def add_workspace(self, entry: dict[str, Any]) -> None:
        if any(isinstance(e, dict) and e.get("name") == entry["name"] for e in self._workspaces()):
            raise EntryExists(f"workspace '{entry['name']}' exists already")
        self._workspaces(create=True).append(_commented(entry))

    def update_workspace(self, name: str, patch: dict[str, Any]) -> None:
        merge_patch(self.workspace(name), patch)

    def remove_workspace(self, name: str) -> None:
        seq = self._workspaces()
        seq.remove(self.workspace(name))

    # ------------------------------------------------------------ functions

    def _functions(self, workspace: str, create: bool = False) -> CommentedSeq:
        ws = self.workspace(workspace)
        found = ws.get("functions")
        if found is None:
            if not create:
                return CommentedSeq()
            found = ws["functions"] = CommentedSeq()
        return found

    def function(self, workspace: str, name: str) -> CommentedMap:
        for entry in self._functions(workspace):
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
        raise EntryNotFound(f"function '{workspace}/{name}' not found")

    def add_function(self, workspace: str, entry: dict[str, Any]) -> None:
        if any(isinstance(e, dict) and e.get("name") == entry["name"] for e in self._functions(workspace)):
            raise EntryExists(f"function '{workspace}/{entry['name']}' exists already")
        self._functions(workspace, create=True).append(_commented(entry))

    def update_function(self, workspace: str, name: str, patch: dict[str, Any]) -> None:
        merge_patch(self.function(workspace, name), patch)

    def remove_function(self, workspace: str, name: str) -> None:
        self._functions(workspace).remove(self.function(workspace, name))


def _mapping_indent(text: str) -> int:
    """How far a nested mapping is indented under its key (``providers:`` → ``  state:``);
    2 when the file has no nested mapping to tell."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:]):
        stripped = line.lstrip(" -")
        if stripped.endswith(":") and not following.lstrip().startswith("-"):
            column = len(line) - len(stripped)
            step = (len(following) - len(following.lstrip())) - column
            if step > 0:
                return step
    return 2


def merge_patch(target: CommentedMap, patch: dict[str, Any]) -> None:
    """Apply a JSON merge patch (RFC 7396) in place: ``null`` removes a key, a mapping merges
    into a mapping, anything else replaces. Untouched keys keep their comments and places."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = _commented(value)


def _commented(value: Any) -> Any:
    """Plain JSON data as ruamel's round-trip types (so they dump in block style). A string
    that a YAML 1.1 reader — faasops' own — would take for something else (``yes``, ``1.0``,
    ``null``, ``0o7``) is quoted, so the manifest says what the request said."""
    if isinstance(value, str):
        try:
            same = yaml.safe_load(value) == value
        except yaml.YAMLError:
            same = False
        return value if same and "\n" not in value else DoubleQuotedScalarString(value)
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v)
        return out
    if isinstance(value, list):
        return CommentedSeq(_commented(v) for v in value)
    return value
