"""The validating admission webhooks of the components the emulator stands in for.

A real cluster runs spin-operator's and KEDA's webhooks; the emulator applies their rules
itself, answering as the API server answers a webhook's denial
(k8s.io/apiserver ``pkg/admission/plugin/webhook/errors/statuserror.go``, ``ToStatusErr``): the
webhook's own Status, its message prefixed with ``admission webhook "<name>" denied the
request: ``. controller-runtime (``pkg/webhook/admission/validator_custom.go``) turns a
validator error that is an API status into that status (spin-operator's
``apierrors.NewInvalid``: 422 ``Invalid``; KEDA's failed Deployment GET: 404 ``NotFound``) and
any other error into ``Denied`` (403 ``Forbidden``).

Rules, with their sources:

* SpinApp (spinkube/spin-operator ``internal/webhook/spinapp_validating.go``, webhook
  ``vspinapp.kb.io``): ``spec.executor`` must name a SpinAppExecutor in the SpinApp's own
  namespace (``fetchExecutor``: "We assume that the executor must exist in the same namespace
  as the SpinApp"); ``validateReplicas``: with ``enableAutoscaling`` replicas must be 0/unset,
  without it ``replicas`` must be > 0 (``replicas`` is an ``int32`` with ``omitempty``, so unset
  is 0). ``image`` is required by the CRD schema (checked before admission).
* ScaledObject (kedacore/keda ``apis/keda/v1alpha1/scaledobject_webhook.go``, webhook
  ``vscaledobject.kb.io``, ``verifyCPUMemoryScalers``; skipped for dry runs as KEDA does): with a
  cpu or memory trigger, the ``scaleTargetRef`` Deployment must exist (its GET's NotFound is
  the answer), each of its containers (or the trigger's ``containerName``) needs a request or
  limit of that resource, or a LimitRange default for containers in the namespace; and only
  cpu/memory triggers with ``minReplicaCount`` 0 (or unset) is refused.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .errors import ApiError

SPINAPP_WEBHOOK = "vspinapp.kb.io"
SCALEDOBJECT_WEBHOOK = "vscaledobject.kb.io"

Lookup = Callable[[tuple[str, str], str, str], "dict[str, Any] | None"]
"""``lookup((group, plural), namespace, name)``: a stored object or None."""
ListIn = Callable[[tuple[str, str], str], "list[dict[str, Any]]"]
"""``list_in((group, plural), namespace)``: the stored objects of a kind in a namespace."""

EXECUTORS = ("core.spinkube.dev", "spinappexecutors")
DEPLOYMENTS = ("apps", "deployments")
LIMIT_RANGES = ("", "limitranges")


def _denied(webhook: str, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(code, reason, f'admission webhook "{webhook}" denied the request: {message}', details)


def _go_value(value: Any) -> str:
    """A value as ``field.Invalid`` prints it: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def spinapp_denial(obj: dict[str, Any], namespace: str, lookup: Lookup) -> ApiError | None:
    """spin-operator's ``validateSpinApp``: every field error at once, as ``NewInvalid``."""
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    problems: list[tuple[str, Any, str]] = []
    executor_name = spec.get("executor") or ""
    executor = lookup(EXECUTORS, namespace, executor_name) if executor_name else None
    if not executor_name:
        problems.append(("spec.executor", executor_name,
                         "executor must be set, likely no default executor was set because you have no executors installed"))
    elif executor is None:
        problems.append(("spec.executor", executor_name, "executor does not exist in namespace"))
    replicas = spec.get("replicas") or 0
    autoscaling = spec.get("enableAutoscaling") is True
    if autoscaling and replicas != 0:
        problems.append(("spec.replicas", replicas, "replicas cannot be set when autoscaling is enabled"))
    if not autoscaling and replicas < 1:
        problems.append(("spec.replicas", replicas, "replicas must be > 0"))
    if executor is not None and not (executor.get("spec") or {}).get("createDeployment"):
        for field in ("deploymentAnnotations", "podAnnotations"):
            if spec.get(field):
                problems.append((f"spec.{field}", spec[field],
                                 f"{field} can't be set when the executor does not use operator deployments"))
                break
    if not problems:
        return None
    texts = [f"{path}: Invalid value: {_go_value(value)}: {detail}" for path, value, detail in problems]
    # errs.ToAggregate(): one error as is, several in brackets.
    aggregate = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = [{"reason": "FieldValueInvalid", "message": f"Invalid value: {_go_value(value)}: {detail}", "field": path}
              for path, value, detail in problems]
    return _denied(SPINAPP_WEBHOOK, 422, "Invalid", f'SpinApp.core.spinkube.dev "{name}" is invalid: {aggregate}',
                   {"name": name, "group": "core.spinkube.dev", "kind": "SpinApp", "causes": causes})


def scaledobject_denial(obj: dict[str, Any], namespace: str, lookup: Lookup, list_in: ListIn) -> ApiError | None:
    """KEDA's ``verifyCPUMemoryScalers`` (the rules faasops' ScaledObjects meet)."""
    spec = obj.get("spec") or {}
    triggers = [t for t in spec.get("triggers") or () if isinstance(t, dict)]
    resource_triggers = [t for t in triggers if t.get("type") in ("cpu", "memory")]
    if not resource_triggers:
        return None
    target = spec.get("scaleTargetRef") or {}
    if target.get("kind", "Deployment") != "Deployment" or target.get("apiVersion", "apps/v1") != "apps/v1":
        return None  # KEDA checks Deployments and StatefulSets; the emulator models Deployments
    target_name = target.get("name", "")
    deployment = lookup(DEPLOYMENTS, namespace, target_name)
    if deployment is None:
        return _denied(SCALEDOBJECT_WEBHOOK, 404, "NotFound", f'deployments.apps "{target_name}" not found',
                       {"name": target_name, "group": "apps", "kind": "deployments"})
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    for trigger in resource_triggers:
        resource = trigger["type"]
        wanted = (trigger.get("metadata") or {}).get("containerName") or ""
        for container in containers:
            if wanted and container.get("name") != wanted:
                continue
            if not _resource_set(container.get("resources") or {}, resource) and \
                    not _limit_range_default(list_in(LIMIT_RANGES, namespace), resource):
                return _denied(SCALEDOBJECT_WEBHOOK, 403, "Forbidden",
                               f"the scaledobject has a {resource} trigger but the container {container.get('name')} "
                               f"doesn't have the {resource} request defined")
        # Checked inside the trigger loop, after that trigger's containers, as KEDA does.
        if len(resource_triggers) == len(triggers) and not spec.get("minReplicaCount"):
            return _denied(SCALEDOBJECT_WEBHOOK, 403, "Forbidden", "scaledobject has only cpu/memory triggers AND "
                           "minReplica is 0 (scale to zero doesn't work in this case)")
    return None


def _positive(quantity: Any) -> bool:
    """Whether a resource quantity is above zero (``AsApproximateFloat64() > 0``)."""
    text = str(quantity).strip()
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    try:
        return float(digits) > 0
    except ValueError:
        return False


def _resource_set(resources: dict[str, Any], resource: str) -> bool:
    """KEDA's ``isWorkloadResourceSet``: a request or limit of ``resource`` above zero."""
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    return any(resource in section and _positive(section[resource]) for section in (requests, limits))


def _limit_range_default(limit_ranges: list[dict[str, Any]], resource: str) -> bool:
    """KEDA's ``isContainerResourceLimitSet``: a LimitRange default for containers."""
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or ():
            if item.get("type") == "Container" and _resource_set(
                    {"requests": item.get("defaultRequest") or {}, "limits": item.get("default") or {}}, resource):
                return True
    return False
