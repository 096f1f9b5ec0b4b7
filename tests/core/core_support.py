"""What the in-process core tests share (a module name no other test directory uses)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faasops.conformance.fakes import memory_plugin_manager
from faasops.conformance.samples import sample_function, sample_project, sample_workspace
from faasops.engine import Engine
from faasops.executor import ApplyResult, ProviderSet
from faasops.model import Function, Project, Workspace
from faasops.plan import Plan, PlanOptions, Selection
from faasops.progress import PlainReporter


@dataclass
class World:
    """A project directory and the in-memory providers every engine of the test shares (one
    state store, one "cluster"), with the plugins given to :meth:`engine`."""

    root: Path
    providers: ProviderSet
    plugins: tuple[Any, ...] = ()
    log: io.StringIO = field(default_factory=io.StringIO)

    def function(self, workspace: str, name: str, **fields: Any) -> Function:
        return sample_function(self.root, workspace, name, **fields)

    def workspace(self, name: str, *functions: str | Function, **fields: Any) -> Workspace:
        made = [self.function(name, f) if isinstance(f, str) else f for f in functions]
        return sample_workspace(name, made, **fields)

    def project(self, *workspaces: Workspace) -> Project:
        return sample_project(self.root, *workspaces)

    def engine(self, project: Project) -> Engine:
        return Engine(project, memory_plugin_manager(self.providers, *self.plugins))

    def plan(
        self,
        project: Project,
        *targets: str,
        prune: bool = False,
        destroy: bool = False,
        excludes: tuple[str, ...] = (),
        refresh: bool = True,
    ) -> Plan:
        options = PlanOptions(
            prune=prune, destroy=destroy, refresh=refresh, selection=Selection(tuple(targets), excludes)
        )
        return self.engine(project).plan(options)

    def apply(self, project: Project, plan: Plan | None = None, **options: Any) -> ApplyResult:
        """Plan (unless given one) and apply under the state lock, as ``faasops apply`` does."""
        engine = self.engine(project)
        plan = plan or engine.plan(
            PlanOptions(prune=options.pop("prune", False), destroy=options.pop("destroy", False))
        )
        with engine.locked("faasops apply (tests/core)"):
            return engine.apply(plan, reporter=PlainReporter(self.log), **options)

    def actions(self, plan: Plan) -> dict[str, str]:
        return {c.address: c.action.value for c in plan.changes}
