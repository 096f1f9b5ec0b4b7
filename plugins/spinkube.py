"""The ``spinkube`` scaffolder: a function's SpinApp, HPA and KEDA ScaledObject manifests.

Manifests come from Jinja templates — ``spinapp.yaml.j2``, ``hpa.yaml.j2`` and
``keda-scaledobject.yaml.j2`` — taken from the project's ``templates_dir`` when it has a file of
that name, else from the built-ins in :mod:`faasops.templates`. Rendering is injection-safe:

* templates run in :class:`faasops.template_sandbox.TemplateSandbox` (Jinja's sandbox with
  ``StrictUndefined``, bounded steps, output, call depth and time, templates read only from the
  template directories);
* every ``{{ … }}`` is *finalized* into one double-quoted, escaped YAML scalar (or a flow
  mapping/list of them), so a label or variable value such as ``"x\\nkind: Secret"`` or
  ``"{{ 7*7 }}"`` arrives verbatim and can never add keys or documents;
* the output is read by :func:`faasops.template_sandbox.read_rendered` (the limits of
  ``faas.yaml`` on aliases, values, text and nesting) and each document is checked (kind allowed,
  apiVersion, name, namespace = the workspace's, SpinApp ``image``/``executor``, no ``replicas``
  with ``enableAutoscaling``). A failure is a :class:`~faasops.errors.ProviderError` naming the
  template file (and line, or the line of the rendered output).

Mapping decisions (SpinApp ``core.spinkube.dev/v1alpha1`` has no env, nodeSelector or
tolerations):

* **Labels.** SpinApp metadata and ``podLabels`` carry the function's own labels plus
  ``function_id`` (:func:`function_id`: ``<workspace>.<function>``, the id Loki queries
  filter on), ``workspace_id`` (the workspace name), ``app.kubernetes.io/name`` (the function
  name) and ``app.kubernetes.io/managed-by: faasops``; faasops' labels win over user labels of
  the same key. The function's annotations go on the SpinApp and on its pods.
* **Variables and secrets** become SpinApp ``variables``, named by
  :func:`faasops.oci.spin_variable_name` (lower case; the artifact declares the same names):
  ``variables`` as name/value, secrets as ``valueFrom.secretKeyRef`` — for ``source: kubernetes``
  the Secret ``ref`` and ``key`` (default: the secret's name); for ``ssm``/``secretsmanager`` the
  Kubernetes Secret ``<function>-secrets`` (option ``synced_secret_name``, a format string with
  ``{function}`` and ``{workspace}``) under the key ``<secret name>``, which the platform keeps
  in sync (e.g. an External Secrets Operator ``ExternalSecret``). Secret values never pass
  through faasops. SpinKube gives a component its secrets as Spin variables
  (``spin_sdk.variables.get("db_password")`` for ``DB_PASSWORD``), not in ``os.environ``: the
  container environment feeds Spin's variable provider and the component's own environment is
  fixed in the artifact.
* **env** is not rendered here: Spin components get their environment from the locked app, so
  :func:`faasops.oci.spin_artifact` bakes ``env`` into the artifact (a change of ``env`` is a new
  image digest, hence a rollout).
* **Spot.** With ``spot: true`` the SpinApp runs on the executor ``<executor>-spot`` (option
  ``spot_executor`` overrides), and pods get the label ``faasops.dev/spot: "true"``. That
  executor names the RuntimeClass ``wasmtime-spin-v2-spot`` (deployer option
  ``spot_runtime_class``), whose ``scheduling.nodeSelector`` and ``scheduling.tolerations`` the
  platform points at spot nodes.
* **Executors** are not part of a function's manifests: the deployer makes the one its SpinApp
  names exist in the namespace (:class:`ExecutorTemplate`, ``spinappexecutor.yaml.j2``).
* **Autoscaling.** ``enableAutoscaling: true`` and no ``replicas`` (the operator rejects both);
  the HPA / ScaledObject targets the Deployment SpinKube creates under the app's name, with
  cpu/memory utilization metrics (80 % cpu when neither is given).

Options: ``spot_executor``, ``synced_secret_name``, ``allowed_kinds`` (extra kinds a user
template may emit). Templates also see ``options`` (all of them) for their own settings.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

import faasops.templates
from faasops.errors import ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Function, Project, ProviderConfig
from faasops.oci import spin_variable_name
from faasops.template_sandbox import TemplateSandbox, read_rendered

TYPE = "spinkube"
SPINAPP_TEMPLATE = "spinapp.yaml.j2"
HPA_TEMPLATE = "hpa.yaml.j2"
KEDA_TEMPLATE = "keda-scaledobject.yaml.j2"
EXECUTOR_TEMPLATE = "spinappexecutor.yaml.j2"
EXECUTOR_KIND = ("core.spinkube.dev/v1alpha1", "SpinAppExecutor")
# The RuntimeClasses of the executors faasops creates: that of spin-operator's sample executor
# (config/samples/spin-shim-executor.yaml), and a spot twin whose `scheduling` places pods on
# spot nodes (SpinApps have no nodeSelector or tolerations of their own).
DEFAULT_RUNTIME_CLASS = "wasmtime-spin-v2"
DEFAULT_SPOT_RUNTIME_CLASS = "wasmtime-spin-v2-spot"
BUILTIN_TEMPLATES = Path(faasops.templates.__file__).parent

FUNCTION_ID_LABEL = "function_id"
WORKSPACE_ID_LABEL = "workspace_id"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "faasops"
SPOT_LABEL = "faasops.dev/spot"
DEFAULT_CPU_UTILIZATION = 80
DEFAULT_SYNCED_SECRET_NAME = "{function}-secrets"

#: kind → apiVersion of what the built-in templates produce.
KINDS = {
    "SpinApp": "core.spinkube.dev/v1alpha1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "ScaledObject": "keda.sh/v1alpha1",
}
_LABEL_VALUE_MAX = 63
_YAML_WIDTH = 2**31 - 1  # never fold a scalar over lines


def function_id(workspace: str, name: str) -> str:
    """The stable id of a function in labels and log queries: ``<workspace>.<function>``.

    Workspace and function names are DNS labels (no dots), so the id is unambiguous. Ids longer
    than a label value allows (63) keep their first 52 characters and end in ``-`` plus 10 hex
    digits of the sha256 of the full id.
    """
    full = f"{workspace}.{name}"
    if len(full) <= _LABEL_VALUE_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{full[:52].rstrip('-_.')}-{digest}"


def yaml_value(value: Any) -> str:
    """``value`` as a single-line YAML flow node: strings double-quoted with every special
    character escaped, mappings and lists in flow style, numbers/booleans/null as JSON."""
    if isinstance(value, (dict, list)) and _plain_json(value):
        # Mappings and lists of printable-ASCII strings, integers, booleans and nulls come out
        # the same from json.dumps, in one call instead of one per value (most of a render).
        return json.dumps(value)
    return _flow(value)


def _flow(value: Any) -> str:
    if isinstance(value, str):
        if value.isascii() and value.isprintable():
            # What PyYAML emits for printable ASCII (only `"` and `\` escaped), 50× faster.
            return json.dumps(value)
        return yaml.safe_dump(value, default_style='"', width=_YAML_WIDTH, allow_unicode=True).rstrip("\n")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_flow(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing value
    raise TypeError(f"cannot render {type(value).__name__} into a manifest")


def _plain_json(value: Any, depth: int = 0) -> bool:
    """Whether ``json.dumps(value)`` is exactly what :func:`yaml_value` writes for it."""
    if depth > 16:
        return False
    if isinstance(value, dict):
        return all(type(k) is str and k.isascii() and k.isprintable() and _plain_json(v, depth + 1)
                   for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    if isinstance(value, str):
        return value.isascii() and value.isprintable()
    return value is None or type(value) is bool or type(value) is int


class SpinKubeScaffolder:
    """A :class:`faasops.providers.Scaffolder` rendering SpinKube manifests from templates."""

    def __init__(self, options: Mapping[str, Any] | None = None):
        self.options = dict(options or {})
        self.allowed_kinds = set(KINDS) | set(self.options.get("allowed_kinds", ()))
        self._sandboxes: dict[Path | None, TemplateSandbox] = {}

    def render(self, project: Project, function: Function, artifact: str) -> list[dict[str, Any]]:
        """The SpinApp (and HPA or ScaledObject) of ``function`` running ``artifact`` (pure)."""
        if not artifact:
            raise ProviderError(f"{function.address}: no image to deploy")
        context = self.context(project, function, artifact)
        manifests: list[dict[str, Any]] = []
        for name in _template_names(function):
            manifests.extend(self._render_template(project, name, context))
        spinapps = [m for m in manifests if m["kind"] == "SpinApp"]
        if len(spinapps) != 1 or spinapps[0]["metadata"]["name"] != function.name:
            raise ProviderError(
                f"{function.address}: templates must produce exactly one SpinApp named {function.name!r}"
            )
        return manifests

    def render_digest(self, project: Project, function: Function, artifact: str) -> str:
        """The digest of the templates' output for ``function`` running ``artifact``: it changes
        whenever :meth:`render`'s manifests would, and costs a fifth of rendering them (the
        YAML is not parsed)."""
        context = self.context(project, function, artifact)
        digest = hashlib.sha256()
        for name in _template_names(function):
            text, _ = self._render_text(project, name, context)
            digest.update(f"{name}\0{text}\0".encode())
        return "sha256:" + digest.hexdigest()

    def context(self, project: Project, function: Function, artifact: str) -> dict[str, Any]:
        """What the templates see: plain values only."""
        workspace = project.workspace(function.workspace)
        if workspace is None:
            raise ProviderError(f"{function.address}: workspace {function.workspace!r} is not declared")
        namespace = workspace.spec()["namespace"]
        labels = {
            **function.labels,
            NAME_LABEL: function.name,
            MANAGED_BY_LABEL: MANAGED_BY,
            FUNCTION_ID_LABEL: function_id(function.workspace, function.name),
            WORKSPACE_ID_LABEL: function.workspace,
        }
        pod_labels = dict(labels)
        executor = function.executor
        if function.spot:
            executor = self.options.get("spot_executor") or f"{function.executor}-spot"
            pod_labels[SPOT_LABEL] = "true"
        return {
            "name": function.name,
            "namespace": namespace,
            "image": artifact,
            "executor": executor,
            "replicas": None if function.autoscaling else function.replicas,
            "autoscaling": _autoscaling(function),
            "resources": _resources(function),
            "variables": self._variables(function),
            "labels": dict(sorted(labels.items())),
            "pod_labels": dict(sorted(pod_labels.items())),
            "annotations": dict(sorted(function.annotations.items())),
            "spot": function.spot,
            "function_id": labels[FUNCTION_ID_LABEL],
            "workspace_id": function.workspace,
            "function": {"address": function.address, **function.spec()},
            "workspace": {"name": workspace.name, **workspace.spec()},
            # A copy: a template could otherwise change the options every later render sees.
            "options": copy.deepcopy(self.options),
        }

    def _variables(self, function: Function) -> list[dict[str, Any]]:
        variables: list[dict[str, Any]] = [
            {"name": spin_variable_name(name), "value": value} for name, value in sorted(function.variables.items())
        ]
        synced = self.options.get("synced_secret_name", DEFAULT_SYNCED_SECRET_NAME)
        for secret in sorted(function.secrets, key=lambda s: s.name):
            if secret.source == "kubernetes":
                ref = {"name": secret.ref, "key": secret.key or secret.name}
            else:
                ref = {"name": synced.format(function=function.name, workspace=function.workspace), "key": secret.name}
            variables.append({"name": spin_variable_name(secret.name), "valueFrom": {"secretKeyRef": ref}})
        return variables

    # ------------------------------------------------------------------------------ rendering

    def _sandbox(self, project: Project) -> TemplateSandbox:
        return project_sandbox(project, self._sandboxes)

    def _render_text(self, project: Project, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """The template's output, and where the template is (for messages)."""
        sandbox = self._sandbox(project)
        return sandbox.render(name, context), sandbox.filename(name)

    def _render_template(self, project: Project, name: str, context: dict[str, Any]) -> list[dict[str, Any]]:
        text, where = self._render_text(project, name, context)
        documents = read_rendered(text, f"{where} (rendered for {context['function']['address']})")
        for document in documents:
            problem = self._problem(document, context["namespace"])
            if problem:
                raise ProviderError(f"{where}: {problem}")
        return documents

    def _problem(self, doc: Any, namespace: str) -> str | None:
        """What is wrong with one rendered document, or None."""
        if not isinstance(doc, dict):
            return f"each document must be a mapping, got {type(doc).__name__}"
        kind = doc.get("kind")
        if kind not in self.allowed_kinds:
            return f"kind {kind!r} is not allowed (allowed: {', '.join(sorted(self.allowed_kinds))})"
        api_version = doc.get("apiVersion")
        if not isinstance(api_version, str) or not api_version:
            return f"{kind} has no apiVersion"
        if kind in KINDS and api_version != KINDS[kind]:
            return f"{kind} must have apiVersion {KINDS[kind]}, not {api_version!r}"
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
            return f"{kind} has no metadata.name"
        if metadata.get("namespace") != namespace:
            return f"{kind} {metadata['name']} must be in namespace {namespace!r}, not {metadata.get('namespace')!r}"
        if kind == "SpinApp":
            spec = doc.get("spec")
            if not isinstance(spec, dict):
                return f"SpinApp {metadata['name']} has no spec"
            for field in ("image", "executor"):
                if not isinstance(spec.get(field), str) or not spec[field]:
                    return f"SpinApp {metadata['name']} has no spec.{field}"
            if spec.get("enableAutoscaling") is True and "replicas" in spec:
                return f"SpinApp {metadata['name']} sets spec.replicas together with enableAutoscaling: true"
        return None


