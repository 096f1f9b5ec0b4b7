"""A Kubernetes API server emulator for tests and benchmarks.

The official ``kubernetes`` python client and real ``kubectl`` work against it unmodified::

    from testkit.kubeapi import KubeEmulator

    with KubeEmulator(port=0) as emu:              # serving on 127.0.0.1 in a background thread
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
        ...                                        # KUBECONFIG=… kubectl apply --server-side …
        emu.stats(); emu.reset_stats(); emu.reset()
        emu.set_service_backend("ws", "hello", "http://127.0.0.1:8080")
        emu.mark_spinapp_ready("ws", "hello")

or in the foreground: ``python -m testkit.kubeapi --port 6443 [--token T] [--tls]
[--kubeconfig PATH] [--spinapp-ready] [--no-spinkube] [--no-keda] [--no-webhooks] [--no-operator]
[--namespace-termination SECONDS]``.

What it serves
    Discovery: ``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``, ``/apis/<g>/<v>`` in both the
    legacy form and the aggregated ``apidiscovery.k8s.io/v2`` form kubectl 1.3x asks for;
    ``/version``, ``/healthz``, ``/livez``, ``/readyz``; ``/openapi/v3`` (root and one document
    per group-version) and ``/openapi/v2`` (JSON only).
    Kinds: namespaces, configmaps, secrets, services (+ proxy), serviceaccounts, pods, events,
    ``apps/v1`` deployments (+ scale), ``autoscaling/v2`` horizontalpodautoscalers,
    ``apiextensions.k8s.io/v1`` customresourcedefinitions (a CRD created through the emulator
    is served at once, with its scope, names, shortNames, printer columns, status/scale
    subresources and structural schema), ``authorization.k8s.io/v1`` selfsubjectaccessreviews
    (always allowed: there is no RBAC). Preinstalled (on by default): SpinApp and
    SpinAppExecutor (``core.spinkube.dev/v1alpha1``), KEDA ScaledObject (``keda.sh/v1alpha1``).
    Verbs: create/get/list/update/patch/delete/deletecollection/watch with the real status
    codes and ``Status`` bodies; label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``,
    exists, ``!key``, ``>``/``<``), field selectors (``metadata.name``, ``metadata.namespace``
    and the few per-kind fields the real server indexes), ``limit``/``continue``; JSON merge,
    JSON and strategic merge patches (strategic merge on custom resources answers 415, as the
    real server does; ``crd_strategic_merge_patch=True`` treats it as a merge patch instead);
    server-side apply with ``managedFields``, conflicts, ``force`` and pruning; ``dryRun=All``;
    ``fieldValidation`` (Strict rejects fields a CRD schema does not declare, otherwise they are
    pruned with a warning); resourceVersion preconditions; finalizers; watch with
    ``resourceVersion``, ``timeoutSeconds``, ``allowWatchBookmarks``, ``sendInitialEvents``.
    Admission and controllers it stands in for: spin-operator's and KEDA's validating webhooks
    (``admission``: executor in the SpinApp's namespace, replicas, ScaledObject target and
    resource requests; denials as the API server reports a webhook's), spin-operator's
    Deployment per SpinApp (``operators``, 0.1 s after each write), LimitRanges (read by KEDA's
    webhook).

Why kubectl works with the default ``--validate=strict``
    kubectl fetches ``/openapi/v3`` and the document of the object's group-version (for a CRD it
    falls back to the ``api/v1`` document's Namespace PATCH operation), finds the
    ``fieldValidation`` query parameter on the PATCH operation carrying the object's
    ``x-kubernetes-group-version-kind``, and then sends ``fieldValidation=Strict`` instead of
    validating client-side. The same documents serve ``kubectl explain`` and client-side
    ``kubectl apply``'s strategic merge metadata. kubectl's typed clients (``kubectl create
    namespace|configmap|secret|serviceaccount|service|deployment``, ``kubectl auth can-i``) send
    protobuf bodies, which are decoded (``protobuf.py``); answers are always JSON.

Test-only endpoints (no auth), under ``/emulator/v1``
    ``GET /stats`` / ``DELETE /stats``  request counters (see ``KubeEmulator.stats``)
    ``POST /reset``                     wipe all objects and CRDs, restore the initial state
    ``POST /service-backends``          ``{"namespace", "name", "url", "port"?}``: where the
                                        service proxy forwards
    ``GET /service-backends``           the registered backends
    ``POST /spinapps/ready``            ``{"namespace", "name", "readyReplicas"?}``: mark a
                                        SpinApp ready as spin-operator would

Deliberate differences from a real cluster
    No controllers: nothing creates pods, replica sets, endpoints or the ``default`` service
    account; deployment/HPA status stays empty; namespace deletion removes the namespace and
    its objects immediately, unless ``namespace_termination=SECONDS`` (``--namespace-termination``)
    keeps it ``Terminating`` that long first, refusing new content as the real server does. A SpinApp stands
    for the Service spin-operator would create, for the service proxy. No RBAC and no
    admission webhooks except spin-operator's rule that ``replicas`` and
    ``enableAutoscaling: true`` exclude each other (its wording is approximate). CRD versions
    share one storage without conversion. ``continue`` pages read the current state rather than
    a snapshot. Protobuf responses, ``kubectl logs/exec/port-forward/attach`` and pod
    subresources other than status are not served. Bearer tokens: kubectl only sends them over
    TLS, so ``token=`` with kubectl needs ``tls=True`` (self-signed, via ``cryptography``).
"""

from .server import KubeEmulator

__all__ = ["KubeEmulator", "main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m testkit.kubeapi``; see the module docstring for the options."""
    from .__main__ import main as run

    return run(argv)
