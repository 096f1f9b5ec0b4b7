"""The ``kubernetes`` deployer: server-side apply of rendered manifests, batched observation.

Every write is a server-side apply (``PATCH`` with ``application/apply-patch+yaml``,
``fieldManager``, ``fieldValidation=Strict`` and ``force`` per option) through the client's
generic request path (``ApiClient.param_serialize`` + ``call_api``), not the typed
``patch_namespaced_custom_object``: that method only accepts 200, and an apply that creates an
object answers 201. The status is checked here, so 200 and 201 are both success.

Reads are batched: ``observe`` makes one LIST per namespace and kind (SpinApp,
HorizontalPodAutoscaler, ScaledObject — always all three, so the count never depends on what is
declared), selected by ``app.kubernetes.io/managed-by=faasops`` and grouped by the
``workspace_id`` / ``function_id`` labels the ``spinkube`` scaffolder puts on every object.
A deploy finds the function's stale autoscalers in what the plan's ``observe`` listed in the
same process (a namespace it did not observe is listed again), so deploying a function is one
server-side apply per object and nothing else.

Ownership rules:

* a namespace faasops creates carries ``app.kubernetes.io/managed-by: faasops``; a namespace
  that existed before only gets ``workspace_id`` and the workspace's labels, so
  ``delete_workspace`` never deletes a namespace faasops did not create (it gives up its labels
  there instead);
* an autoscaler is stale when it carries the function's ``function_id`` but is no longer
  rendered (HPA → KEDA, autoscaling turned off) and is deleted on deploy; objects with a
  controller owner reference (the HPA KEDA creates copies the ScaledObject's labels) belong to
  that controller and are never reported or deleted;
* under autoscaling the autoscaler owns ``replicas``: the observed SpinApp drops
  ``spec.replicas`` when ``enableAutoscaling`` is true, so it never shows up as drift;
* executors: spin-operator looks the SpinAppExecutor a SpinApp names up in the SpinApp's own
  namespace only (its webhook, spinkube/spin-operator ``internal/webhook/spinapp_validating.go``:
  "We assume that the executor must exist in the same namespace as the SpinApp", denying
  ``spec.executor: Invalid value: …: executor does not exist in namespace``). So before a
  SpinApp is applied, the executor it names is made to exist in its namespace: when the
  namespace has none of that name, faasops applies one rendered from
  ``spinappexecutor.yaml.j2`` (the project's ``templates/`` first, then the built-in, in
  :class:`faasops.template_sandbox.TemplateSandbox`), labelled as faasops'; one faasops created
  is kept in line with the template; one someone else created is left alone. Once per
  namespace and executor per run. Executors go with a namespace faasops created; in a
  namespace it did not create, ``delete_workspace`` deletes the ones only faasops ever wrote
  once no SpinApp is left there. They are not observed per function (a plan does not report a
  deleted executor; the next deploy into the namespace creates it again);
* KEDA: KEDA's admission webhook (kedacore/keda ``apis/keda/v1alpha1/scaledobject_webhook.go``,
  ``verifyCPUMemoryScalers``) fetches the Deployment a ScaledObject with cpu/memory triggers
  targets and refuses the ScaledObject while it is missing — and spin-operator creates that
  Deployment only after the SpinApp is admitted. So a ScaledObject is applied once its
  ``scaleTargetRef`` Deployment exists: one GET, then more with backoff
  (:class:`faasops.retry.RetryPolicy`) for up to ``keda_target_timeout_seconds``. An HPA is applied at
  once: the HPA API accepts a missing target (the controller reports it in the HPA's
  conditions until the Deployment appears).

Options (``providers.deployer`` in faas.yaml): ``kubeconfig`` (path, relative to the project
root; default: the in-cluster
service account when ``KUBERNETES_SERVICE_HOST`` is set, else ``$KUBECONFIG`` or
``~/.kube/config``), ``context``, ``field_manager`` (``faasops``), ``force_conflicts`` (false),
``wait`` (false: wait for each SpinApp to be ready after deploy), ``wait_timeout_seconds`` (300 s),
``request_timeout_seconds`` (30 s per API request), ``observe_concurrency`` (4 namespaces listed at a
time by a plan), ``max_attempts`` (5) and ``retry_max_seconds`` (60), ``create_executors``
(true: create missing SpinAppExecutors as above; false leaves them to the platform),
``runtime_class`` (``wasmtime-spin-v2``) and ``spot_runtime_class`` (``wasmtime-spin-v2-spot``):
the RuntimeClass of the executors faasops creates for functions without and with ``spot``,
``keda_target_timeout_seconds`` (120 s: how long a ScaledObject waits for its Deployment),
``namespace_terminating_timeout_seconds`` (300 s, see below).

Terminating namespaces: a deleted namespace stays ``Terminating`` on a cluster until the
namespace controller has deleted its contents and its finalizers are done, and the API server
refuses new objects in it (403, ``unable to create new content in namespace … because it is
being terminated``). So an apply right after a destroy finds the workspace's namespace still
there: ``ensure_workspace`` sees its ``deletionTimestamp``, says so on stderr and waits (GET
with backoff) for it to be gone, up to ``namespace_terminating_timeout_seconds``, then creates it again;
past that it fails naming the namespace, when it was deleted and what it still waits for
(finalizers, conditions). A refusal for that reason at any other moment is reported as such,
never as missing RBAC permission.

Retries (:mod:`faasops.retry`): every request the deployer makes is idempotent — GET, LIST,
DELETE (a second delete answers 404, which is success) and the server-side apply PATCH (applying
the same manifest twice gives the same object) — so each is retried on connection errors,
dropped connections, timeouts, 429 (honouring ``Retry-After``, or the Status body's
``details.retryAfterSeconds``, capped at 30 s) and 500/502/503/504, with exponential backoff and
full jitter, up to ``max_attempts`` attempts within ``retry_max_seconds``. Permanent answers
(400, 401, 403, 404, 409 conflicts, 422) are never retried. ``calls["retries"]`` counts retries.

The ``kubernetes`` package is imported on first use, so loading the plugin costs nothing.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import quote

from faasops.plugins.spinkube import (
    DEFAULT_RUNTIME_CLASS,
    DEFAULT_SPOT_RUNTIME_CLASS,
    EXECUTOR_OPTIONS,
    FUNCTION_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    WORKSPACE_ID_LABEL,
    ExecutorTemplate,
    function_id,
)

from faasops.errors import ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Function, Project, ProviderConfig, Workspace
from faasops.options import positive_seconds, seconds_option
from faasops.providers import LiveObject
from faasops.retry import RETRYABLE_STATUS, Attempts, RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

TYPE = "kubernetes"
DEFAULT_FIELD_MANAGER = "faasops"
DEFAULT_WAIT_TIMEOUT_S = 300.0
DEFAULT_REQUEST_TIMEOUT_S = 30.0
# spin-operator creates a SpinApp's Deployment within seconds of admitting it; a cluster whose
# operator is down should fail the apply well before a CI job's own timeout.
DEFAULT_KEDA_TARGET_TIMEOUT_S = 120.0
# Namespace deletion usually ends within seconds to a minute (pods' grace periods, finalizers
# of the objects in it); a stuck finalizer should fail a CI job with a clear message instead.
DEFAULT_NAMESPACE_TERMINATING_TIMEOUT_S = 300.0
APPLY_PATCH = "application/apply-patch+yaml"
LIST_PAGE_SIZE = 500
# Namespaces listed at the same time by a plan's observation (their LISTs are independent).
DEFAULT_OBSERVE_CONCURRENCY = 4
# Stripped from observed objects: the server sets them, faasops never does.
SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                   "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


@dataclass(frozen=True)
class Kind:
    """A resource type the deployer talks to, and where it lives in the API."""

    kind: str
    api_version: str
    plural: str
    namespaced: bool = True
    missing_hint: str = ""  # what to install when the cluster does not serve it

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return base + (f"/{quote(name, safe='')}" if name else "")

    def missing(self) -> str:
        """The one-line error for a cluster that does not serve this kind."""
        if self.missing_hint:
            return f"the cluster has no {self.kind} CRD ({self.api_version}): {self.missing_hint}"
        return f"the cluster does not serve {self.kind} ({self.api_version})"


NAMESPACE = Kind("Namespace", "v1", "namespaces", namespaced=False)
SPINAPP = Kind("SpinApp", "core.spinkube.dev/v1alpha1", "spinapps", missing_hint="install SpinKube")
HPA = Kind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers")
SCALED_OBJECT = Kind("ScaledObject", "keda.sh/v1alpha1", "scaledobjects",
                     missing_hint="install KEDA, or use autoscaling type hpa")
EXECUTOR = Kind("SpinAppExecutor", "core.spinkube.dev/v1alpha1", "spinappexecutors", missing_hint="install SpinKube")
DEPLOYMENT = Kind("Deployment", "apps/v1", "deployments")
AUTOSCALERS = (HPA, SCALED_OBJECT)
OBSERVED = (SPINAPP, *AUTOSCALERS)
KNOWN_KINDS = {(k.api_version, k.kind): k for k in (NAMESPACE, *OBSERVED, EXECUTOR, DEPLOYMENT)}


class _Response:
    """A decoded API answer; ``attempts`` is the retry budget spent getting it."""

    def __init__(self, status: int, body: Any, attempts: Attempts | None = None):
        self.status = status
        self.body = body
        self.attempts = attempts

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("message") or self.body.get("reason") or "")
        return str(self.body or "").strip()

    @property
    def details(self) -> dict[str, Any]:
        details = self.body.get("details") if isinstance(self.body, dict) else None
        return details if isinstance(details, dict) else {}


class KubernetesDeployer:
    """A :class:`faasops.providers.Deployer` for a Kubernetes cluster running SpinKube.

    ``calls`` counts API requests by ``"<VERB> <plural>"`` (``"LIST spinapps"``,
    ``"PATCH spinapps"`` …) for tests and benchmarks. Safe to share between apply threads.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, root: Path | None = None):
        options = dict(options or {})
        kubeconfig = options.get("kubeconfig")
        # A relative kubeconfig path is relative to the project root, like every faas.yaml path.
        self.kubeconfig: Path | None = (Path(root or ".") / Path(str(kubeconfig)).expanduser()) if kubeconfig else None
        self.context: str | None = options.get("context")
        self.field_manager = str(options.get("field_manager") or DEFAULT_FIELD_MANAGER)
        self.force_conflicts = _bool(options.get("force_conflicts", False), "force_conflicts")
        self.wait = _bool(options.get("wait", False), "wait")
        self.wait_timeout = _seconds(options.get("wait_timeout_seconds", DEFAULT_WAIT_TIMEOUT_S), "wait_timeout_seconds")
        self.request_timeout = _seconds(options.get("request_timeout_seconds", DEFAULT_REQUEST_TIMEOUT_S),
                                        "request_timeout_seconds")
        self.observe_concurrency = _count(options.get("observe_concurrency", DEFAULT_OBSERVE_CONCURRENCY),
                                          "observe_concurrency")
        self.retry = RetryPolicy.from_options(options, "providers.deployer")
        self.create_executors = _bool(options.get("create_executors", True), "create_executors")
        self.executors = ExecutorTemplate(
            _name(options.get("runtime_class", DEFAULT_RUNTIME_CLASS), "runtime_class"),
            _name(options.get("spot_runtime_class", DEFAULT_SPOT_RUNTIME_CLASS), "spot_runtime_class"),
            options,
        )
        self.keda_target_timeout = _seconds(
            options.get("keda_target_timeout_seconds", DEFAULT_KEDA_TARGET_TIMEOUT_S), "keda_target_timeout_seconds")
        self.namespace_terminating_timeout = _seconds(
            options.get("namespace_terminating_timeout_seconds", DEFAULT_NAMESPACE_TERMINATING_TIMEOUT_S),
            "namespace_terminating_timeout_seconds")
        # How the KEDA target and Terminating namespace waits tell and spend time (tests replace them).
        self.clock = time.monotonic
        self.sleep = time.sleep
        self._executors_done: set[tuple[str, str, str]] = set()  # (namespace, name, manifest JSON)
        self._executors_lock = threading.Lock()
        self._executors_guards: dict[tuple[str, str, str], threading.Lock] = {}
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._client: ApiClient | None = None
        self._kinds: dict[tuple[str, str], Kind] = dict(KNOWN_KINDS)
        # namespace → function_id → the faasops autoscalers (kind, name) observe listed there
        # (and deploys since left); deploys in these namespaces need no LIST of their own.
        self._autoscalers: dict[str, dict[str, set[tuple[Kind, str]]]] = {}
        self._autoscalers_lock = threading.Lock()

    # ------------------------------------------------------------------------------ Deployer

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        """Live manifests per function address: one LIST per namespace and observed kind, up to
        ``observe_concurrency`` namespaces at a time."""
        by_namespace: dict[str, dict[str, Workspace | None]] = {}
        for ws in workspaces:
            declared = project.workspace(ws) if isinstance(ws, str) else ws
            name = ws if isinstance(ws, str) else ws.name
            namespace = declared.spec()["namespace"] if declared is not None else name
            by_namespace.setdefault(namespace, {})[name] = declared
        found: dict[str, list[dict[str, Any]]] = {}
        if len(by_namespace) > 1 and self.observe_concurrency > 1:
            with ThreadPoolExecutor(min(self.observe_concurrency, len(by_namespace)),
                                    thread_name_prefix="faasops-observe") as pool:
                for part in pool.map(lambda item: self._observe_namespace(*item), by_namespace.items()):
                    found.update(part)
        else:
            for namespace, members in by_namespace.items():
                found.update(self._observe_namespace(namespace, members))
        return {address: LiveObject(address, tuple(manifests)) for address, manifests in sorted(found.items())}

    def _observe_namespace(self, namespace: str, members: dict[str, Workspace | None]) -> dict[str, list[dict[str, Any]]]:
        declared_ids = {
            (ws_name, function_id(ws_name, fn.name)): f"{ws_name}/{fn.name}"
            for ws_name, ws in members.items() if ws is not None
            for fn in ws.functions
        }
        found: dict[str, list[dict[str, Any]]] = {}
        address_of: dict[tuple[str, str], str] = {}
        autoscalers: dict[str, set[tuple[Kind, str]]] = {}
        for kind in OBSERVED:  # SpinApps first: their names give the addresses
            for obj in self._list(kind, namespace, f"{MANAGED_BY_LABEL}={MANAGED_BY}"):
                labels = obj.get("metadata", {}).get("labels") or {}
                ws_name, fid = labels.get(WORKSPACE_ID_LABEL), labels.get(FUNCTION_ID_LABEL)
                if kind in AUTOSCALERS and fid and not _controlled(obj):
                    autoscalers.setdefault(fid, set()).add((kind, obj["metadata"]["name"]))
                if ws_name not in members or not fid or _controlled(obj):
                    continue
                key = (ws_name, fid)
                address = address_of.get(key) or declared_ids.get(key) or f"{ws_name}/{obj['metadata']['name']}"
                address_of.setdefault(key, address)
                found.setdefault(address, []).append(_observed(obj))
        with self._autoscalers_lock:
            self._autoscalers[namespace] = autoscalers
        return found

    def ensure_workspace(self, project: Project, workspace: Workspace) -> None:
        """Create the namespace when missing (labelled as faasops'), else label it for the
        workspace — without claiming a namespace someone else created."""
        namespace = workspace.spec()["namespace"]
        existing = self._get(NAMESPACE, None, namespace)
        if existing is not None and _terminating(existing):
            # Applying now would only relabel the dying namespace; its content would be refused.
            self._wait_namespace_gone(workspace.name, existing)
            existing = None
        labels = {**workspace.labels, WORKSPACE_ID_LABEL: workspace.name}
        if existing is None or _managed(existing):
            labels[MANAGED_BY_LABEL] = MANAGED_BY
        self._apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}})

    def delete_workspace(self, project: Project, workspace: str, namespace: str) -> None:
        """Delete the namespace if faasops created it and no other workspace's functions live
        there; on a namespace faasops did not create, only give up faasops' labels."""
        existing = self._get(NAMESPACE, None, namespace)
        if existing is None or _terminating(existing):
            return  # gone, or already on its way out (a second DELETE would answer 409)
        if not _managed(existing):
            # An apply without the labels removes the ones only faasops set.
            self._apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            self._delete_own_executors(namespace)
            return
        others = f"{MANAGED_BY_LABEL}={MANAGED_BY},{WORKSPACE_ID_LABEL}!={workspace}"
        if not self._list(SPINAPP, namespace, others, limit=1):
            self._delete(NAMESPACE, None, namespace)

    def deploy(self, project: Project, function: Function, manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Server-side apply ``manifests``, delete the function's autoscalers that are no longer
        rendered, and (with ``wait``) wait for the SpinApp to be ready. Returns the objects as
        the server answered the applies, stripped as :meth:`observe` strips them."""
        if not manifests:
            raise ProviderError(f"{function.address}: nothing to deploy (the scaffolder rendered no manifests)")
        autoscaler_kinds = {(k.api_version, k.kind) for k in AUTOSCALERS}
        autoscalers = [m for m in manifests if (m.get("apiVersion"), m.get("kind")) in autoscaler_kinds]
        others = [m for m in manifests if all(m is not a for a in autoscalers)]
        spinapp = next((m for m in manifests if m.get("kind") == SPINAPP.kind), None)
        namespace = (spinapp or manifests[0])["metadata"]["namespace"]
        labels = (spinapp or {}).get("metadata", {}).get("labels") or {}
        fid = labels.get(FUNCTION_ID_LABEL) or function_id(function.workspace, function.name)
        if spinapp is not None and self.create_executors:
            self._ensure_executor(project, function, spinapp)
        live = [self._apply(manifest) for manifest in others]
        # Stale autoscalers go before the new ones apply, so an HPA and a ScaledObject never
        # fight over the same Deployment.
        keep = {(m["kind"], m["metadata"]["name"]) for m in autoscalers}
        self._delete_autoscalers(namespace, fid, keep)
        for manifest in autoscalers:
            if self._kind(manifest) is SCALED_OBJECT:
                self._wait_for_scale_target(manifest)
            live.append(self._apply(manifest))
        if self.wait and spinapp is not None:
            self._wait_ready(namespace, spinapp["metadata"]["name"])
        return [_observed(obj) for obj in live if isinstance(obj, dict)]

    def undeploy(self, project: Project, workspace: str, namespace: str, name: str) -> None:
        """Delete the SpinApp and the function's autoscalers; what is already gone is fine."""
        self._delete(SPINAPP, namespace, name)
        self._delete_autoscalers(namespace, function_id(workspace, name), keep=set())

    # ------------------------------------------------------------------------------ executors

    def _ensure_executor(self, project: Project, function: Function, spinapp: dict[str, Any]) -> None:
        """Make the executor ``spinapp`` names exist in its namespace (see the module docstring),
        once per namespace, executor and manifest per run."""
        manifest = self.executors.render(project, function, spinapp)
        if manifest is None:
            return
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        key = (namespace, name, json.dumps(manifest, sort_keys=True))
        with self._executors_lock:
            if key in self._executors_done:
                return
            # The first deploy into the namespace makes sure of it; the others wait for that.
            guard = self._executors_guards.setdefault(key, threading.Lock())
        with guard:
            with self._executors_lock:
                if key in self._executors_done:
                    return
            existing = self._get(EXECUTOR, namespace, name)
            # One someone else created (the platform's) is theirs: faasops neither changes nor
            # co-owns it, so a different runtimeClassName there is no conflict.
            if existing is None or _managed(existing):
                self._apply(manifest)
            with self._executors_lock:
                self._executors_done.add(key)

    def _delete_own_executors(self, namespace: str) -> None:
        """In a namespace faasops did not create and is leaving: delete the executors only
        faasops ever wrote, once no SpinApp (of anyone) is left to name them."""
        if not self.create_executors or self._list(SPINAPP, namespace, "", limit=1):
            return
        for obj in self._list(EXECUTOR, namespace, f"{MANAGED_BY_LABEL}={MANAGED_BY}"):
            managers = {entry.get("manager") for entry in obj["metadata"].get("managedFields") or ()}
            if managers == {self.field_manager}:
                self._delete(EXECUTOR, namespace, obj["metadata"]["name"])

    def _wait_namespace_gone(self, workspace: str, namespace_obj: dict[str, Any]) -> None:
        """Wait (GET with backoff, up to ``namespace_terminating_timeout_seconds``) until a Terminating
        namespace is gone, saying so on stderr."""
        namespace = namespace_obj["metadata"]["name"]
        since = namespace_obj["metadata"].get("deletionTimestamp") or "?"
        started = self.clock()
        _progress(workspace, f"namespace {namespace} is still Terminating (deleted at {since}); waiting up to "
                             f"{self.namespace_terminating_timeout:g}s for it to be gone before creating it again")
        policy = RetryPolicy(max_attempts=1_000_000, max_seconds=self.namespace_terminating_timeout,
                             base_delay_s=0.1, max_delay_s=2.0)
        attempts = policy.start(clock=self.clock, sleep=self.sleep)
        current: dict[str, Any] | None = namespace_obj
        while True:
            current = self._get(NAMESPACE, None, namespace)
            if current is None or not _terminating(current):
                _progress(workspace, f"namespace {namespace} is gone after {self.clock() - started:.1f}s")
                return
            if not attempts.retry():
                raise ProviderError(
                    f"namespace {namespace} is still Terminating {self.namespace_terminating_timeout:g}s later "
                    f"(deleted at {since}; {_termination_holdup(current)}), and the API server refuses new "
                    f"objects in a namespace being deleted: check `kubectl get namespace {namespace} -o yaml` for "
                    "what its finalizers wait on, apply again once it is gone, or raise "
                    "namespace_terminating_timeout_seconds under providers.deployer"
                )

    def _wait_for_scale_target(self, scaled_object: dict[str, Any]) -> None:
        """Wait until the Deployment a ScaledObject scales exists (KEDA's webhook refuses the
        ScaledObject before), for up to ``keda_target_timeout_seconds`` with backoff."""
        target = (scaled_object.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind", "Deployment") != DEPLOYMENT.kind or target.get("apiVersion", "apps/v1") != "apps/v1":
            return
        namespace, name = scaled_object["metadata"]["namespace"], target.get("name")
        if not name:
            return
        policy = RetryPolicy(max_attempts=1_000_000, max_seconds=self.keda_target_timeout,
                             base_delay_s=0.05, max_delay_s=2.0)
        attempts = policy.start(clock=self.clock, sleep=self.sleep)
        while self._get(DEPLOYMENT, namespace, name) is None:
            if not attempts.retry():
                raise ProviderError(
                    f"ScaledObject {namespace}/{scaled_object['metadata']['name']}: the Deployment {namespace}/{name} it "
                    f"scales does not exist after {self.keda_target_timeout:g}s, and KEDA's admission webhook refuses "
                    f"a ScaledObject whose target is missing. spin-operator creates it from the SpinApp: check that "
                    f"spin-operator runs and `kubectl describe spinapp {name} -n {namespace}`, or raise "
                    "keda_target_timeout_seconds under providers.deployer"
                )

    # ------------------------------------------------------------------------------ operations

    def _apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply one manifest; returns the object the server answered (200 or 201)."""
        kind = self._kind(manifest)
        metadata = manifest.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata["name"]
        query = [("fieldManager", self.field_manager), ("fieldValidation", "Strict")]
        if self.force_conflicts:
            query.append(("force", "true"))
        response = self._request("PATCH", kind, kind.path(namespace, name), query, body=manifest,
                                 content_type=APPLY_PATCH)
        if response.status < 300:
            return response.body
        what = f"{kind.kind} {_where(namespace, name)}"
        admission = response.message.startswith("admission webhook ")
        if response.status == 409 and not admission:
            raise ProviderError(self._conflict_message(what, response))
        if response.status == 404 and not admission:
            if response.details.get("kind") == "namespaces":
                raise ProviderError(f"{what}: namespace {namespace} does not exist (apply its workspace first)")
            raise ProviderError(kind.missing())
        if admission:
            # A webhook's denial keeps the status its webhook chose (422 from spin-operator;
            # 403, or 404 for a missing target, from KEDA): it is neither RBAC nor a missing kind.
            error = ProviderError(f"{what} was rejected ({response.status}): {_one_line(response.message)}")
        else:
            error = self._error("patch", kind, namespace, response, what)
        if response.status == 422 and kind is SPINAPP and "replicas" not in (manifest.get("spec") or {}) \
                and "replicas" in response.message:
            # Applying without replicas removes only faasops' own; another manager's stay, and
            # spin-operator refuses them next to enableAutoscaling.
            error = ProviderError(
                f"{error}; another field manager still sets spec.replicas: remove it with `kubectl patch spinapp "
                f"""{name} -n {namespace} --type json -p '[{{"op":"remove","path":"/spec/replicas"}}]'`"""
            )
        raise error

    def _conflict_message(self, what: str, response: _Response) -> str:
        by_manager: dict[str, list[str]] = {}
        for cause in response.details.get("causes") or ():
            # 'conflict with "kubectl-patch" using core.spinkube.dev/v1alpha1' → kubectl-patch
            match = re.search(r'conflict with "([^"]*)"', str(cause.get("message", "")))
            manager = match.group(1) if match else "another field manager"
            by_manager.setdefault(manager, []).append(str(cause.get("field", "?")))
        owners = "; ".join(f"{manager} owns {', '.join(fields)}" for manager, fields in by_manager.items())
        return (
            f"{what}: conflict with another field manager ({owners or _one_line(response.message)}); "
            "set force_conflicts: true under providers.deployer (or run with --force-conflicts) "
            "to take the fields back"
        )

    def _get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        response = self._request("GET", kind, kind.path(namespace, name))
        if response.status == 404:
            return None
        if response.status >= 300:
            raise self._error("get", kind, namespace, response, f"{kind.kind} {_where(namespace, name)}")
        return response.body

    def _list(self, kind: Kind, namespace: str, selector: str, limit: int = 0) -> list[dict[str, Any]]:
        """Every object of ``kind`` in ``namespace`` matching ``selector`` (with ``limit``, at
        most one page of that size); a kind the cluster does not serve has none."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("labelSelector", selector), ("limit", str(limit or LIST_PAGE_SIZE))]
            if token:
                query.append(("continue", token))
            response = self._request("LIST", kind, kind.path(namespace), query)
            if response.status == 404:
                return []
            if response.status >= 300:
                raise self._error("list", kind, namespace, response, f"{kind.plural} in namespace {namespace}")
            items.extend(response.body.get("items") or ())
            token = (response.body.get("metadata") or {}).get("continue") or ""
            if not token or limit:
                return items

    def _delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        response = self._request("DELETE", kind, kind.path(namespace, name),
                                 body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
        if response.status >= 300 and response.status != 404:
            raise self._error("delete", kind, namespace, response, f"{kind.kind} {_where(namespace, name)}")

    def _delete_autoscalers(self, namespace: str, fid: str, keep: set[tuple[str, str]]) -> None:
        """Delete the function's autoscalers not in ``keep`` (kind, name): those observe listed
        in this process, else those a LIST finds now."""
        with self._autoscalers_lock:
            observed = self._autoscalers.get(namespace)
            known = set(observed.get(fid, ())) if observed is not None else None
        if known is None:
            selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{FUNCTION_ID_LABEL}={fid}"
            known = {(kind, obj["metadata"]["name"]) for kind in AUTOSCALERS
                     for obj in self._list(kind, namespace, selector) if not _controlled(obj)}
        for kind, name in sorted(known, key=lambda entry: (entry[0].kind, entry[1])):
            if (kind.kind, name) not in keep:
                self._delete(kind, namespace, name)
        with self._autoscalers_lock:
            if namespace in self._autoscalers:
                self._autoscalers[namespace][fid] = {(kind, name) for kind in AUTOSCALERS for kind_name, name in keep
                                                     if kind.kind == kind_name}

    def _wait_ready(self, namespace: str, name: str) -> None:
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.05
        while True:
            obj = self._get(SPINAPP, namespace, name)
            if obj is not None and _ready(obj):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state = _readiness(obj) if obj is not None else "it no longer exists"
                raise ProviderError(
                    f"SpinApp {namespace}/{name} is not ready after {self.wait_timeout:g}s ({state}); "
                    "check `kubectl describe spinapp` and the pods, or raise wait_timeout_seconds"
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------------------ transport

    def _kind(self, manifest: dict[str, Any]) -> Kind:
        """The resource type of a manifest; kinds beyond the built-in ones (a user template's
        ``allowed_kinds``) are looked up once in the API discovery document."""
        key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
        kind = self._kinds.get(key)
        if kind is not None:
            return kind
        api_version, kind_name = key
        probe = Kind(kind_name, api_version, "")
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        response = self._request("GET", probe, base, counter="GET discovery")
        if response.status == 404:
            raise ProviderError(probe.missing())
        if response.status >= 300:
            raise self._error("get", probe, None, response, f"API discovery {base}")
        for resource in response.body.get("resources") or ():
            if resource.get("kind") == kind_name and "/" not in resource.get("name", ""):
                kind = Kind(kind_name, api_version, resource["name"], bool(resource.get("namespaced")))
                self._kinds[key] = kind
                return kind
        raise ProviderError(probe.missing())

    def _api(self) -> ApiClient:
        with self._client_lock:
            if self._client is None:
                from kubernetes import client

                from faasops import __version__

                api = client.ApiClient(self._configuration())
                api.user_agent = f"faasops/{__version__}"  # how audit logs name the caller
                self._client = api
            return self._client

    def _configuration(self) -> Any:
        from kubernetes import client, config

        configuration = client.Configuration()
        # Connection retries are ours (quietly): urllib3's log a warning per attempt.
        configuration.retries = 0
        try:
            if self.kubeconfig:
                path = self.kubeconfig
                if not path.is_file():
                    raise ProviderError(f"kubeconfig {path} does not exist (providers.deployer.kubeconfig)")
                config.load_kube_config(config_file=str(path), context=self.context,
                                        client_configuration=configuration, persist_config=False)
            elif os.environ.get("KUBERNETES_SERVICE_HOST") and not self.context:
                config.load_incluster_config(client_configuration=configuration)
            else:
                path_list = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
                config.load_kube_config(config_file=path_list, context=self.context,
                                        client_configuration=configuration, persist_config=False)
        except config.ConfigException as exc:
            # ConfigException messages name files and fields, never credentials.
            where = self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ProviderError(f"cannot load the Kubernetes configuration ({where}): {_one_line(str(exc))}") from None
        except (OSError, ValueError) as exc:
            # Parse errors can quote the file (and its tokens): name the file only.
            where = self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ProviderError(f"cannot read the Kubernetes configuration {where} ({type(exc).__name__})") from None
        return configuration

    def _request(self, method: str, kind: Kind, path: str, query: list[tuple[str, str]] | None = None,
                 body: Any = None, content_type: str = "application/json", counter: str = "") -> _Response:
        """One API request, retried on transient failures (see the module docstring: every
        request made here is idempotent). The answer's status is the caller's to judge, except
        for transport failures and 401, which are always errors."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        api = self._api()
        http_method = "GET" if method == "LIST" else method
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        host = api.configuration.host
        attempts = self.retry.start()
        while True:
            with self._calls_lock:
                self.calls[counter or f"{method} {kind.plural}"] += 1
            request = api.param_serialize(http_method, path, query_params=query or None, header_params=dict(headers),
                                          body=body, auth_settings=["BearerToken"])
            try:
                raw = api.call_api(*request, _request_timeout=self.request_timeout)
                raw.read()
            except urllib3.exceptions.HTTPError as exc:
                cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
                if self._retry(attempts, None):
                    continue
                if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
                    raise ProviderError(
                        f"the Kubernetes API server at {host} did not answer {http_method} {path} within "
                        f"{self.request_timeout:g}s (providers.deployer.request_timeout; {attempts.summary()})"
                    ) from None
                raise ProviderError(f"cannot reach the Kubernetes API server at {host}: {_reason(cause)}") from None
            except ApiException as exc:  # the client reports TLS failures this way (status 0)
                raise ProviderError(
                    f"cannot talk to the Kubernetes API server at {host}: {_one_line(str(exc.reason))}"
                ) from None
            try:
                decoded: Any = json.loads(raw.data) if raw.data else None
            except ValueError:
                decoded = raw.data.decode("utf-8", "replace")
            response = _Response(raw.status, decoded, attempts)
            if response.status in RETRYABLE_STATUS and self._retry(attempts, _retry_after(raw.headers, decoded)):
                continue
            break
        if response.status == 401:
            raise ProviderError(
                f"the Kubernetes API server at {host} rejected the credentials (401 Unauthorized) "
                f"for {method.lower()} {kind.plural}: check the kubeconfig user or the service account token"
            )
        return response

    def _retry(self, attempts: Attempts, retry_after: float | None) -> bool:
        """Wait for another attempt if the budget allows (and count it)."""
        if not attempts.retry(retry_after):
            return False
        with self._calls_lock:
            self.calls["retries"] += 1
        return True

    def _error(self, verb: str, kind: Kind, namespace: str | None, response: _Response, what: str) -> ProviderError:
        message = _one_line(response.message)
        if response.status == 403 and _namespace_terminating(response):
            return ProviderError(
                f"{what}: namespace {namespace} is being deleted (Terminating), and the API server refuses new "
                f"objects in it; apply again once `kubectl get namespace {namespace}` answers NotFound "
                f"(the server said: {message})"
            )
        if response.status == 403:
            scope = f" in namespace {namespace}" if namespace else ""
            return ProviderError(
                f"forbidden: faasops may not {verb} {kind.plural}{scope} (403): grant it RBAC permission; "
                f"the server said: {message}"
            )
        if response.status in (400, 422):
            return ProviderError(f"{what} was rejected ({response.status}): {message}")
        gave_up = ""
        if response.status in RETRYABLE_STATUS and response.attempts is not None:
            gave_up = f" (gave up {response.attempts.summary()}; raise max_attempts or retry_max_seconds under providers.deployer)"
        return ProviderError(f"{verb} {what} failed ({response.status}): {message}{gave_up}")


# ------------------------------------------------------------------------------------------ values


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ProviderError(f"providers.deployer.{name} must be true or false, not {value!r}")


def _count(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
        return value
    raise ProviderError(f"providers.deployer.{name} must be a whole number from 1 to 64, not {value!r}")


def _seconds(value: Any, name: str) -> float:
    return positive_seconds(value, f"providers.deployer.{name}")


def _name(value: Any, name: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise ProviderError(f"providers.deployer.{name} must be a name, not {value!r}")


def _where(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _retry_after(headers: Mapping[str, str] | None, body: Any) -> float | None:
    """The wait a 429/503 asks for: ``Retry-After``, else the Status' ``details.retryAfterSeconds``."""
    seconds = parse_retry_after((headers or {}).get("Retry-After"))
    if seconds is not None:
        return seconds
    details = body.get("details") if isinstance(body, dict) else None
    value = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _reason(exc: Exception) -> str:
    """``connection refused``-style text out of urllib3's nested exceptions."""
    text = str(exc)
    if "] " in text:  # "...: [Errno 111] Connection refused"
        text = text.rsplit("] ", 1)[1]
    elif ": " in text:
        text = text.rsplit(": ", 1)[1]
    return _one_line(text).lower() or type(exc).__name__


def _managed(obj: dict[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def _terminating(namespace: dict[str, Any]) -> bool:
    """Whether a namespace is being deleted (``deletionTimestamp`` set, phase ``Terminating``)."""
    return bool((namespace.get("metadata") or {}).get("deletionTimestamp")) \
        or (namespace.get("status") or {}).get("phase") == "Terminating"


def _namespace_terminating(response: _Response) -> bool:
    """Whether a 403 is the NamespaceLifecycle admission plugin's refusal, not RBAC's."""
    causes = response.details.get("causes") or ()
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes) \
        or "because it is being terminated" in response.message


def _termination_holdup(namespace: dict[str, Any]) -> str:
    """What a Terminating namespace still waits for: its finalizers and the namespace
    controller's conditions (``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining`` …)."""
    finalizers = [*((namespace.get("spec") or {}).get("finalizers") or ()),
                  *((namespace.get("metadata") or {}).get("finalizers") or ())]
    parts = [f"finalizers: {', '.join(map(str, finalizers))}" if finalizers else "no finalizers"]
    for condition in (namespace.get("status") or {}).get("conditions") or ():
        if condition.get("status") == "True" and condition.get("message"):
            parts.append(f"{condition.get('type')}: {_one_line(str(condition['message']))}")
    return "; ".join(parts)


def _progress(address: str, message: str) -> None:
    """A progress line on stderr, as the remote builder writes its own."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} {address}: {message}\n")
    sys.stderr.flush()


def _controlled(obj: dict[str, Any]) -> bool:
    """Whether a controller owns the object (KEDA's HPA copies its ScaledObject's labels)."""
    return any(ref.get("controller") for ref in (obj.get("metadata") or {}).get("ownerReferences") or ())


def _observed(obj: dict[str, Any]) -> dict[str, Any]:
    """A live object with what the server populates stripped, so drift compares what faasops
    sets; the replica count of an autoscaled SpinApp belongs to the autoscaler. Strips ``obj``
    itself: it is a freshly decoded answer nothing else holds (a deep copy was a fifth of a
    10,000-function plan)."""
    clean = obj
    clean.pop("status", None)
    metadata = clean.get("metadata") or {}
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    spec = clean.get("spec")
    if clean.get("kind") == SPINAPP.kind and isinstance(spec, dict) and spec.get("enableAutoscaling") is True:
        spec.pop("replicas", None)
    return clean


def _ready(spinapp: dict[str, Any]) -> bool:
    """Ready when ``readyReplicas`` reaches ``spec.replicas``. An autoscaled SpinApp (no
    ``spec.replicas``; KEDA may hold it at zero) is ready with one ready replica or the
    ``Available`` condition, as is one whose operator reports no ``readyReplicas``."""
    status = spinapp.get("status") or {}
    desired = (spinapp.get("spec") or {}).get("replicas")
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or ())
    if "readyReplicas" not in status:
        return available
    ready = int(status.get("readyReplicas") or 0)
    return ready >= desired if desired else (ready >= 1 or available)


def _readiness(spinapp: dict[str, Any]) -> str:
    status = spinapp.get("status") or {}
    desired = (spinapp.get("spec") or {}).get("replicas")
    ready = int(status.get("readyReplicas") or 0)
    text = f"{ready}/{desired} replicas ready" if desired else f"{ready} replicas ready, autoscaled"
    available = next((c for c in status.get("conditions") or () if c.get("type") == "Available"), None)
    if available is not None:
        text += f", Available={available.get('status')}"
        if available.get("message"):
            text += f": {_one_line(str(available['message']))}"
    return text


# ------------------------------------------------------------------------------------------ hooks


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kubeconfig": {"type": "string", "minLength": 1,
                       "description": "kubeconfig file, relative to the project root (default: in-cluster or $KUBECONFIG)"},
        "context": {"type": "string", "minLength": 1, "description": "kubeconfig context (default: the current one)"},
        "field_manager": {"type": "string", "minLength": 1, "default": DEFAULT_FIELD_MANAGER,
                          "description": "server-side apply field manager"},
        "force_conflicts": {"type": "boolean", "default": False,
                            "description": "take over fields another manager changed (apply --force-conflicts)"},
        "wait": {"type": "boolean", "default": False, "description": "wait until each SpinApp is ready (apply --wait)"},
        "wait_timeout_seconds": seconds_option("how long --wait waits for a SpinApp", DEFAULT_WAIT_TIMEOUT_S,
                                               aliases=["wait_timeout"]),
        "request_timeout_seconds": seconds_option("timeout of one API request", DEFAULT_REQUEST_TIMEOUT_S,
                                                  aliases=["request_timeout"]),
        "observe_concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "default": DEFAULT_OBSERVE_CONCURRENCY,
                                "description": "namespaces listed at the same time by a plan"},
        "max_attempts": {"type": "integer", "minimum": 1, "description": "attempts per API request (default 5)"},
        "retry_max_seconds": seconds_option("longest time spent retrying one request (default 60)"),
        "keda_target_timeout_seconds": seconds_option(
            "how long to wait for the Deployment a KEDA ScaledObject targets", DEFAULT_KEDA_TARGET_TIMEOUT_S,
            aliases=["keda_target_timeout"]),
        "namespace_terminating_timeout_seconds": seconds_option(
            "how long to wait for a Terminating namespace to go", DEFAULT_NAMESPACE_TERMINATING_TIMEOUT_S,
            aliases=["namespace_terminating_timeout"]),
        **EXECUTOR_OPTIONS,
    },
}


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("deployer", TYPE, OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("deployer", TYPE, "server-side applies SpinApps (and HPA/KEDA autoscalers) to a Kubernetes cluster")]


@hookimpl
def faasops_deployer(config: ProviderConfig, project: Project) -> KubernetesDeployer | None:
    if config.type != TYPE:
        return None
    return KubernetesDeployer(config.options, project.root)