class ExecutorTemplate:
    """Renders the SpinAppExecutor a SpinApp names, for the deployers that create it.

    spin-operator looks a SpinApp's executor up in the SpinApp's own namespace only
    (spinkube/spin-operator ``internal/webhook/spinapp_validating.go``, ``fetchExecutor``: "We
    assume that the executor must exist in the same namespace as the SpinApp"), and faasops
    creates workspace namespaces, so a deployer makes the executor exist there before the
    SpinApp. The template is ``spinappexecutor.yaml.j2`` (the project's ``templates/`` first),
    rendered in the same sandbox as the function templates; it sees ``executor`` (the name),
    ``namespace``, ``spot``, ``runtime_class``, ``labels`` and ``options`` (the deployer's).
    """

    def __init__(self, runtime_class: str = DEFAULT_RUNTIME_CLASS,
                 spot_runtime_class: str = DEFAULT_SPOT_RUNTIME_CLASS, options: Mapping[str, Any] | None = None):
        self.runtime_class = runtime_class
        self.spot_runtime_class = spot_runtime_class
        self.options = dict(options or {})
        self._sandboxes: dict[Path | None, TemplateSandbox] = {}

    def render(self, project: Project, function: Function, spinapp: dict[str, Any]) -> dict[str, Any] | None:
        """The executor ``spinapp`` (of ``function``) names, in its namespace; None when the
        template renders nothing (the platform provides executors)."""
        name, namespace = spinapp["spec"]["executor"], spinapp["metadata"]["namespace"]
        context = {
            "executor": name,
            "namespace": namespace,
            "spot": function.spot,
            "runtime_class": self.spot_runtime_class if function.spot else self.runtime_class,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "options": copy.deepcopy(self.options),  # a template could otherwise change them
        }
        sandbox = self._sandbox(project)
        text, where = sandbox.render(EXECUTOR_TEMPLATE, context), sandbox.filename(EXECUTOR_TEMPLATE)
        documents = read_rendered(text, f"{where} (rendered for {function.address})")
        if not documents:
            return None
        executor = documents[0]
        metadata = executor.get("metadata") if isinstance(executor, dict) else None
        if len(documents) > 1 or not isinstance(metadata, dict) \
                or (executor.get("apiVersion"), executor.get("kind")) != EXECUTOR_KIND:
            raise ProviderError(f"{where}: must render one {EXECUTOR_KIND[1]} ({EXECUTOR_KIND[0]}) or nothing")
        if metadata.get("name") != name or metadata.get("namespace") != namespace:
            raise ProviderError(
                f"{where}: the {EXECUTOR_KIND[1]} must be {namespace}/{name} (the SpinApp's executor), "
                f"not {metadata.get('namespace')}/{metadata.get('name')}"
            )
        return executor

    def _sandbox(self, project: Project) -> TemplateSandbox:
        return project_sandbox(project, self._sandboxes)


