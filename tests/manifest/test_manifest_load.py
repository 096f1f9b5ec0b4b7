"""Loading valid projects into the model: every field, split manifests, overlays, defaults,
backend presets; and the errors that span files."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

from faasops.errors import ManifestError
from faasops.manifest import MANIFEST_NAME, load_project, yaml_source
from faasops.model import (
    Autoscaling,
    Function,
    Location,
    Project,
    ProviderConfig,
    Resources,
    SecretRef,
    Workspace,
)

HANDLER = """\
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"hello")
"""


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Writes ``{relative path: text}`` (dedented) under a fresh project root and returns it."""

    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "project"
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        return root

    return make


FULL_MANIFEST = """\
    # yaml-language-server: $schema=./faas.yaml.schema
    apiVersion: faasops/v1
    project: demo
    backend: aws
    providers:
      state: {type: dynamodb, table: faasops-state, region: eu-west-1, endpoint_url: "http://127.0.0.1:5001"}
    templates: deploy/templates
    defaults:
      resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}
      replicas: 1
      executor: containerd-shim-spin
      env: {LOG_LEVEL: info}
    workspaces:
      - name: demo
        namespace: demo-prod
        labels: {team: blue}
        protect: false
        functions:
          - name: hello
            source: functions/hello
            handler: app
            env: {GREETING: hi}
            variables: {greeting: hi}
            secrets:
              - name: DB_PASSWORD
                kubernetes: {secret: db-credentials, key: password}
              - name: API_KEY
                ssm: /prod/api-key
              - name: TOKEN
                secretsManager: {id: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api", key: token}
            resources: {requests: {cpu: 0.25, memory: 64Mi}, limits: {cpu: 1, memory: 256Mi}}
            autoscaling: {type: hpa, min: 1, max: 10, cpu: 70, memory: 80}
            spot: true
            protect: true
            executor: containerd-shim-spin
            labels: {tier: web}
            annotations: {note: x}
          - name: worker
            source: functions/worker
            handler: main
            replicas: 2
"""


def demo_manifest(functions: str, defaults: str = "") -> str:
    """A root manifest whose one workspace, demo, holds ``functions`` (YAML list entries)."""
    text = "apiVersion: faasops/v1\nproject: demo\n"
    if defaults:
        text += "defaults:\n" + textwrap.indent(textwrap.dedent(defaults), "  ")
    return text + "workspaces:\n  - name: demo\n    functions:\n" + textwrap.indent(textwrap.dedent(functions), "      ")


