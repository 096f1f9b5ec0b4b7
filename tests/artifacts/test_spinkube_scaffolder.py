"""SpinKube manifests rendered from the Jinja templates."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from build_support import make_function, make_project
from faasops import hookspecs
from faasops.errors import ProviderError
from faasops.model import Autoscaling, ProviderConfig, Resources, SecretRef
from faasops.plugins import spinkube
from faasops.plugins.spinkube import SpinKubeScaffolder, function_id
from faasops.providers import Scaffolder

IMAGE = "registry.example.com/demo/hello@sha256:" + "ab" * 32
BASE_LABELS = {
    "app.kubernetes.io/managed-by": "faasops",
    "app.kubernetes.io/name": "hello",
    "function_id": "demo.hello",
    "workspace_id": "demo",
}


def render(tmp_path: Path, scaffolder: SpinKubeScaffolder | None = None, namespace: str = "", project_fields=None, **fields):
    function = make_function(tmp_path / "hello", **fields)
    project = make_project(tmp_path, (function,), namespace=namespace, **(project_fields or {}))
    return (scaffolder or SpinKubeScaffolder()).render(project, function, IMAGE)


def test_plain_function_renders_one_spinapp(tmp_path):
    manifests = render(tmp_path)
    assert manifests == [
        {
            "apiVersion": "core.spinkube.dev/v1alpha1",
            "kind": "SpinApp",
            "metadata": {"name": "hello", "namespace": "demo", "labels": BASE_LABELS},
            "spec": {
                "image": IMAGE,
                "executor": "containerd-shim-spin",
                "replicas": 1,
                "podLabels": BASE_LABELS,
            },
        }
    ]


def test_workspace_namespace_resources_variables_labels_and_annotations(tmp_path):
    (spinapp,) = render(
        tmp_path,
        namespace="team-a",
        replicas=3,
        resources=Resources(cpu_limit="500m", memory_limit="128Mi", memory_request="64Mi"),
        variables={"greeting": "hello", "color": "blue"},
        labels={"team": "payments", "function_id": "spoofed"},
        annotations={"prometheus.io/scrape": "true"},
    )
    labels = {**BASE_LABELS, "team": "payments"}  # faasops' own labels win
    assert spinapp["metadata"] == {
        "name": "hello",
        "namespace": "team-a",
        "labels": labels,
        "annotations": {"prometheus.io/scrape": "true"},
    }
    assert spinapp["spec"] == {
        "image": IMAGE,
        "executor": "containerd-shim-spin",
        "replicas": 3,
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"memory": "64Mi"}},
        "variables": [{"name": "color", "value": "blue"}, {"name": "greeting", "value": "hello"}],
        "podLabels": labels,
        "podAnnotations": {"prometheus.io/scrape": "true"},
    }


def test_hpa_autoscaling_renders_a_spinapp_without_replicas_and_an_hpa(tmp_path):
    spinapp, hpa = render(
        tmp_path, replicas=4, autoscaling=Autoscaling("hpa", 2, 10, cpu_utilization=60, memory_utilization=75)
    )
    assert spinapp["spec"]["enableAutoscaling"] is True
    assert "replicas" not in spinapp["spec"]
    assert hpa == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "hello", "namespace": "demo", "labels": BASE_LABELS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 75}}},
            ],
        },
    }


def test_keda_autoscaling_renders_a_scaledobject_with_utilization_triggers(tmp_path):
    spinapp, scaled = render(tmp_path, autoscaling=Autoscaling("keda", 1, 5, memory_utilization=70))
    assert spinapp["spec"]["enableAutoscaling"] is True and "replicas" not in spinapp["spec"]
    assert scaled == {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "hello", "namespace": "demo", "labels": BASE_LABELS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
            "minReplicaCount": 1,
            "maxReplicaCount": 5,
            "triggers": [{"type": "memory", "metricType": "Utilization", "metadata": {"value": "70"}}],
        },
    }


def test_autoscaling_without_metrics_targets_80_percent_cpu(tmp_path):
    _, hpa = render(tmp_path, autoscaling=Autoscaling("hpa", 1, 3))
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]


def test_spot_uses_the_spot_executor_and_labels_pods(tmp_path):
    (spinapp,) = render(tmp_path, spot=True)
    assert spinapp["spec"]["executor"] == "containerd-shim-spin-spot"
    assert spinapp["spec"]["podLabels"] == {**BASE_LABELS, "faasops.dev/spot": "true"}
    assert spinapp["metadata"]["labels"] == BASE_LABELS


def test_spot_executor_option_overrides_the_default_name(tmp_path):
    (spinapp,) = render(tmp_path, SpinKubeScaffolder({"spot_executor": "spin-on-spot"}), spot=True)
    assert spinapp["spec"]["executor"] == "spin-on-spot"


def test_secrets_become_secret_key_refs(tmp_path):
    (spinapp,) = render(
        tmp_path,
        variables={"greeting": "hi"},
        secrets=(
            SecretRef("DB_PASSWORD", "kubernetes", "db-credentials", "password"),
            SecretRef("API_TOKEN", "kubernetes", "tokens"),
            SecretRef("STRIPE_KEY", "secretsmanager", "prod/stripe", "key"),
        ),
    )
    # Secrets are Spin variables under their lower-case names (the operator passes them to Spin
    # as SPIN_VARIABLE_<NAME>).
    assert spinapp["spec"]["variables"] == [
        {"name": "greeting", "value": "hi"},
        {"name": "api_token", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "API_TOKEN"}}},
        {"name": "db_password", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}},
        {"name": "stripe_key", "valueFrom": {"secretKeyRef": {"name": "hello-secrets", "key": "STRIPE_KEY"}}},
    ]


INJECTIONS = [
    "x\nkind: Secret",
    "x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: stolen}",
    "{{ 7*7 }}",
    "{% raw %}",
    "a: b",
    "} , evil: {",
    "' \" \\ #",
    "line\u2028separator\u0085next",
    "!!python/object/apply:os.system ['id']",
    "&anchor *alias",
    "- item",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injected_values_render_verbatim_without_changing_the_structure(tmp_path, value):
    manifests = render(
        tmp_path,
        labels={"team": value, value: "key-injection"},
        variables={"greeting": value},
        annotations={"note": value},
        autoscaling=Autoscaling("hpa", 1, 2),
    )
    assert [m["kind"] for m in manifests] == ["SpinApp", "HorizontalPodAutoscaler"]
    spinapp = manifests[0]
    assert set(spinapp) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(spinapp["metadata"]) == {"name", "namespace", "labels", "annotations"}
    assert set(spinapp["spec"]) == {"image", "executor", "enableAutoscaling", "variables", "podLabels", "podAnnotations"}
    assert spinapp["metadata"]["labels"] == {**BASE_LABELS, "team": value, value: "key-injection"}
    assert spinapp["metadata"]["annotations"] == {"note": value}
    assert spinapp["spec"]["variables"] == [{"name": "greeting", "value": value}]
    assert spinapp["spec"]["podAnnotations"] == {"note": value}


@pytest.mark.parametrize("value", INJECTIONS[:3])
def test_injected_names_stay_names(tmp_path, value):
    function = make_function(tmp_path / "src", name=value, workspace="demo", executor=value)
    project = make_project(tmp_path, (function,), namespace="demo")
    (spinapp,) = SpinKubeScaffolder().render(project, function, value)
    assert spinapp["metadata"]["name"] == value
    assert spinapp["spec"]["image"] == value
    assert spinapp["spec"]["executor"] == value
    assert spinapp["metadata"]["labels"]["app.kubernetes.io/name"] == value


def test_render_is_pure(tmp_path):
    function = make_function(tmp_path / "hello", autoscaling=Autoscaling("keda", 1, 3, cpu_utilization=50))
    project = make_project(tmp_path, (function,))
    scaffolder = SpinKubeScaffolder()
    assert scaffolder.render(project, function, IMAGE) == scaffolder.render(project, function, IMAGE)
    assert isinstance(scaffolder, Scaffolder)


def test_function_id_is_workspace_dot_function_and_fits_a_label_value():
    assert function_id("payments", "checkout") == "payments.checkout"
    long_id = function_id("w" * 40, "f" * 40)
    assert len(long_id) == 63
    assert long_id.startswith("w" * 40 + ".") and long_id != function_id("w" * 40, "f" * 39 + "g")
    assert function_id("w" * 40, "f" * 40) == long_id  # stable


# --------------------------------------------------------------------------- user templates


def write_templates(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


USER_SPINAPP = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
  labels: {{ labels }}
spec:
  image: {{ image }}
  executor: {{ executor }}
  enableAutoscaling: true
  serviceAccountName: {{ options.service_account }}
  checks:
    readiness:
      httpGet:
        path: /healthz
"""