def project_sandbox(project: Project, sandboxes: dict[Path | None, TemplateSandbox]) -> TemplateSandbox:
    """The sandbox reading the project's ``templates_dir`` first, then the built-ins; made once
    per directory and kept in ``sandboxes``."""
    sandbox = sandboxes.get(project.templates_dir)
    if sandbox is None:
        search = [project.templates_dir] if project.templates_dir else []
        sandbox = TemplateSandbox([*search, BUILTIN_TEMPLATES], finalize=yaml_value, root=project.root)
        sandboxes[project.templates_dir] = sandbox
    return sandbox


def _template_names(function: Function) -> list[str]:
    names = [SPINAPP_TEMPLATE]
    if function.autoscaling:
        names.append(HPA_TEMPLATE if function.autoscaling.type == "hpa" else KEDA_TEMPLATE)
    return names


def _autoscaling(function: Function) -> dict[str, Any] | None:
    scaling = function.autoscaling
    if scaling is None:
        return None
    metrics = [
        {"resource": resource, "utilization": utilization}
        for resource, utilization in (("cpu", scaling.cpu_utilization), ("memory", scaling.memory_utilization))
        if utilization is not None
    ] or [{"resource": "cpu", "utilization": DEFAULT_CPU_UTILIZATION}]
    return {"type": scaling.type, "min": scaling.min_replicas, "max": scaling.max_replicas, "metrics": metrics}