def test_full_featured_manifest_loads_into_exact_model_values(make_project):
    root = make_project({
        MANIFEST_NAME: FULL_MANIFEST,
        "functions/hello/app.py": HANDLER,
        "functions/worker/main.py": HANDLER,
        "deploy/templates/spinapp.yaml.j2": "",
    })

    project = load_project(root)

    resolved = root.resolve()
    assert project == Project(
        name="demo",
        root=resolved,
        providers={
            "state": ProviderConfig("state", "dynamodb", {"table": "faasops-state", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5001"}),
            "sources": ProviderConfig("sources", "s3"),
            "builder": ProviderConfig("builder", "componentize-py"),
            "registry": ProviderConfig("registry", "ecr"),
            "scaffolder": ProviderConfig("scaffolder", "spinkube"),
            "deployer": ProviderConfig("deployer", "kubernetes"),
            "logs": ProviderConfig("logs", "dynamodb"),
            "metrics": ProviderConfig("metrics", "prometheus"),
            "invoker": ProviderConfig("invoker", "kubernetes"),
        },
        workspaces=(
            Workspace(
                name="demo",
                location=Location("faas.yaml", 14, 5),
                namespace="demo-prod",
                labels={"team": "blue"},
                protect=False,
                functions=(
                    Function(
                        workspace="demo",
                        name="hello",
                        source_dir=resolved / "functions/hello",
                        source="functions/hello",
                        location=Location("faas.yaml", 19, 9),
                        handler="app",
                        env={"LOG_LEVEL": "info", "GREETING": "hi"},
                        variables={"greeting": "hi"},
                        secrets=(
                            SecretRef("DB_PASSWORD", "kubernetes", "db-credentials", "password"),
                            SecretRef("API_KEY", "ssm", "/prod/api-key"),
                            SecretRef("TOKEN", "secretsmanager", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api", "token"),
                        ),
                        resources=Resources(cpu_request="0.25", memory_request="64Mi", cpu_limit="1", memory_limit="256Mi"),
                        replicas=1,
                        autoscaling=Autoscaling("hpa", 1, 10, 70, 80),
                        spot=True,
                        protect=True,
                        executor="containerd-shim-spin",
                        labels={"tier": "web"},
                        annotations={"note": "x"},
                    ),
                    Function(
                        workspace="demo",
                        name="worker",
                        source_dir=resolved / "functions/worker",
                        source="functions/worker",
                        location=Location("faas.yaml", 38, 9),
                        handler="main",
                        env={"LOG_LEVEL": "info"},
                        resources=Resources("100m", "128Mi", "500m", "256Mi"),
                        replicas=2,
                    ),
                ),
            ),
        ),
        environment=None,
        manifest_files=(resolved / "faas.yaml",),
        templates_dir=resolved / "deploy/templates",
    )
    assert project.functions()[0].spec()["replicas"] is None  # the autoscaler owns it


def test_minimal_manifest_uses_local_backend_and_model_defaults(make_project):
    root = make_project({
        MANIFEST_NAME: """\
            apiVersion: faasops/v1
            project: tiny
            workspaces:
              - name: tiny
                functions:
                  - {name: hello, source: hello}
        """,
        "hello/app.py": HANDLER,
    })

    project = load_project(root)

    assert {slot: config.type for slot, config in project.providers.items()} == {
        "state": "local", "sources": "local", "builder": "componentize-py",
        "registry": "local", "scaffolder": "spinkube", "deployer": "local",
        "logs": "local", "metrics": "local", "invoker": "local",
    }
    workspace = project.workspaces[0]
    assert workspace.namespace == "tiny"
    (function,) = workspace.functions
    assert (function.handler, function.replicas, function.executor, function.autoscaling) == ("app", 1, "containerd-shim-spin", None)
    assert function.resources == Resources()
    assert project.templates_dir is None


def test_provider_override_replaces_one_slot_of_the_preset_with_its_options(make_project):
    root = make_project({
        MANIFEST_NAME: """\
            apiVersion: faasops/v1
            project: demo
            backend: aws
            providers:
              registry: {type: oci, url: "http://127.0.0.1:5005", insecure: true, tags: [a, b]}
              deployer: {type: local}
        """,
    })

    providers = load_project(root).providers

    assert providers["registry"] == ProviderConfig("registry", "oci", {"url": "http://127.0.0.1:5005", "insecure": True, "tags": ["a", "b"]})
    assert type(providers["registry"].options) is dict and type(providers["registry"].options["tags"]) is list
    assert providers["deployer"] == ProviderConfig("deployer", "local", {})
    assert providers["state"] == ProviderConfig("state", "dynamodb", {})
    assert list(providers) == ["state", "sources", "builder", "registry", "scaffolder", "deployer",
                               "logs", "metrics", "invoker"]


def test_defaults_merge_under_each_function(make_project):
    root = make_project({
        MANIFEST_NAME: """\
            apiVersion: faasops/v1
            project: demo
            defaults:
              env: {LOG_LEVEL: info, REGION: eu}
              labels: {team: blue}
              resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
              replicas: 3
              autoscaling: {max: 4, cpu: 60}
              spot: true
              secrets:
                - {name: SHARED, ssm: /shared}
            workspaces:
              - name: demo
                functions:
                  - name: inherits
                    source: fn
                  - name: overrides
                    source: fn
                    env: {LOG_LEVEL: debug}
                    resources: {limits: {memory: 512Mi}}
                    autoscaling: null
                    replicas: 2
                    spot: false
                    secrets:
                      - {name: OWN, ssm: /own}
        """,
        "fn/app.py": HANDLER,
    })

    inherits, overrides = load_project(root).functions()

    assert inherits.env == {"LOG_LEVEL": "info", "REGION": "eu"}
    assert inherits.labels == {"team": "blue"}
    assert inherits.resources == Resources("100m", "128Mi", None, "256Mi")
    assert inherits.autoscaling == Autoscaling("hpa", 1, 4, 60, None)
    assert inherits.replicas == 1  # defaults' replicas is ignored under autoscaling
    assert inherits.spot is True
    assert inherits.secrets == (SecretRef("SHARED", "ssm", "/shared"),)

    assert overrides.env == {"LOG_LEVEL": "debug", "REGION": "eu"}
    assert overrides.resources == Resources("100m", "128Mi", None, "512Mi")
    assert overrides.autoscaling is None  # `autoscaling: null` turns the default off
    assert overrides.replicas == 2
    assert overrides.spot is False
    assert overrides.secrets == (SecretRef("OWN", "ssm", "/own"),)  # lists replace


def test_split_manifests_load_in_sorted_order_with_sources_relative_to_their_file(make_project):
    root = make_project({
        MANIFEST_NAME: """\
            apiVersion: faasops/v1
            project: demo
            workspaces:
              - name: core
        """,
        "teams/zeta/faas.yaml": """\
            workspaces:
              - name: zeta
                functions:
                  - {name: api, source: api}
        """,
        "teams/zeta/api/app.py": HANDLER,
        "teams/alpha/faas.yaml": """\
            apiVersion: faasops/v1
            workspaces:
              - name: alpha
                functions:
                  - {name: web, source: ../../shared/web}
        """,
        "shared/web/app.py": HANDLER,
        # Never searched: hidden directories, state, dependencies, virtualenvs.
        ".git/faas.yaml": "project: nope\n",
        ".faasops/faas.yaml": "project: nope\n",
        "node_modules/x/faas.yaml": "project: nope\n",
        "venv/pyvenv.cfg": "home = /usr/bin\n",
        "venv/lib/faas.yaml": "project: nope\n",
    })

    project = load_project(root)

    assert [ws.name for ws in project.workspaces] == ["core", "alpha", "zeta"]
    alpha, zeta = project.workspaces[1:]
    assert alpha.location == Location("teams/alpha/faas.yaml", 3, 5)
    assert alpha.functions[0].source == "shared/web"
    assert alpha.functions[0].source_dir == root.resolve() / "shared/web"
    assert zeta.functions[0].source == "teams/zeta/api"
    assert zeta.functions[0].location == Location("teams/zeta/faas.yaml", 4, 9)
    assert project.manifest_files == tuple(
        root.resolve() / name for name in ("faas.yaml", "teams/alpha/faas.yaml", "teams/zeta/faas.yaml")
    )
    assert load_project(root) == project  # deterministic


def overlaid() -> dict[str, str]:
    return {
        MANIFEST_NAME: """\
            apiVersion: faasops/v1
            project: demo
            defaults:
              env: {LOG_LEVEL: info}
            workspaces:
              - name: demo
                functions:
                  - name: hello
                    source: fn
                    replicas: 1
                    env: {GREETING: hi, DEBUG: "1"}
                    labels: {tier: web}
                    secrets:
                      - {name: A, ssm: /dev/a}
                  - name: other
                    source: fn
        """,
        "faas.prod.yaml": """\
            defaults:
              env: {LOG_LEVEL: warning}
            workspaces:
              - name: demo
                namespace: demo-prod
                functions:
                  - name: hello
                    replicas: 3
                    env: {DEBUG: null}
                    labels: null
                    secrets:
                      - {name: B, ssm: /prod/b}
                  - name: canary
                    source: fn
              - name: extra
        """,
        "fn/app.py": HANDLER,
    }


def test_environment_overlay_merges_by_name_replaces_lists_and_deletes_nulls(make_project):
    root = make_project(overlaid())

    project = load_project(root, environment="prod")

    assert project.environment == "prod"
    assert project.manifest_files == (root.resolve() / "faas.yaml", root.resolve() / "faas.prod.yaml")
    demo, extra = project.workspaces
    assert demo.namespace == "demo-prod" and extra.name == "extra"
    hello, other, canary = demo.functions
    assert hello.replicas == 3
    assert hello.env == {"LOG_LEVEL": "warning", "GREETING": "hi"}
    assert hello.labels == {}
    assert hello.secrets == (SecretRef("B", "ssm", "/prod/b"),)
    assert hello.location == Location("faas.yaml", 8, 9)  # declared in the base file
    assert other.name == "other"
    assert canary.location == Location("faas.prod.yaml", 13, 9)


def test_without_environment_overlays_are_ignored(make_project):
    project = load_project(make_project(overlaid()))

    assert project.environment is None
    assert [f.name for f in project.functions()] == ["hello", "other"]
    assert project.functions()[0].replicas == 1


def test_named_environment_without_overlay_files_is_refused_naming_the_files_looked_for(make_project):
    # A typo in -e (or a missing overlay) would otherwise deploy the base manifests unchanged.
    root = make_project(overlaid())

    with pytest.raises(ManifestError) as caught:
        load_project(root, environment="staging")

    assert str(caught.value) == (
        "faas.yaml: -e/--env: unknown environment 'staging': no faas.staging.yaml next to any faas.yaml "
        "(looked for faas.staging.yaml); create the overlay, or leave out -e")
    assert load_project(root, environment="prod").environment == "prod"


def test_error_in_overlay_value_points_at_the_overlay_line(make_project):
    root = make_project({
        **overlaid(),
        "faas.prod.yaml": """\
            workspaces:
              - name: demo
                functions:
                  - name: hello
                    replicas: many
        """,
    })

    with pytest.raises(ManifestError) as caught:
        load_project(root, environment="prod")

    assert str(caught.value) == "faas.prod.yaml:5:19 workspaces[0].functions[0].replicas: expected a whole number, got the string 'many'"


def test_overlay_of_a_split_manifest_may_not_add_root_only_keys(make_project):
    root = make_project({
        MANIFEST_NAME: "apiVersion: faasops/v1\nproject: demo\n",
        "team/faas.yaml": "workspaces:\n  - name: team\n",
        "team/faas.prod.yaml": "backend: aws\n",
    })

    with pytest.raises(ManifestError) as caught:
        load_project(root, environment="prod")

    assert str(caught.value).startswith("team/faas.prod.yaml:1:1 backend: 'backend' belongs in the root faas.yaml only")


def test_overlay_without_a_manifest_next_to_it_is_an_error(make_project):
    root = make_project({MANIFEST_NAME: "apiVersion: faasops/v1\nproject: demo\n", "team/faas.prod.yaml": "workspaces: []\n"})

    with pytest.raises(ManifestError, match=r"team/faas.prod.yaml: there is no faas.yaml next to this overlay"):
        load_project(root, environment="prod")
    load_project(root)  # only the selected environment's overlays matter


def test_environment_name_must_be_a_dns_label(make_project):
    root = make_project({MANIFEST_NAME: "apiVersion: faasops/v1\nproject: demo\n"})

    with pytest.raises(ManifestError, match="environment 'Prod' is not a valid name"):
        load_project(root, environment="Prod")


def test_missing_root_manifest_says_how_to_create_one(tmp_path: Path):
    with pytest.raises(ManifestError) as caught:
        load_project(tmp_path)

    assert str(caught.value) == f"faas.yaml: no faas.yaml in {tmp_path} (create one with `faasops init`)"


def test_problems_in_several_files_are_reported_together_and_sorted(make_project):
    root = make_project({
        MANIFEST_NAME: """\
            apiVersion: faasops/v1
            project: Demo
            workspaces:
              - name: demo
                functions:
                  - {name: hello, source: fn, replicas: -1}
        """,
        "fn/app.py": "class IncomingHandler:\n    def handle_request(self, request):\n        pass\n",
        "b-team/faas.yaml": "workspaces:\n  - name: demo\n    labels: {team: 7}\n",
        "a-team/faas.yaml": "workspaces:\n  - {name: a, protect: maybe}\n  - {name: b, functons: []}\n",
    })

    with pytest.raises(ManifestError) as caught:
        load_project(root)

    assert str(caught.value).splitlines() == [
        "a-team/faas.yaml:2:24 workspaces[0].protect: expected true or false, got the string 'maybe'",
        "a-team/faas.yaml:3:15 workspaces[1].functons: unknown key 'functons' (did you mean 'functions'?)",
        "b-team/faas.yaml:2:11 workspaces[0].name: workspace 'demo' is already declared at faas.yaml:4:11; workspace names are unique across all manifest files",
        'b-team/faas.yaml:3:20 workspaces[0].labels.team: expected a string, got the number 7; quote it: "7"',
        "faas.yaml:2:10 project: 'Demo' is not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label such as 'hello-world')",
        "faas.yaml:6:45 workspaces[0].functions[0].replicas: must be at least 1 (got -1)",
        "fn/app.py:1:1: class IncomingHandler has no base class; it must inherit from spin_sdk's http.IncomingHandler: write `class IncomingHandler(http.IncomingHandler):` after `from spin_sdk import http`",
    ]


def test_a_problem_in_defaults_is_reported_once_not_per_function(make_project):
    root = make_project({
        MANIFEST_NAME: demo_manifest(
            "- {name: a, source: fn}\n- {name: b, source: fn}\n",
            defaults="autoscaling: {min: 5, max: 2, cpu: 50}\nresources: {requests: {cpu: 100m}}\n",
        ),
        "fn/app.py": HANDLER,
    })

    with pytest.raises(ManifestError) as caught:
        load_project(root)

    assert str(caught.value) == "faas.yaml:4:30 defaults.autoscaling.max: max (2) must be at least min (5)"


def test_keda_scales_on_memory_with_a_memory_request(make_project):
    root = make_project({
        MANIFEST_NAME: demo_manifest("- {name: a, source: fn, autoscaling: {type: keda, min: 1, max: 3, memory: 75},\n"
                                     "   resources: {requests: {memory: 64Mi}}}\n"),
        "fn/app.py": HANDLER,
    })

    assert load_project(root).functions()[0].autoscaling == Autoscaling("keda", 1, 3, None, 75)


def test_keda_can_not_scale_to_zero_on_cpu_or_memory_triggers(make_project):
    root = make_project({
        MANIFEST_NAME: demo_manifest("- {name: a, source: fn, autoscaling: {type: keda, min: 0, max: 3, memory: 75},\n"
                                     "   resources: {requests: {memory: 64Mi}}}\n"),
        "fn/app.py": HANDLER,
    })

    with pytest.raises(ManifestError, match="min must be at least 1: KEDA cannot scale to zero on cpu/memory triggers"):
        load_project(root)


def test_yaml_anchors_aliases_and_merge_keys_work(make_project):
    root = make_project({
        MANIFEST_NAME: demo_manifest("""\
            - &base {name: a, source: fn, labels: {tier: web}, env: {A: "1"}}
            - <<: *base
              name: b
              env: {B: "2"}
        """),
        "fn/app.py": HANDLER,
    })

    a, b = load_project(root).functions()

    assert (b.name, b.labels, b.env) == ("b", {"tier": "web"}, {"B": "2"})
    assert a.env == {"A": "1"}


def test_mapping_keys_are_read_as_written(make_project):
    # YAML 1.1 would read these keys as a boolean and a number.
    root = make_project({
        MANIFEST_NAME: demo_manifest('- {name: a, source: fn, annotations: {"on": "x", "1": "y"}, labels: {no: "z"}}\n'),
        "fn/app.py": HANDLER,
    })

    function = load_project(root).functions()[0]

    assert function.annotations == {"on": "x", "1": "y"} and function.labels == {"no": "z"}


def test_oversized_manifest_is_refused_before_parsing(make_project):
    root = make_project({MANIFEST_NAME: "apiVersion: faasops/v1\nproject: demo\n" + "# padding\n" * 110_000})

    with pytest.raises(ManifestError) as caught:
        load_project(root)

    assert str(caught.value).startswith("faas.yaml: the file is 1100037 bytes; a manifest may be at most 1048576 bytes")


def test_huge_flat_document_stops_at_the_value_limit(make_project, monkeypatch):
    # The real limit (100,000) costs seconds of pure-Python parsing to reach; the alias-bomb
    # case of the broken corpus reaches it cheaply.
    monkeypatch.setattr(yaml_source, "MAX_VALUES", 1_000)
    root = make_project({MANIFEST_NAME: "apiVersion: faasops/v1\nproject: demo\nx: [" + "1," * 400_000 + "1]\n"})

    started = time.monotonic()
    with pytest.raises(ManifestError) as caught:
        load_project(root)

    assert str(caught.value) == "faas.yaml:3:1991: this value makes the document larger than 1000 values; is it an alias bomb?"
    assert time.monotonic() - started < 2


def test_handler_code_is_never_executed(make_project, tmp_path: Path):
    marker = tmp_path / "executed"
    payload = f"import os\nos.system('touch {marker}')\nopen({str(marker)!r}, 'w').close()\n"
    root = make_project({
        MANIFEST_NAME: demo_manifest("- {name: a, source: fn}\n"),
        "fn/app.py": payload + HANDLER,
    })

    load_project(root)

    assert not marker.exists()
    assert not (root / "fn/__pycache__").exists()


def test_source_may_be_a_symlink_that_stays_inside_the_project(make_project):
    root = make_project({MANIFEST_NAME: demo_manifest("- {name: a, source: ./linked/}\n"), "real/app.py": HANDLER})
    (root / "linked").symlink_to("real")

    function = load_project(root).functions()[0]

    assert (function.source, function.source_dir) == ("linked", root.resolve() / "linked")