def test_user_templates_override_builtins_and_missing_files_fall_back(tmp_path):
    templates = write_templates(tmp_path / "templates", **{"spinapp.yaml.j2": USER_SPINAPP})
    scaffolder = SpinKubeScaffolder({"service_account": "functions"})
    spinapp, hpa = render(
        tmp_path, scaffolder, project_fields={"templates_dir": templates}, autoscaling=Autoscaling("hpa", 1, 4)
    )
    assert spinapp["spec"]["serviceAccountName"] == "functions"
    assert spinapp["spec"]["checks"] == {"readiness": {"httpGet": {"path": "/healthz"}}}
    assert hpa["kind"] == "HorizontalPodAutoscaler" and hpa["spec"]["maxReplicas"] == 4  # built-in


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("kind: SpinApp\nmetadata: [unclosed\n", "YAML syntax error"),
        ("{% if %}", "template syntax error"),
        ("name: {{ no_such_value }}\n", "no_such_value"),
        ("x: {{ ''.__class__.__mro__ }}\n", "cannot render template"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: demo}\n", "kind 'Secret' is not allowed"),
        ("- just\n- a list\n", "must be a mapping"),
        (
            "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {name: {{ name }}, namespace: other}\n"
            "spec: {image: {{ image }}, executor: x}\n",
            "must be in namespace 'demo'",
        ),
        (
            "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {name: {{ name }}, namespace: demo}\n"
            "spec: {executor: x}\n",
            "has no spec.image",
        ),
        (
            "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {name: {{ name }}, namespace: demo}\n"
            "spec: {image: {{ image }}, executor: x, replicas: 2, enableAutoscaling: true}\n",
            "replicas together with enableAutoscaling",
        ),
        (
            "apiVersion: core.spinkube.dev/v2\nkind: SpinApp\nmetadata: {name: {{ name }}, namespace: demo}\n"
            "spec: {image: {{ image }}, executor: x}\n",
            "must have apiVersion core.spinkube.dev/v1alpha1",
        ),
        ("# nothing rendered\n", "exactly one SpinApp"),
    ],
    ids=[
        "invalid-yaml",
        "jinja-syntax",
        "undefined",
        "sandbox",
        "disallowed-kind",
        "not-a-mapping",
        "other-namespace",
        "no-image",
        "replicas-with-autoscaling",
        "wrong-api-version",
        "no-spinapp",
    ],
)
def test_bad_user_templates_fail_with_a_clear_error(tmp_path, template, message):
    templates = write_templates(tmp_path / "templates", **{"spinapp.yaml.j2": template})
    with pytest.raises(ProviderError) as caught:
        render(tmp_path, project_fields={"templates_dir": templates})
    assert message in str(caught.value)
    if message != "exactly one SpinApp":
        # Located relative to the project root, like every faas.yaml problem.
        assert str(caught.value).startswith("templates/spinapp.yaml.j2")