def _resources(function: Function) -> dict[str, dict[str, str]]:
    """SpinApp ``resources`` with unset quantities and empty sections left out."""
    sections = {
        section: {k: v for k, v in quantities.items() if v is not None}
        for section, quantities in function.resources.as_spec().items()
    }
    return {section: quantities for section, quantities in sections.items() if quantities}


# ------------------------------------------------------------------------------------------ hooks


# The options of a deployer that creates executors (kubernetes, local, gitops). No defaults are
# filled in: the template sees the deployer's options as written.
EXECUTOR_OPTIONS: dict[str, dict[str, Any]] = {
    "create_executors": {"type": "boolean", "description": "create the SpinAppExecutor each SpinApp names, from "
                         "spinappexecutor.yaml.j2 (default true)"},
    "runtime_class": {"type": "string", "minLength": 1,
                      "description": f"RuntimeClass of the executor (default {DEFAULT_RUNTIME_CLASS})"},
    "spot_runtime_class": {"type": "string", "minLength": 1, "description": "RuntimeClass of the spot executor "
                           f"(default {DEFAULT_SPOT_RUNTIME_CLASS})"},
}

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spot_executor": {"type": "string", "minLength": 1,
                          "description": "executor of spot functions (default <executor>-spot)"},
        "synced_secret_name": {"type": "string", "minLength": 1, "description": "name of the Secret synced for "
                               f"a function's secrets (default {DEFAULT_SYNCED_SECRET_NAME})"},
        "allowed_kinds": {"type": "array", "items": {"type": "string"},
                          "description": "extra kinds a user template may emit"},
    },
    # Templates read their own settings from `options`: undeclared options are theirs.
    "x-template-settings": True,
}


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("scaffolder", TYPE, OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("scaffolder", TYPE, "renders SpinApp (SpinKube) manifests, with HPA or KEDA autoscaling")]


@hookimpl
def faasops_scaffolder(config: ProviderConfig, project: Project) -> SpinKubeScaffolder | None:
    if config.type != TYPE:
        return None
    return SpinKubeScaffolder(config.options)
