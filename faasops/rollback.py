"""Rollback: redeploy an earlier artifact of a function from the recorded history, without
rebuilding.

The history is the task log of the state: every apply that deployed a function recorded its
``snapshot`` (the source digest), ``push`` (the image reference) and ``deploy`` tasks under one
run id (the executor's task messages: the digest, the image reference). A rollback renders the function's manifests for the chosen earlier image, deploys them
through the project's deployer, and records the function as running that image built from that
source: its recorded spec carries the earlier ``source_hash`` and a ``rollback`` note (the
image and when). So the next plan shows the function to update, with the reason "rolled back to
…", until the source in the manifests is the rolled-back one again (a revert): then it is a
no-op. ``faasops apply`` meanwhile deploys the manifests' source again (a roll forward).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from faasops.diff import ROLLBACK_KEY, deployed_fingerprint, live_fingerprint
from faasops.errors import FaasopsError
from faasops.executor import utcnow
from faasops.providers import FunctionRecord, Task

if TYPE_CHECKING:
    from faasops.engine import Engine
    from faasops.providers import StateBackend

HISTORY_TASKS = 100_000  # tasks read per workspace to find a function's deploys
COLLECTED_KIND = "gc"  # the task `faasops gc` records per function: the references it removed
_ALREADY_PRESENT = " (already present)"


@dataclass(frozen=True)
class Deployed:
    """One artifact a run built (or reused), pushed and deployed."""

    reference: str
    source_hash: str
    deployed_at: str
    run_id: str


@dataclass(frozen=True)
class RollbackResult:
    address: str
    before: str
    after: str


def artifact_history(state: StateBackend, workspace: str, function: str) -> list[Deployed]:
    """The distinct artifacts runs deployed for ``workspace/function``, newest first."""
    return history_of(state.list_tasks(workspace, limit=HISTORY_TASKS), function)


def history_of(tasks: Iterable[Task], function: str) -> list[Deployed]:
    """:func:`artifact_history` from the tasks of the function's workspace: the distinct
    artifacts deployed, newest first, less those ``faasops gc`` removed since (a completed
    :data:`COLLECTED_KIND` task lists them, space-separated), which can no longer be run."""
    runs: dict[str, dict[str, Task]] = {}
    collected: dict[str, str] = {}  # reference → when gc removed it
    for task in tasks:
        if task.function != function or task.status != "completed":
            continue
        if task.kind == COLLECTED_KIND:
            for reference in task.message.split():
                collected[reference] = max(collected.get(reference, ""), task.updated_at)
        elif task.kind in ("snapshot", "push", "deploy"):
            runs.setdefault(task.run_id, {}).setdefault(task.kind, task)
    deployed = [
        Deployed(pushed_reference(steps["push"]), steps["snapshot"].message,
                 steps["deploy"].updated_at, run_id)
        for run_id, steps in runs.items() if {"snapshot", "push", "deploy"} <= steps.keys()
    ]
    history: list[Deployed] = []
    for entry in sorted(deployed, key=lambda d: d.deployed_at, reverse=True):
        if all(entry.reference != seen.reference for seen in history):
            history.append(entry)
    # Deployed again after gc removed it: pushed again, so it is there.
    return [entry for entry in history if collected.get(entry.reference, "") <= entry.deployed_at]


def pushed_reference(task: Task) -> str:
    """The image reference a ``push`` task's message records."""
    return task.message.removesuffix(_ALREADY_PRESENT)


def choose(history: list[Deployed], current: str, to: str | None, steps: int) -> Deployed:
    """The artifact to roll back to: the one whose digest starts with ``to``, else the one
    ``steps`` deploys before the current one."""
    if to:
        wanted = to.removeprefix("sha256:")
        found = [d for d in history if d.reference.rpartition("@sha256:")[2].startswith(wanted)]
        if len(found) != 1:
            known = ", ".join(d.reference.rpartition("@")[2][:19] for d in history) or "none"
            what = "no recorded artifact" if not found else "more than one recorded artifact"
            raise FaasopsError(f"{what} has the digest {to} (recorded: {known})")
        return found[0]
    position = next((i for i, d in enumerate(history) if d.reference == current), None)
    if position is None:
        raise FaasopsError(f"the running artifact {current} is not in the recorded history; name one with --to DIGEST")
    if position + steps >= len(history):
        raise FaasopsError(f"only {len(history) - position - 1} earlier artifact(s) are recorded; cannot go back {steps}")
    return history[position + steps]


def rollback(engine: Engine, address: str, to: str | None = None, steps: int = 1) -> RollbackResult:
    """Redeploy an earlier artifact of ``address`` (``WS/FN``) and record it. The caller holds
    the state lock."""
    project, providers, state = engine.project, engine.providers, engine.state
    workspace_name, _, name = address.partition("/")
    workspace = project.workspace(workspace_name)
    function = next((f for f in workspace.functions if f.name == name), None) if workspace else None
    if function is None:
        raise FaasopsError(f"{address} is not declared in the manifests")
    record = state.read([workspace_name]).functions.get(address)
    if record is None:
        raise FaasopsError(f"{address} is not deployed: nothing to roll back")
    target = choose(artifact_history(state, workspace_name, name), record.artifact, to, steps)
    if target.reference == record.artifact:
        return RollbackResult(address, record.artifact, record.artifact)
    now = utcnow()
    task = Task(id=uuid.uuid4().hex, workspace=workspace_name, function=name, kind="rollback", status="running",
                created_at=now, updated_at=now, message=f"{record.artifact} → {target.reference}",
                run_id=uuid.uuid4().hex[:12])
    state.put_task(task)
    try:
        manifests = providers.scaffolder.render(project, function, target.reference)
        live = providers.deployer.deploy(project, function, manifests)
        digest = getattr(providers.scaffolder, "render_digest", None)
        deployed = deployed_fingerprint(digest(project, function, target.reference), live_fingerprint(live)) \
            if digest is not None and isinstance(live, list) else ""
        spec = {**record.spec, "source_hash": target.source_hash,
                ROLLBACK_KEY: f"{target.reference} (faasops rollback at {now})"}
        state.put_function(FunctionRecord(workspace_name, name, spec, target.reference, utcnow(), deployed))
    except FaasopsError as exc:
        state.put_task(Task(**{**task.__dict__, "status": "failed", "updated_at": utcnow(), "message": str(exc)}))
        raise
    # A deployer may say what its deploy did (the gitops one: its commit).
    note = getattr(providers.deployer, "deploy_note", None)
    said = note(address) if note is not None else ""
    message = f"{task.message}; {said}" if said else task.message
    state.put_task(Task(**{**task.__dict__, "status": "completed", "updated_at": utcnow(), "message": message}))
    return RollbackResult(address, record.artifact, target.reference)