def test_allowed_kinds_option_admits_extra_documents(tmp_path):
    extra = USER_SPINAPP.replace("  enableAutoscaling: true\n", "") + (
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name ~ '-config' }}\n  namespace: {{ namespace }}\n"
        "data: {{ {'greeting': function.variables.greeting} }}\n"
    )
    templates = write_templates(tmp_path / "templates", **{"spinapp.yaml.j2": extra})
    scaffolder = SpinKubeScaffolder({"allowed_kinds": ["ConfigMap"], "service_account": "default"})
    spinapp, config_map = render(
        tmp_path, scaffolder, project_fields={"templates_dir": templates}, variables={"greeting": "x\nkind: Secret"}
    )
    assert config_map["data"] == {"greeting": "x\nkind: Secret"}


# ------------------------------------------------------------------------------------- plugin


def test_plugin_advertises_and_creates_the_scaffolder(tmp_path):
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(spinkube)
    pm.check_pending()
    assert ("scaffolder", "spinkube") in [(s, t) for r in pm.hook.faasops_provider_types() for s, t, _ in r]
    project = make_project(tmp_path)
    scaffolder = pm.hook.faasops_scaffolder(
        config=ProviderConfig("scaffolder", "spinkube", {"spot_executor": "x"}), project=project
    )
    assert isinstance(scaffolder, SpinKubeScaffolder) and scaffolder.options == {"spot_executor": "x"}
    assert pm.hook.faasops_scaffolder(config=ProviderConfig("scaffolder", "helm"), project=project) is None


