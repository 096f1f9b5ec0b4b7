"""The local deployer writes the SpinAppExecutors a namespace's SpinApps name, as the
kubernetes deployer creates them on a cluster."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from faasops.model import Project, ProviderConfig
from faasops.plugins.local import faasops_deployer
from faasops.serving import read_deployed

from kube_deployer_support import render


def test_the_local_deployer_writes_each_executor_once_per_namespace_beside_the_functions(
        make_project: Callable[..., Project]) -> None:
    project = make_project([{"name": "demo", "functions": [
        {"name": "steady", "source": "functions/hello"},
        {"name": "other", "source": "functions/hello"},
        {"name": "cheap", "source": "functions/hello", "spot": True}]}])
    deployer = faasops_deployer(ProviderConfig("deployer", "local", {"spot_runtime_class": "spin-on-spot"}), project)
    workspace = project.workspaces[0]
    deployer.ensure_workspace(project, workspace)

    for function in workspace.functions:
        deployer.deploy(project, function, render(project, function))

    directory = project.state_dir / "deploy" / "demo" / "_executors"
    executors = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))}
    assert sorted(executors) == ["containerd-shim-spin", "containerd-shim-spin-spot"]
    assert executors["containerd-shim-spin"]["spec"] == {"createDeployment": True, "deploymentConfig": {
        "runtimeClassName": "wasmtime-spin-v2", "installDefaultCACerts": True}}
    assert executors["containerd-shim-spin-spot"]["spec"]["deploymentConfig"]["runtimeClassName"] == "spin-on-spot"
    # They are the namespace's: neither a function's live objects nor something `faasops up` serves.
    assert sorted(deployer.observe(project, project.workspaces)) == ["demo/cheap", "demo/other", "demo/steady"]
    assert sorted(read_deployed(project.state_dir / "deploy")) == ["demo/cheap", "demo/other", "demo/steady"]

    deployer.delete_workspace(project, "demo", "demo")

    assert not directory.exists()


def test_create_executors_false_writes_none(make_project: Callable[..., Project]) -> None:
    project = make_project([{"name": "demo", "functions": [{"name": "hello", "source": "functions/hello"}]}])
    deployer = faasops_deployer(ProviderConfig("deployer", "local", {"create_executors": False}), project)
    (function,) = project.functions()

    deployer.deploy(project, function, render(project, function))

    assert not (project.state_dir / "deploy" / "demo" / "_executors").exists()
