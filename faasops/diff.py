"""Comparing desired and actual state. Pure functions: nothing here reads or writes anything."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterable

from faasops.errors import FaasopsError
from faasops.model import Function, Project, Workspace
from faasops.plan import Action, FieldChange, PlanOptions, ResourceChange, Selection
from faasops.providers import ActualState, LiveObject

# Fields whose change can't be made in place: the object must be deleted and created again.
WORKSPACE_REPLACE_FIELDS = frozenset({"namespace"})
# Fields that name secret material (references only, but shown as "(sensitive)").
SENSITIVE_FIELDS = frozenset({"secrets"})
# Changing these alone changes nothing live (only what faasops records).
RECORD_ONLY_FIELDS = frozenset({"protect", "source"})


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay whole (they change as a unit)."""
    if isinstance(value, dict):
        if not value and prefix:
            return {prefix: value}
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


#: A recorded spec's note that `faasops rollback` deployed an earlier artifact (see faasops.rollback).
ROLLBACK_KEY = "rollback"


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level differences between two specs; sensitive fields lose their values."""
    if before == after:  # most of a large plan: compared in C, nothing flattened
        return ()
    flat_before, flat_after = flatten(before), flatten(after)
    changes = []
    for path in sorted(flat_before.keys() | flat_after.keys()):
        old, new = flat_before.get(path), flat_after.get(path)
        if old == new or (old in (None, [], {}) and new in (None, [], {})):
            continue
        if path.split(".", 1)[0] in SENSITIVE_FIELDS:
            changes.append(FieldChange(path, None, None, sensitive=True))
        else:
            changes.append(FieldChange(path, old, new))
    return tuple(changes)


def manifest_drift(desired: Iterable[dict[str, Any]], live: Iterable[dict[str, Any]]) -> list[str]:
    """Human-readable drift between the manifests faasops would apply and what is live.

    Only fields faasops sets are compared (a subset match), so fields added by controllers or
    defaulting don't count as drift. A live object that is no longer rendered (an autoscaler
    left over after autoscaling was switched off) is drift too.
    """
    key = lambda m: (m.get("kind"), m.get("metadata", {}).get("name"))  # noqa: E731
    by_key = {key(m): m for m in live}
    rendered = set()
    problems = []
    for manifest in desired:
        kind, name = key(manifest)
        rendered.add((kind, name))
        found = by_key.get((kind, name))
        if found is None:
            problems.append(f"{kind} {name} is missing from the cluster")
            continue
        want_fields, live_fields = _comparable(manifest), _comparable(found)
        if _holds(live_fields, want_fields):
            continue
        have_fields = flatten(live_fields)
        for path, want in flatten(want_fields).items():
            have = have_fields.get(path)
            if have != want:
                problems.append(f"{kind} {name}: {path} is {have!r}, want {want!r}")
    problems += [f"{kind} {name} is live but no longer rendered" for kind, name in by_key if (kind, name) not in rendered]
    return problems


def live_fingerprint(live: Iterable[dict[str, Any]]) -> str:
    """A digest of a function's live objects, of the fields drift is judged on."""
    comparable = sorted(json.dumps(_comparable(m), sort_keys=True, separators=(",", ":"), default=str) for m in live)
    return "sha256:" + hashlib.sha256("\n".join(comparable).encode()).hexdigest()


def deployed_fingerprint(render_digest: str, live_fingerprint: str) -> str:
    """What a function's record keeps of its last deploy: the digest of what was rendered and
    of the objects as live right after (:func:`live_fingerprint`). A plan that finds the same
    again knows, without rendering, that there is no drift: the live objects are exactly what
    that deploy left, and the rendered manifests are the ones it applied."""
    return "sha256:" + hashlib.sha256(f"{render_digest}\n{live_fingerprint}".encode()).hexdigest()