def _random_value(rng, depth: int = 0):
    """Nested mappings and lists of the values templates see, special characters included."""
    alphabet = "abcXYZ09 -_./:@'\"\\#&*!{}[],|>%\t\né€\u2028\x00\x7f"
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind == 1:
        return "".join(rng.choice("abcdef-0123.") for _ in range(rng.randrange(1, 12)))
    if kind == 2:
        return rng.choice([0, 1, -7, 2**40, True, False, None])
    if kind == 3:
        return rng.choice([0.5, -1.25, 1e300])
    if kind in (4, 5):
        return rng.choice(["true", "null", "1", "~", "yes", "on", "0x10", "1e3", ""])
    if kind in (6, 7):
        keys = [rng.choice(["app", "team", "a.b/c", "x y", "é", "1", "true"]) for _ in range(rng.randrange(4))]
        return {key: _random_value(rng, depth + 1) for key in keys}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_the_json_shortcut_writes_exactly_what_the_flow_writer_does():
    import random

    import yaml

    rng = random.Random(7)
    shortcut = 0
    for _ in range(5000):
        value = _random_value(rng)
        written = spinkube.yaml_value(value)
        assert written == spinkube._flow(value), value
        if isinstance(value, (dict, list)) and spinkube._plain_json(value):
            shortcut += 1
            assert yaml.safe_load(written) == value
    assert shortcut > 500  # the shortcut was taken, and agreed, many times


def test_render_digest_follows_what_render_would_produce(tmp_path):
    function = make_function(tmp_path / "hello")
    project = make_project(tmp_path, (function,))
    digest = SpinKubeScaffolder().render_digest(project, function, IMAGE)

    assert digest.startswith("sha256:") and digest == SpinKubeScaffolder().render_digest(project, function, IMAGE)
    assert SpinKubeScaffolder().render_digest(project, function, IMAGE.replace("ab", "cd")) != digest
    labelled = make_function(tmp_path / "hello", labels={"team": "blue"})
    assert SpinKubeScaffolder().render_digest(make_project(tmp_path, (labelled,)), labelled, IMAGE) != digest
    templates = tmp_path / "templates"
    templates.mkdir()
    source = (spinkube.BUILTIN_TEMPLATES / "spinapp.yaml.j2").read_text()
    (templates / "spinapp.yaml.j2").write_text(source.replace("executor: {{ executor }}", "executor: {{ executor }}\n  # edited"))
    edited = make_project(tmp_path, (function,), templates_dir=templates)
    assert SpinKubeScaffolder().render_digest(edited, function, IMAGE) != digest
