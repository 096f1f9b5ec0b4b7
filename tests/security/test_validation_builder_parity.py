"""The Builder API refuses exactly what `faasops validate` refuses (issue 13, item 11).

Each case is one hostile function setting written twice: in faas.yaml, checked by the real CLI,
and in the Builder API's JSON, posted to a real `faasops builder serve` on ``/scaffold`` and
``/build``. Both must refuse it — the CLI with exit 1 and a located line, the service with a 422
— with the message of the shared rule (:mod:`faasops.names`, :mod:`faasops.function_rules`)
where a shared rule decides. A valid function is accepted by both.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from security_support import run_cli, tree_state, write_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from builder_support import MAX_UPLOAD_BYTES, BuilderServer, local_service_config  # noqa: E402

MANIFEST = """\
apiVersion: faasops/v1
project: shop
workspaces:
  - name: {workspace}
{workspace_lines}    functions:
      - name: {name}
        source: functions/hello
{function_lines}"""
IMAGE = "registry.example/faasops/shop/storefront/checkout@sha256:" + "a" * 64


@dataclass(frozen=True)
class Setting:
    """A function setting in both forms, and what each side must say about it (``None``: accept)."""

    name: str
    yaml: str  # lines under the function in faas.yaml (8 spaces of indent)
    wire: dict[str, Any]  # the same, as the Builder API's function JSON
    cli_says: str | None
    api_says: str | None = None  # default: the same as the CLI (a shared rule decides)
    workspace: dict[str, Any] = field(default_factory=dict)  # the workspace's JSON, when the case is there

    @property
    def api_expected(self) -> str | None:
        return self.api_says if self.api_says is not None else self.cli_says


NOT_A_NAME = "is not a valid name: use at most 63 lowercase letters"
REQUEST_NEEDED = "autoscaling on cpu utilization needs resources.requests.cpu"
SETTINGS = [
    Setting("label-key-with-newline", '        labels: {"team\\n": blue}\n', {"labels": {"team\n": "blue"}},
            "key 'team\\n' is not a valid label or annotation key", "'team\\n' is not a valid label or annotation key"),
    Setting("label-value-with-newline", '        labels: {team: "blue\\n"}\n', {"labels": {"team": "blue\n"}},
            "'blue\\n' is not a valid label value"),
    Setting("annotation-value-with-nul", '        annotations: {example.com/a: "x\\0"}\n',
            {"annotations": {"example.com/a": "x\0"}}, "the NUL character (\\0) is not allowed in a manifest"),
    Setting("env-key-with-equals", '        env: {"A=B": x}\n', {"env": {"A=B": "x"}},
            "key 'A=B' is not a valid environment variable name", "'A=B' is not a valid environment variable name"),
    Setting("env-key-with-newline", '        env: {"A\\n": x}\n', {"env": {"A\n": "x"}},
            "key 'A\\n' is not a valid environment variable name", "'A\\n' is not a valid environment variable name"),
    Setting("env-value-with-nul", '        env: {A: "x\\0y"}\n', {"env": {"A": "x\0y"}},
            "the NUL character (\\0) is not allowed in a manifest"),
    Setting("env-value-with-escape", '        env: {A: "x\\e[31m"}\n', {"env": {"A": "x\x1b[31m"}},
            "the control character U+001B is not allowed here"),
    Setting("variable-with-double-underscore", "        variables: {a__b: x}\n", {"variables": {"a__b": "x"}},
            "key 'a__b' is not a valid Spin variable name", "'a__b' is not a valid Spin variable name"),
    Setting("secret-name-starting-with-underscore", "        secrets: [{name: _TOKEN, ssm: /p/t}]\n",
            {"secrets": [{"name": "_TOKEN", "source": "ssm", "ref": "/p/t"}]}, "'_TOKEN' is not a valid secret name"),
    Setting("secret-clashing-with-a-variable",
            "        variables: {db_password: x}\n        secrets: [{name: DB_PASSWORD, ssm: /p/db}]\n",
            {"variables": {"db_password": "x"}, "secrets": [{"name": "DB_PASSWORD", "source": "ssm", "ref": "/p/db"}]},
            "secret 'DB_PASSWORD' becomes the Spin variable 'db_password', which variables.db_password already declares"),
    Setting("kubernetes-secret-with-newline", '        secrets: [{name: A, kubernetes: {secret: "s\\n", key: k}}]\n',
            {"secrets": [{"name": "A", "source": "kubernetes", "ref": "s\n", "key": "k"}]},
            "'s\\n' is not a valid Kubernetes object name"),
    Setting("replicas-1e30", "        replicas: 1.0e+30\n", {"replicas": 1e30},
            "expected a whole number, got the number 1.0e+30", "Input should be a valid integer"),
    Setting("replicas-3.0", "        replicas: 3.0\n", {"replicas": 3.0},
            "write 3 without a decimal point", "Input should be a valid integer"),
    Setting("replicas-0", "        replicas: 0\n", {"replicas": 0},
            "must be at least 1 (got 0)", "greater than or equal to 1"),
    Setting("replicas-beyond-int32", "        replicas: 2147483648\n", {"replicas": 2**31},
            "must be at most 2147483647", "less than or equal to 2147483647"),
    Setting("autoscaling-cpu-without-request", "        autoscaling: {max: 3, cpu: 70}\n",
            {"autoscaling": {"type": "hpa", "min": 1, "max": 3, "cpu": 70}}, REQUEST_NEEDED),
    Setting("keda-min-zero",
            "        resources: {requests: {cpu: 100m}}\n        autoscaling: {type: keda, min: 0, max: 3, cpu: 70}\n",
            {"resources": {"requests": {"cpu": "100m"}}, "autoscaling": {"type": "keda", "min": 0, "max": 3, "cpu": 70}},
            "KEDA cannot scale to zero", "greater than or equal to 1"),
    Setting("max-below-min",
            "        resources: {requests: {cpu: 100m}}\n        autoscaling: {min: 5, max: 2, cpu: 70}\n",
            {"resources": {"requests": {"cpu": "100m"}}, "autoscaling": {"type": "hpa", "min": 5, "max": 2, "cpu": 70}},
            "max (2) must be at least min (5)"),
    Setting("quantity-with-newline", '        resources: {requests: {cpu: "1\\n"}}\n',
            {"resources": {"requests": {"cpu": "1\n"}}}, "'1\\n' is not a valid Kubernetes quantity"),
    Setting("executor-with-newline", '        executor: "shim\\n"\n', {"executor": "shim\n"},
            "'shim\\n' is not a valid Kubernetes object name"),
    Setting("handler-with-newline", '        handler: "app\\n"\n', {"handler": "app\n"},
            "'app\\n' is not a valid Python module name"),
    Setting("function-name-with-newline", "", {"name": "checkout\n"}, "'checkout\\n' is not a valid function name"),
    Setting("workspace-namespace-with-newline", "", {}, f"'shop-front\\n' {NOT_A_NAME}",
            workspace={"namespace": "shop-front\n"}),
    Setting("workspace-label-key-with-newline", "", {}, "'team\\n' is not a valid label or annotation key",
            workspace={"labels": {"team\n": "blue"}}),
    Setting("valid-rich-function",
            "        env: {A: \"tab\\there\"}\n        variables: {api_url: x}\n"
            "        secrets: [{name: DB_PASSWORD, kubernetes: {secret: db, key: password}}]\n"
            "        resources: {requests: {cpu: 100m, memory: 64Mi}}\n"
            "        autoscaling: {type: keda, min: 1, max: 2147483647, cpu: 70, memory: 80}\n"
            "        labels: {team: blue}\n        annotations: {example.com/a: \"line\\nbreak\"}\n",
            {"env": {"A": "tab\there"}, "variables": {"api_url": "x"},
             "secrets": [{"name": "DB_PASSWORD", "source": "kubernetes", "ref": "db", "key": "password"}],
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
             "autoscaling": {"type": "keda", "min": 1, "max": 2**31 - 1, "cpu": 70, "memory": 80},
             "labels": {"team": "blue"}, "annotations": {"example.com/a": "line\nbreak"}}, None),
]


def manifest_for(setting: Setting) -> str:
    """The setting in faas.yaml, names included (as JSON strings, which YAML reads alike)."""
    function = {"workspace": "storefront", "name": "checkout", **setting.wire}
    workspace = {"name": "storefront", **setting.workspace}
    workspace_lines = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in setting.workspace.items())
    return MANIFEST.format(workspace=json.dumps(workspace["name"]), workspace_lines=workspace_lines,
                           name=json.dumps(function["name"]), function_lines=setting.yaml)


def wire_request(setting: Setting) -> dict[str, Any]:
    return {
        "project": "shop",
        "workspace": {"name": "storefront", **setting.workspace},
        "function": {"workspace": "storefront", "name": "checkout", **setting.wire},
        "image": IMAGE,
    }


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuilderServer]:
    with BuilderServer(tmp_path_factory.mktemp("parity-builder"),
                       local_service_config(max_upload_bytes=MAX_UPLOAD_BYTES)) as server:
        yield server


@pytest.mark.parametrize("setting", SETTINGS, ids=[setting.name for setting in SETTINGS])
def test_validate_and_the_builder_api_refuse_and_accept_the_same_functions(
        setting: Setting, builder: BuilderServer, tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_project(project, manifest_for(setting))
    before = tree_state(project)

    run = run_cli(project, "validate", timeout=60)
    scaffold = builder.request("POST", "/api/v1/scaffold", json_body=wire_request(setting))
    build = builder.upload("/api/v1/build", b"not even an archive",
                           {"project": "shop", "function": wire_request(setting)["function"]})

    assert "Traceback" not in run.err, run
    assert tree_state(project) == before, f"validate wrote something\n{run}"
    if setting.cli_says is None:
        assert run.code == 0, run
        assert scaffold.status == 200, scaffold.data
        return
    assert run.code == 1, run
    assert any(line.startswith("  faas.yaml:") and setting.cli_says in line for line in run.err.splitlines()), run
    detail = json.loads(scaffold.data)["detail"]
    assert scaffold.status == 422 and setting.api_expected in detail, (scaffold.status, detail)
    if setting.workspace:
        return  # /build takes no workspace
    build_detail = json.loads(build.data)["detail"]
    assert build.status == 422 and setting.api_expected in build_detail, (build.status, build_detail)
    assert build_detail.startswith("spec: "), build_detail
