"""Controllers the emulator stands in for: spin-operator's SpinApp reconciler, reduced to the
Deployment it creates.

spin-operator (spinkube/spin-operator ``internal/controller/spinapp_controller.go``,
``constructDeployment``) realises a SpinApp whose executor has ``createDeployment: true`` as a
Deployment of the same name in the same namespace: one container named after the app running
its image, with the SpinApp's ``resources``, the executor's ``runtimeClassName``, the SpinApp's
``podLabels``/``podAnnotations`` on the pods, ``replicas`` unless autoscaling is on, and a
controller owner reference to the SpinApp (deleting the SpinApp deletes it). KEDA's webhook
reads that Deployment, so the emulator must have it for ScaledObjects to be admitted.

The real operator acts after it sees the SpinApp; :class:`SpinOperator` does so ``delay``
seconds after each write, so a client that applies a ScaledObject right
after its SpinApp meets the same refusal it would meet on a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .scheduled import ScheduledWork

if TYPE_CHECKING:
    from .cluster import Cluster

FIELD_MANAGER = "spin-operator"
APP_NAME_LABEL = "core.spinkube.dev/app-name"
HTTP_PORT = 80


class SpinOperator:
    """Creates and updates each SpinApp's Deployment ``delay`` seconds after the SpinApp is
    written: one worker thread works through the writes in the order they fall due."""

    def __init__(self, cluster: Cluster, delay: float) -> None:
        self.cluster = cluster
        self.delay = delay
        self._work: ScheduledWork[tuple[str, str]] = ScheduledWork(
            lambda due: self._reconcile_if_there(*due), "kube-emulator-spin-operator")

    def spinapp_written(self, namespace: str, name: str) -> None:
        """Schedule a reconcile of SpinApp ``namespace/name``."""
        self._work.schedule((namespace, name), self.delay)

    def stop(self) -> None:
        """Drop what is scheduled and end the worker (the emulator is stopping; a later write
        starts a new one)."""
        self._work.stop()

    def _reconcile_if_there(self, namespace: str, name: str) -> None:
        try:
            self.reconcile(namespace, name)
        except ApiError:
            pass  # the namespace went away meanwhile: nothing to reconcile, as on a cluster

    def reconcile(self, namespace: str, name: str) -> None:
        """Make the SpinApp's Deployment match it (nothing when the SpinApp or its executor is
        gone, or the executor does not want operator Deployments)."""
        cluster = self.cluster
        deployments = cluster.registry.lookup("apps", "v1", "deployments")
        spinapps = cluster.registry.lookup("core.spinkube.dev", "v1alpha1", "spinapps")
        if deployments is None or spinapps is None:
            return
        from .cluster import WriteParams  # (cluster imports this module)

        with cluster.store.lock:
            app = cluster.store.get(spinapps.key, namespace, name)
            if app is None or app["metadata"].get("deletionTimestamp"):
                return
            spec = app.get("spec") or {}
            executor = cluster.store.get(("core.spinkube.dev", "spinappexecutors"), namespace, spec.get("executor") or "")
            executor_spec = (executor or {}).get("spec") or {}
            if not executor_spec.get("createDeployment"):
                return
            wanted = deployment_for(app, executor_spec.get("deploymentConfig") or {})
            live = cluster.store.get(deployments.key, namespace, name)
            params = WriteParams(field_manager=FIELD_MANAGER)
            if live is None:
                cluster.create(deployments, namespace, wanted, params)
                return
            owner = next((r for r in live["metadata"].get("ownerReferences") or () if r.get("controller")), None)
            if owner is None or owner.get("uid") != app["metadata"].get("uid"):
                return  # someone else's Deployment of that name: the operator leaves it alone
            live_spec = live.get("spec") or {}
            if live_spec.get("template") == wanted["spec"]["template"] and (
                    "replicas" not in wanted["spec"] or live_spec.get("replicas") == wanted["spec"]["replicas"]):
                return
            update = {**wanted, "metadata": {**live["metadata"], **wanted["metadata"]}}
            update["spec"] = {**live.get("spec", {}), **wanted["spec"]}
            cluster.update(deployments, namespace, name, update, params)

    def spinapp_deleted(self, app: dict[str, Any]) -> None:
        """Garbage-collect the Deployment the SpinApp controlled."""
        cluster = self.cluster
        metadata = app["metadata"]
        with cluster.store.lock:
            live = cluster.store.get(("apps", "deployments"), metadata.get("namespace", ""), metadata["name"])
            if live is None:
                return
            if any(r.get("controller") and r.get("uid") == metadata.get("uid")
                   for r in live["metadata"].get("ownerReferences") or ()):
                rt = cluster.registry.lookup("apps", "v1", "deployments")
                assert rt is not None
                cluster.delete(rt, metadata.get("namespace"), metadata["name"], {}, dry_run=False)


def deployment_for(app: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The Deployment spin-operator's ``constructDeployment`` builds for ``app``."""
    metadata, spec = app["metadata"], app.get("spec") or {}
    name = metadata["name"]
    ready = {APP_NAME_LABEL: name, f"core.spinkube.dev/app.{name}.status": "ready"}
    resources = {k: v for k, v in (spec.get("resources") or {}).items() if k in ("limits", "requests") and v}
    container: dict[str, Any] = {"name": name, "image": spec.get("image", ""), "command": ["/"],
                                 "ports": [{"name": "http-app", "containerPort": HTTP_PORT}]}
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {"containers": [container]}
    if config.get("runtimeClassName"):
        pod_spec["runtimeClassName"] = config["runtimeClassName"]
    template_metadata: dict[str, Any] = {"labels": {**(spec.get("podLabels") or {}), **ready}}
    if spec.get("podAnnotations"):
        template_metadata["annotations"] = spec["podAnnotations"]
    deployment_spec: dict[str, Any] = {"selector": {"matchLabels": ready},
                                       "template": {"metadata": template_metadata, "spec": pod_spec}}
    if not spec.get("enableAutoscaling"):
        deployment_spec["replicas"] = spec.get("replicas") or 0
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": metadata.get("namespace"),
            "labels": {APP_NAME_LABEL: name},
            "ownerReferences": [{"apiVersion": app.get("apiVersion", "core.spinkube.dev/v1alpha1"), "kind": "SpinApp",
                                 "name": name, "uid": metadata.get("uid"), "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": deployment_spec,
    }
