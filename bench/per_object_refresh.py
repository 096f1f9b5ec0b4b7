"""The per-object refresh baseline: read actual state the way per-resource tools do.

Terraform-style tools refresh every resource they manage on its own: one read per resource.
These wrappers give an :class:`~faasops.engine.Engine` exactly that behaviour, so the benchmark
can run the same plan both ways and compare:

* :class:`PerObjectState` reads the state with one DynamoDB ``GetItem`` for the serial, one per
  workspace and one per function (instead of one paginated ``Query`` for the project);
* :class:`PerObjectDeployer` observes the cluster with one ``GET`` per function's SpinApp (and
  one per rendered autoscaler) instead of one ``LIST`` per namespace and kind.

Both produce the same :class:`~faasops.providers.ActualState` / live objects as the batched
readers, so the plans are identical; only the reads differ. Bench-only: they use the providers'
private request helpers, so their calls land in the same ``calls`` counters.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Iterable

from faasops.engine import Engine
from faasops.model import Project, Workspace
from faasops.plugins.aws import SERIAL_SK, DynamoDBState
from faasops.plugins.kubernetes import HPA, SCALED_OBJECT, SPINAPP, KubernetesDeployer, _observed
from faasops.providers import ActualState, FunctionRecord, LiveObject, WorkspaceRecord


class PerObjectState:
    """A DynamoDB state backend whose ``read`` makes one ``GetItem`` per record. Everything
    else is delegated to the wrapped backend."""

    def __init__(self, inner: DynamoDBState, project: Project):
        self.inner = inner
        self.project = project

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _get(self, sk: str) -> dict[str, Any] | None:
        state = self.inner
        answer = state._call("get_item", TableName=state.table, ConsistentRead=True,
                             Key={"pk": {"S": state._state_pk}, "sk": {"S": sk}})
        return answer.get("Item")

    def read(self, workspaces: Iterable[str] | None = None) -> ActualState:
        wanted = set(workspaces) if workspaces is not None else None
        serial_item = self._get(SERIAL_SK)
        serial = int(serial_item["serial"]["N"]) if serial_item else 0
        ws: dict[str, WorkspaceRecord] = {}
        fns: dict[str, FunctionRecord] = {}
        # A per-resource tool refreshes the resources it knows of: here, the declared ones.
        for workspace in self.project.workspaces:
            if wanted is not None and workspace.name not in wanted:
                continue
            item = self._get(f"WS#{workspace.name}")
            if item:
                ws[workspace.name] = WorkspaceRecord(workspace.name, json.loads(item["spec"]["S"]))
            for function in workspace.functions:
                item = self._get(f"WS#{workspace.name}#FN#{function.name}")
                if item:
                    record = FunctionRecord(workspace.name, item["name"]["S"], json.loads(item["spec"]["S"]),
                                            item["artifact"]["S"], item["applied_at"]["S"],
                                            item.get("deployed", {}).get("S", ""))
                    fns[record.address] = record
        return ActualState(ws, fns, serial)


class PerObjectDeployer:
    """A Kubernetes deployer whose ``observe`` makes one ``GET`` per function's SpinApp (plus
    one for its autoscaler when it has one). Everything else is delegated."""

    def __init__(self, inner: KubernetesDeployer):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        found: dict[str, LiveObject] = {}
        for ws in workspaces:
            declared = project.workspace(ws) if isinstance(ws, str) else ws
            if declared is None:
                continue
            namespace = declared.spec()["namespace"]
            for function in declared.functions:
                kinds = [SPINAPP]
                if function.autoscaling:
                    kinds.append(HPA if function.autoscaling.type == "hpa" else SCALED_OBJECT)
                manifests = []
                for kind in kinds:
                    obj = self.inner._get(kind, namespace, function.name)
                    if obj is not None:
                        manifests.append(_observed(obj))
                if manifests:
                    found[function.address] = LiveObject(function.address, tuple(manifests))
        return dict(sorted(found.items()))


def use_per_object_refresh(engine: Engine) -> None:
    """Swap the engine's state reader and deployer observation for the per-object ones."""
    providers = engine.providers
    engine.__dict__["providers"] = replace(
        providers,
        state=PerObjectState(providers.state, engine.project),
        deployer=PerObjectDeployer(providers.deployer),
    )
