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
    destroy: bool = False
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
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
            destroy=data.get("destroy", False),
            inputs_digest=data.get("inputs_digest", ""),
        )


@dataclass(frozen=True)
class Selection:
    """Which resources a plan covers (``-t`` / ``--exclude``); empty ``targets`` means all."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def covers(self, address: str) -> bool:
        def matches(pattern: str) -> bool:
            return address == pattern or address.startswith(pattern + "/")

        if any(matches(p) for p in self.excludes):
            return False
        if not self.targets:
            return True
        # A function target also covers its workspace (it must exist before the function).
        return any(matches(p) or p.startswith(address + "/") for p in self.targets)


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    destroy: bool = False
    refresh: bool = True  # observe live objects for drift
    selection: Selection = field(default_factory=Selection)
