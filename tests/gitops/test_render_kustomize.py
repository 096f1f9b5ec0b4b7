"""`faasops render --out DIR` (alias `scaffold`): the objects faasops would apply, as a kustomize
tree that real kubectl builds and the API server (emulator) accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_support import run_faasops
from testkit.kubectl import KubectlRunner
from gitops_support import files_under, make_project

WORKSPACES = """\
- name: demo
  labels: {team: blue}
  functions:
    - name: hello
      source: functions/hello
    - name: scaled
      source: functions/hello
      resources: {requests: {cpu: 100m}}
      autoscaling: {type: hpa, min: 1, max: 3, cpu: 70}
- name: shop
  namespace: shop-prod
  functions:
    - name: cart
      source: functions/hello
      spot: true
"""

EXPECTED_FILES = [
    "demo/horizontalpodautoscaler-scaled.yaml",
    "demo/kustomization.yaml",
    "demo/namespace-demo.yaml",
    "demo/spinapp-hello.yaml",
    "demo/spinapp-scaled.yaml",
    "demo/spinappexecutor-containerd-shim-spin.yaml",
    "kustomization.yaml",
    "shop-prod/kustomization.yaml",
    "shop-prod/namespace-shop-prod.yaml",
    "shop-prod/spinapp-cart.yaml",
    "shop-prod/spinappexecutor-containerd-shim-spin-spot.yaml",
]


def recorded_images(project: Path) -> dict[str, str]:
    listed = run_faasops("-C", str(project), "get", "functions", "--format", "json")
    assert listed.code == 0, listed.output
    return {f"{f['workspace']}/{f['name']}": f["artifact"] for f in json.loads(listed.out)}


@pytest.fixture()
def applied(tmp_path: Path) -> Path:
    """Three functions applied with the local backend (artifacts recorded in the state)."""
    project = make_project(tmp_path, WORKSPACES)
    result = run_faasops("-C", str(project), "apply", "--auto-approve")
    assert result.code == 0, result.output
    return project


@pytest.mark.slow
def test_render_writes_a_tree_kubectl_builds_and_the_api_server_accepts(
        applied: Path, tmp_path: Path, kubectl: KubectlRunner) -> None:
    out = tmp_path / "rendered"

    result = run_faasops("-C", str(applied), "render", "--out", str(out))

    assert result.code == 0, result.output
    assert "Rendered 8 object(s) for 3 function(s)" in result.out
    assert sorted(files_under(out)) == EXPECTED_FILES
    images = recorded_images(applied)
    spinapp = yaml.safe_load((out / "shop-prod" / "spinapp-cart.yaml").read_text())
    assert spinapp["spec"]["image"] == images["shop/cart"]
    assert spinapp["spec"]["executor"] == "containerd-shim-spin-spot"
    assert yaml.safe_load((out / "demo" / "namespace-demo.yaml").read_text())["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "faasops", "team": "blue", "workspace_id": "demo"}

    built = list(yaml.safe_load_all(kubectl("kustomize", str(out)).stdout))
    # Namespaces, then the executors (spin-operator's webhook wants them before the SpinApps).
    order = [d["kind"] for d in built]
    assert order[:4] == ["Namespace", "Namespace", "SpinAppExecutor", "SpinAppExecutor"]
    assert sorted(order[4:]) == ["HorizontalPodAutoscaler", "SpinApp", "SpinApp", "SpinApp"]

    # What Argo CD or Flux would do with it: a server-side apply of the whole tree, accepted by
    # the API server with spin-operator's and KEDA's webhooks in force; then kubectl's own
    # (client-side) apply of the same tree as a server dry run is accepted too.
    applied_output = kubectl("apply", "--server-side", "-k", str(out)).stdout
    assert "spinapp.core.spinkube.dev/cart serverside-applied" in applied_output
    dry_run = kubectl("apply", "--dry-run=server", "-k", str(out))
    assert dry_run.stdout.count("(server dry run)") == 8, dry_run.stdout
    live = json.loads(kubectl("get", "spinapps", "-A", "-o", "json").stdout)["items"]
    # (a dry run: kubectl's last-applied annotation was not stored)
    assert not any("kubectl.kubernetes.io/last-applied-configuration" in (o["metadata"].get("annotations") or {})
                   for o in live)
    assert {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["spec"]["image"] for o in live} == {
        "demo/hello": images["demo/hello"], "demo/scaled": images["demo/scaled"], "shop-prod/cart": images["shop/cart"]}
    hpa = json.loads(kubectl("get", "hpa", "scaled", "-n", "demo", "-o", "json").stdout)
    assert hpa["spec"]["maxReplicas"] == 3


@pytest.mark.slow
def test_rendering_again_is_byte_identical_and_drops_what_is_no_longer_rendered(applied: Path, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    assert run_faasops("-C", str(applied), "render", "--out", str(out)).code == 0
    first = files_under(out)
    # Someone else's files in the directory, and in a namespace directory.
    (out / "README.md").write_text("not faasops'\n")
    (out / "demo" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")

    again = run_faasops("-C", str(applied), "scaffold", "--out", str(out))

    assert again.code == 0, again.output
    assert "nothing changed" in again.out
    assert files_under(out) == {**first, "README.md": b"not faasops'\n",
                                "demo/extra.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n"}

    manifest = applied / "faas.yaml"
    manifest.write_text(manifest.read_text().replace("    - name: scaled\n", "    - name: gone\n", 1))
    shrunk = run_faasops("-C", str(applied), "render", "--out", str(out))

    assert shrunk.code == 0, shrunk.output
    assert "warning: demo/gone has no recorded artifact" in shrunk.err
    files = files_under(out)
    assert "demo/spinapp-scaled.yaml" not in files and "demo/horizontalpodautoscaler-scaled.yaml" not in files
    assert yaml.safe_load(files["demo/kustomization.yaml"])["resources"] == [
        "namespace-demo.yaml", "spinapp-hello.yaml", "spinappexecutor-containerd-shim-spin.yaml"]
    assert files["README.md"] == b"not faasops'\n" and "demo/extra.yaml" in files


def test_functions_never_applied_are_left_out_with_a_warning(tmp_path: Path) -> None:
    project = make_project(tmp_path, WORKSPACES)
    out = tmp_path / "rendered"

    result = run_faasops("-C", str(project), "render", "--out", str(out))

    assert result.code == 0, result.output
    for address in ("demo/hello", "demo/scaled", "shop/cart"):
        assert f"warning: {address} has no recorded artifact" in result.err
    assert sorted(files_under(out)) == ["demo/kustomization.yaml", "demo/namespace-demo.yaml", "kustomization.yaml",
                                        "shop-prod/kustomization.yaml", "shop-prod/namespace-shop-prod.yaml"]
    assert not (project / ".faasops" / "deploy").exists()  # nothing deployed


def test_render_into_a_file_is_an_error_without_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path, WORKSPACES)
    (tmp_path / "taken").write_text("x")

    result = run_faasops("-C", str(project), "render", "--out", str(tmp_path / "taken"))

    assert result.code != 0
    assert "Traceback" not in result.output
    assert "taken" in result.err


@pytest.mark.slow
def test_render_build_builds_and_pushes_but_deploys_and_records_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path, "- name: demo\n  functions: [{name: hello, source: functions/hello}]\n")
    out = tmp_path / "rendered"

    result = run_faasops("-C", str(project), "render", "--build", "--out", str(out))

    assert result.code == 0, result.output
    assert "demo/hello: " in result.err and "local/hello/demo/hello@sha256:" in result.err
    image = yaml.safe_load((out / "demo" / "spinapp-hello.yaml").read_text())["spec"]["image"]
    digest = image.rpartition("@")[2]
    index = json.loads((project / ".faasops" / "oci" / "index.json").read_text())
    assert digest in [m["digest"] for m in index["manifests"]]  # pushed to the project's registry
    assert recorded_images(project) == {}  # not recorded: apply still has it to do
    assert not (project / ".faasops" / "deploy").exists()