def _holds(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether ``have`` holds every field of ``want`` with the same value: a quick structural
    check that is only ever True when comparing the flattened fields finds nothing."""
    for key, value in want.items():
        found = have.get(key)
        if isinstance(value, dict) and value:
            if not isinstance(found, dict) or not _holds(found, value):
                return False
        elif found != value or key not in have:
            return False
    return True


def _comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k in ("metadata", "spec")} | {
        "metadata": {
            k: v
            for k, v in manifest.get("metadata", {}).items()
            if k in ("name", "namespace", "labels", "annotations")
        }
    }


def diff_project(
    project: Project,
    actual: ActualState,
    desired_function_specs: dict[str, dict[str, Any]],
    live: dict[str, LiveObject] | None,
    render: Callable[[Function, str], list[dict[str, Any]]] | None,
    options: PlanOptions,
    render_digest: Callable[[Function, str], str] | None = None,
) -> tuple[list[ResourceChange], list[str]]:
    """The changes that take ``actual`` to ``project``, and warnings (protected or unpruned
    resources kept).

    ``desired_function_specs`` maps each function address to its full desired spec (manifest
    spec plus ``source_hash`` and ``toolchain``). ``live`` (optional) is what the deployer
    observes, and ``render`` renders a function's manifests for an artifact, for drift checks;
    ``render_digest`` (optional) digests them more cheaply, so that functions whose record's
    ``deployed`` fingerprint still matches are not rendered at all.
    """
    changes: list[ResourceChange] = []
    warnings: list[str] = []
    selection = options.selection
    desired_ws = {} if options.destroy else {ws.name: ws for ws in project.workspaces}
    functions_by_ws: dict[str, list[Function]] = {
        name: list(ws.functions) for name, ws in desired_ws.items()
    }

    # A workspace is one namespace: deleting or replacing it takes every function in it along.
    recorded_by_ws: dict[str, list[str]] = {}
    for address, record in actual.functions.items():
        recorded_by_ws.setdefault(record.workspace, []).append(address)

    for name, ws in desired_ws.items():
        if not selection.covers(name):
            continue
        change = _diff_workspace(ws, actual)
        if change.action is Action.REPLACE:
            _check_replace_covers_all(change, recorded_by_ws.get(name, []), selection)
        changes.append(change)
    # Sets, not scans of `changes`: a scan per function made 10,000-function plans quadratic.
    replaced_ws = {c.address for c in changes if c.action is Action.REPLACE}
    declared_names = {name: {f.name for f in functions} for name, functions in functions_by_ws.items()}

    for name, ws in desired_ws.items():
        for function in functions_by_ws[name]:
            if not selection.covers(function.address):
                continue
            spec = desired_function_specs[function.address]
            record = actual.functions.get(function.address)
            workspace_replaced = name in replaced_ws
            if record is None:
                changes.append(ResourceChange("function", function.address, Action.CREATE, field_changes({}, spec), after=spec))
                continue
            rolled_back = record.spec.get(ROLLBACK_KEY)
            recorded = {k: v for k, v in record.spec.items() if k != ROLLBACK_KEY} if rolled_back else record.spec
            fields = field_changes(recorded, spec)
            reasons: list[str] = []
            if workspace_replaced:
                action = Action.REPLACE
                reasons.append(f"workspace {name} moves to another namespace")
            elif fields:
                action = Action.UPDATE
                if rolled_back:
                    reasons.append(f"rolled back to {rolled_back}: the deployed version differs from the manifests "
                                   "until their source is reverted; apply deploys the manifests' version")
                if any(f.path == "toolchain" for f in fields):
                    reasons.append("the build toolchain changed: the function is rebuilt")
            else:
                action = Action.NOOP
            if action is Action.NOOP and options.refresh and live is not None and render is not None:
                observed = live.get(function.address)
                as_deployed = (
                    record.deployed and observed is not None and render_digest is not None
                    and deployed_fingerprint(render_digest(function, record.artifact), observed.fingerprint) == record.deployed
                )
                drift = [] if as_deployed else manifest_drift(
                    render(function, record.artifact), observed.manifests if observed else ()
                )
                if drift:
                    action = Action.UPDATE
                    reasons.extend(f"drift: {d}" for d in drift)
            changes.append(
                ResourceChange("function", function.address, action, fields, tuple(reasons), record.spec, spec)
            )

    # Recorded but no longer declared.
    for address, record in sorted(actual.functions.items()):
        ws_name = record.workspace
        declared = ws_name in desired_ws and record.name in declared_names[ws_name]
        if declared or not selection.covers(address):
            continue
        ws_record = actual.workspaces.get(ws_name)
        if ws_record is not None and ws_record.spec.get("protect") and ws_name not in desired_ws:
            # A protected workspace protects everything in it.
            warnings.append(f"function {address} is kept: its workspace {ws_name} is protected")
            changes.append(ResourceChange("function", address, Action.NOOP, before=record.spec, after=record.spec))
            continue
        changes.append(_removal("function", address, record.spec, options, warnings))
    deleted = {c.address for c in changes if c.kind == "function" and c.action is Action.DELETE}
    for name, record in sorted(actual.workspaces.items()):
        if name in desired_ws or not selection.covers_itself(name):
            continue  # (`-t WS/FN` covers WS only to deploy FN into it: WS and its other functions stay)
        # Functions the plan keeps (protected, not pruned, excluded, not selected) keep their
        # namespace: deleting it would take them down while the state still lists them.
        kept = sorted(a for a in recorded_by_ws.get(name, []) if a not in deleted)
        if kept:
            warnings.append(f"workspace {name} is kept: it still holds functions that are kept ({_some(kept)})")
            changes.append(ResourceChange("workspace", name, Action.NOOP, before=record.spec, after=record.spec))
            continue
        changes.append(_removal("workspace", name, record.spec, options, warnings))
    return changes, warnings


def _check_replace_covers_all(change: ResourceChange, recorded: list[str], selection: Selection) -> None:
    """Replacing a workspace deletes its old namespace with every function in it, and only the
    selected ones would be deployed again: refuse unless the selection holds all of them."""
    left_out = sorted(a for a in recorded if not selection.covers(a))
    if left_out:
        before, after = (change.before or {}).get("namespace"), (change.after or {}).get("namespace")
        raise FaasopsError(
            f"workspace {change.address} moves from namespace {before!r} to {after!r}, which deletes the old "
            f"namespace with every function in it, but the selection leaves out {_some(left_out)}: "
            f"apply the whole workspace (-t {change.address}, without --exclude or --changed-since) to move it"
        )


def _some(addresses: list[str], shown: int = 3) -> str:
    more = len(addresses) - shown
    return ", ".join(addresses[:shown]) + (f" and {more} more" if more > 0 else "")


def _diff_workspace(ws: Workspace, actual: ActualState) -> ResourceChange:
    spec = ws.spec()
    record = actual.workspaces.get(ws.name)
    if record is None:
        return ResourceChange("workspace", ws.name, Action.CREATE, field_changes({}, spec), after=spec)
    fields = field_changes(record.spec, spec)
    if any(f.path in WORKSPACE_REPLACE_FIELDS for f in fields):
        return ResourceChange(
            "workspace", ws.name, Action.REPLACE, fields,
            ("the namespace can't change in place: functions are redeployed to the new one",),
            record.spec, spec,
        )
    action = Action.UPDATE if fields else Action.NOOP
    return ResourceChange("workspace", ws.name, action, fields, (), record.spec, spec)


def _removal(kind: str, address: str, spec: dict[str, Any], options: PlanOptions, warnings: list[str]) -> ResourceChange:
    if spec.get("protect"):
        warnings.append(f"{kind} {address} is protected (protect: true) and is kept")
        return ResourceChange(kind, address, Action.NOOP, before=spec, after=spec)
    if not (options.prune or options.destroy):
        warnings.append(
            f"{kind} {address} is no longer declared; it is kept (run with --prune to delete it)"
        )
        return ResourceChange(kind, address, Action.NOOP, before=spec, after=spec)
    return ResourceChange(kind, address, Action.DELETE, field_changes(spec, {}), before=spec)
