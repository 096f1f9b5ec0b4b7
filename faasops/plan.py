"""The plan: a plain, serialisable value that every renderer, the plan file and apply all read.

JSON form (``format_version`` 1) — documented in the README::

    {"format_version": 1, "project": "demo", "environment": null, "created_at": "…",
     "state_serial": 7, "summary": {"add": 1, "change": 0, "destroy": 0},
     "changes": [{"kind": "function", "address": "demo/hello", "action": "create",
                  "reasons": [], "fields": [{"path": "env.GREETING", "before": null,
                  "after": "hi", "sensitive": false}], "before": null, "after": {…}}],
     "warnings": ["…"]}

Sensitive fields carry ``null`` for ``before``/``after``: a plan never holds secret material.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

FORMAT_VERSION = 1


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


@dataclass(frozen=True)
class FieldChange:
    """One changed field, addressed by a dotted path (``resources.limits.cpu``)."""

    path: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one workspace or function.

    ``before`` is the recorded spec (None when new), ``after`` the desired spec (None when
    deleted); both are free of secret values. ``reasons`` explain non-obvious actions (drift,
    a toolchain change, why a replace is needed).
    """

    kind: str  # "workspace" | "function"
    address: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    reasons: tuple[str, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    @property
    def workspace(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.address.split("/", 1)[-1]


@dataclass(frozen=True)
class Plan:
    """The complete set of changes apply would make."""

    project: str
    environment: str | None
    created_at: str
    state_serial: int
    changes: tuple[ResourceChange, ...] = ()
    warnings: tuple[str, ...] = ()
    options: "PlanOptions" = field(default_factory=lambda: PlanOptions())
    format_version: int = FORMAT_VERSION
    # Fingerprint of the manifests and sources the plan was made from (saved plans use it).
    inputs_digest: str = ""

    @property
    def actionable(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def summary(self) -> dict[str, int]:
        """Terraform's counting: a replace adds one and destroys one."""
        add = change = destroy = 0
        for c in self.changes:
            if c.action is Action.CREATE:
                add += 1
            elif c.action is Action.UPDATE:
                change += 1
            elif c.action is Action.DELETE:
                destroy += 1
            elif c.action is Action.REPLACE:
                add += 1
                destroy += 1
        return {"add": add, "change": change, "destroy": destroy}

    @property
    def destroy(self) -> bool:
        return self.options.destroy

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["options"] = self.options.as_dict()
        data["summary"] = self.summary()
        for change in data["changes"]:
            change["action"] = change["action"].value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported plan format_version {data.get('format_version')!r}")
        changes = tuple(
            ResourceChange(
                kind=c["kind"],
                address=c["address"],
                action=Action(c["action"]),
                fields=tuple(FieldChange(**f) for f in c["fields"]),
                reasons=tuple(c["reasons"]),
                before=c["before"],
                after=c["after"],
            )
            for c in data["changes"]
        )
        return cls(
            project=data["project"],
            environment=data["environment"],
            created_at=data["created_at"],
            state_serial=data["state_serial"],
            changes=changes,
            warnings=tuple(data.get("warnings", ())),
            options=PlanOptions.from_dict(data.get("options", {})),
            inputs_digest=data.get("inputs_digest", ""),
        )


@dataclass(frozen=True)
class Selection:
    """Which resources a plan covers.

    ``targets`` (``-t``) and ``excludes`` (``--exclude``) hold ``WS`` or ``WS/FN`` patterns; empty
    ``targets`` means everything. ``changed`` (``--changed-since``) is the set of function
    addresses whose source or manifest entry changed, or None when not used.
    """

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    changed: tuple[str, ...] | None = None

    def covers(self, address: str) -> bool:
        """Whether the plan looks at ``address``. A targeted function also covers its workspace,
        which must exist before the function: to create or update it, never to delete it (see
        :meth:`covers_itself`)."""
        return self._covers(address, workspace_of_target=True)

    def covers_itself(self, address: str) -> bool:
        """Whether the selection covers ``address`` itself, not only as the workspace of a
        targeted function: what a plan may delete. ``-t WS/FN`` covers ``WS`` but not
        ``WS`` itself, so WS (its namespace, with every other function in it) is never removed
        for it. (``--changed-since`` names functions only: a workspace counts as changed when
        one of its functions did; the plan still deletes a workspace only with all of its
        functions, see :func:`faasops.diff.diff_project`.)"""
        return self._covers(address, workspace_of_target=False)

    def _covers(self, address: str, workspace_of_target: bool) -> bool:
        def matches(pattern: str) -> bool:
            return address == pattern or address.startswith(pattern + "/")

        def needed_by(pattern: str) -> bool:
            return matches(pattern) or pattern.startswith(address + "/")

        if any(matches(p) for p in self.excludes):
            return False
        if self.changed is not None and not any(needed_by(a) for a in self.changed):
            return False
        return not self.targets or any((needed_by if workspace_of_target else matches)(p) for p in self.targets)

    def as_dict(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "excludes": list(self.excludes),
                "changed": None if self.changed is None else list(self.changed)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Selection":
        changed = data.get("changed")
        return cls(tuple(data.get("targets", ())), tuple(data.get("excludes", ())),
                   None if changed is None else tuple(changed))


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    destroy: bool = False
    refresh: bool = True  # observe live objects for drift
    selection: Selection = field(default_factory=Selection)

    def as_dict(self) -> dict[str, Any]:
        return {"prune": self.prune, "destroy": self.destroy, "refresh": self.refresh,
                "selection": self.selection.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlanOptions":
        return cls(bool(data.get("prune")), bool(data.get("destroy")), bool(data.get("refresh", True)),
                   Selection.from_dict(data.get("selection", {})))
