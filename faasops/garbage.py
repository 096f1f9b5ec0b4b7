"""Garbage collection: remove the artifacts no recorded function runs or may roll back to.

Every apply leaves a source archive, a build, an image and (locally) a compiled component
behind; nothing reused them once the function moved on. ``faasops gc`` works out what must stay
from the state and its task history, then asks each provider that keeps artifacts (the
:class:`~faasops.providers.StoredArtifacts` capability of the source store, builder and
registry) what else it holds for this project, and removes that.

What stays, per recorded function: the artifact it runs and the ``keep`` artifacts before it in
its deploy history — what ``faasops rollback --steps 1..keep`` can reach
(:func:`faasops.rollback.artifact_history`) — and, after a rollback, those deployed after the
running one (what ``apply`` rolls forward to), with their source archives, builds and compiled
components. Functions the state no longer records (destroyed, pruned) keep nothing.

Safety:

* gc holds the state lock from reading the state to the last removal, so no apply of this
  project runs meanwhile: an apply pushes an image before it records it, and a gc between the
  two would remove it. (A grace period by age would not be enough: a cache hit reuses an old
  build, and a push that finds its digest present writes nothing newer.) ``--dry-run`` only
  reads and takes no lock.
* Providers only consider what is this project's for sure (its S3 prefix, its repositories,
  caches inside its ``.faasops``); stores shared with other projects are left alone and named
  in the report.
* A completed ``gc`` task per function lists the references removed, so rollback's history no
  longer offers them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from faasops.executor import utcnow
from faasops.providers import Garbage, Retained, StoredArtifacts, StoredItem, Task
from faasops.rollback import COLLECTED_KIND, HISTORY_TASKS, history_of, pushed_reference

if TYPE_CHECKING:
    from faasops.engine import Engine
    from faasops.providers import StateBackend

_SLOTS = ("sources", "builder", "registry")  # the providers that keep artifacts


@dataclass(frozen=True)
class KindTotal:
    count: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class GcReport:
    """What gc removed (or with ``dry_run`` would remove), per store and per kind."""

    dry_run: bool
    keep: int | None  # None: every recorded function's whole history (destroy --purge)
    stores: tuple[Garbage, ...] = ()
    kept: int = 0  # artifacts retained
    unsupported: tuple[str, ...] = field(default=())  # slots whose provider cannot collect

    def totals(self) -> dict[str, KindTotal]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for store in self.stores:
            for item in store.items:
                totals[item.kind][0] += 1
                totals[item.kind][1] += item.size
        return {kind: KindTotal(*totals[kind]) for kind in sorted(totals)}

    @property
    def bytes(self) -> int:
        return sum(item.size for store in self.stores for item in store.items)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "keep": self.keep,
            "kept_artifacts": self.kept,
            "bytes": self.bytes,
            "kinds": {kind: {"count": t.count, "bytes": t.bytes} for kind, t in self.totals().items()},
            "stores": [
                {"store": g.store, "notes": list(g.notes),
                 "items": [{"kind": i.kind, "name": i.name, "bytes": i.size} for i in g.items]}
                for g in self.stores
            ],
            "unsupported": list(self.unsupported),
        }


def retained(state: StateBackend, keep: int | None, purge: bool = False) -> Retained:
    """What must stay: per recorded function its running artifact, the ``keep`` before it in its
    history (every one with ``keep=None``) and any deployed after it, with their sources; and
    every reference the history records at all (``Retained.recorded``)."""
    actual = state.read()
    tasks = state.list_tasks(limit=HISTORY_TASKS)
    by_workspace: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_workspace[task.workspace].append(task)
    artifacts: set[str] = set()
    sources: set[str] = set()
    for record in actual.functions.values():
        artifacts.add(record.artifact)
        if record.spec.get("source_hash"):
            sources.add(record.spec["source_hash"])
        history = history_of(by_workspace[record.workspace], record.name)
        position = next((i for i, d in enumerate(history) if d.reference == record.artifact), None)
        # Not in the history (recorded before histories were kept): the newest ones stand in.
        start = position if position is not None else 0
        # Those deployed after the running one (it was rolled back) stay too: `apply` of the
        # manifests rolls forward to them.
        window = history if keep is None else history[:start + keep + 1]
        for entry in window:
            artifacts.add(entry.reference)
            sources.add(entry.source_hash)
    recorded = {pushed_reference(t) for t in tasks if t.kind == "push" and t.status == "completed"}
    return Retained(frozenset(artifacts), frozenset(sources), frozenset(recorded | artifacts), purge)


def collect_garbage(engine: Engine, keep: int | None, *, dry_run: bool = False,
                    purge: bool = False) -> GcReport:
    """Find (and unless ``dry_run`` remove) what no recorded function keeps. Without
    ``dry_run`` the caller holds the state lock."""
    state = engine.state
    keeping = retained(state, keep, purge)
    stores: list[Garbage] = []
    unsupported: list[str] = []
    for slot in _SLOTS:
        provider = getattr(engine.providers, slot)
        if not isinstance(provider, StoredArtifacts):
            unsupported.append(f"{slot} ({engine.project.provider(slot).type})")
            continue
        found = provider.garbage(keeping)
        stores.append(found if dry_run or not found.items else _collected(provider, found))
    report = GcReport(dry_run, keep, tuple(stores), len(keeping.artifacts), tuple(unsupported))
    if not dry_run:
        _record(state, report, keeping)
    return report


def _collected(provider: StoredArtifacts, found: Garbage) -> Garbage:
    removed = provider.collect(found)
    # The provider's notes on what it left alone stay in the report.
    return Garbage(found.store, removed.items, tuple(dict.fromkeys(found.notes + removed.notes)))


def _record(state: StateBackend, report: GcReport, keeping: Retained) -> None:
    """One completed ``gc`` task per function whose images went, listing their references, so
    rollback stops offering them (:func:`faasops.rollback.history_of`)."""
    removed_digests = {item.name.rpartition("@")[2] for store in report.stores for item in store.items
                       if item.kind == "image"}
    if not removed_digests:
        return
    by_function: dict[tuple[str, str], list[str]] = defaultdict(list)
    for task in state.list_tasks(limit=HISTORY_TASKS):
        if task.kind != "push" or task.status != "completed" or not task.function:
            continue
        reference = pushed_reference(task)
        if reference.rpartition("@")[2] in removed_digests and reference not in keeping.artifacts:
            refs = by_function[(task.workspace, task.function)]
            if reference not in refs:
                refs.append(reference)
    now = utcnow()
    run_id = uuid.uuid4().hex[:12]
    for (workspace, function), refs in sorted(by_function.items()):
        state.put_task(Task(id=uuid.uuid4().hex, workspace=workspace, function=function, kind=COLLECTED_KIND,
                            status="completed", created_at=now, updated_at=now, message=" ".join(sorted(refs)),
                            run_id=run_id))


def human_bytes(size: int) -> str:
    """``1.2 MB`` (decimal units, as ``du --si`` and registries show them)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def render_text(report: GcReport) -> str:
    """The report for people: one line per store and kind, a total, and what was left alone."""
    verb = "Would free" if report.dry_run else "Freed"
    kept = "every recorded artifact" if report.keep is None else f"the running artifact and {report.keep} before it"
    lines = [f"Kept {report.kept} artifact(s): per recorded function {kept}."]
    for store in report.stores:
        per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for item in store.items:
            per_kind[item.kind][0] += 1
            per_kind[item.kind][1] += item.size
        what = ", ".join(f"{n} {kind}(s) ({human_bytes(b)})" for kind, (n, b) in sorted(per_kind.items())) or "nothing"
        lines.append(f"  {store.store}: {what}")
        lines += [f"    note: {note}" for note in store.notes]
    for slot in report.unsupported:
        lines.append(f"  {slot}: this provider cannot list what it stores; left alone")
    lines.append(f"{verb} {human_bytes(report.bytes)}.")
    return "\n".join(lines) + "\n"
