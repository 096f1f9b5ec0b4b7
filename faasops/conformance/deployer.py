"""The behavioural tests of :class:`faasops.providers.Deployer`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from faasops.conformance.samples import sample_function, sample_project, sample_workspace
from faasops.diff import live_fingerprint, manifest_drift
from faasops.model import Function, Project, Workspace
from faasops.providers import Deployer

#: ``render(project, function, artifact) -> manifests``: what the tests deploy.
Render = Callable[[Project, Function, str], list[dict[str, Any]]]


def image(function: Function, version: str = "1") -> str:
    digest = hashlib.sha256(f"{function.address} {version}".encode()).hexdigest()
    return f"registry.example/conformance/{function.workspace}/{function.name}@sha256:{digest}"


class DeployerContract:
    """Subclass it as ``Test…`` and define the fixture ``deployer``: a deployer for the
    ``conformance_project`` fixture (workspace ``demo`` in namespace ``conformance-demo`` with functions
    ``hello`` and ``bye``, workspace ``other``), on a cluster (or what plays one) with none of
    these objects::

        class TestMyDeployer(DeployerContract):
            @pytest.fixture
            def deployer(self, conformance_project, my_cluster):
                return MyDeployer(kubeconfig=my_cluster.kubeconfig)

    What is deployed is rendered by the ``conformance_render`` fixture, by default the built-in SpinKube
    scaffolder; override it when your deployer takes other objects.
    """

    @pytest.fixture
    def deployer(self, conformance_project: Project) -> Deployer:
        raise NotImplementedError("define the fixture deployer in your DeployerContract subclass")

    @pytest.fixture
    def conformance_project(self, tmp_path: Path) -> Project:
        root = tmp_path / "conformance_project"
        root.mkdir()
        demo = [sample_function(root, "demo", "hello"), sample_function(root, "demo", "bye")]
        other = [sample_function(root, "other", "hello")]
        return sample_project(
            root, sample_workspace("demo", demo, namespace="conformance-demo"), sample_workspace("other", other)
        )

    @pytest.fixture
    def conformance_render(self) -> Render:
        from faasops.plugins.spinkube import SpinKubeScaffolder

        scaffolder = SpinKubeScaffolder()

        def render(project: Project, function: Function, artifact: str) -> list[dict[str, Any]]:
            manifests: list[dict[str, Any]] = scaffolder.render(project, function, artifact)
            return manifests

        return render

    def _workspace(self, conformance_project: Project, name: str = "demo") -> Workspace:
        found = conformance_project.workspace(name)
        assert found is not None, f"the conformance project has no workspace {name}"
        return found

    def _deploy(
        self,
        deployer: Deployer,
        conformance_render: Render,
        conformance_project: Project,
        function: Function,
        version: str = "1",
    ) -> tuple[list[dict[str, Any]], Any]:
        manifests = conformance_render(conformance_project, function, image(function, version))
        return manifests, deployer.deploy(conformance_project, function, manifests)

    def test_nothing_is_live_in_a_workspace_never_deployed(
        self, deployer: Deployer, conformance_project: Project
    ) -> None:
        assert deployer.observe(conformance_project, conformance_project.workspaces) == {}
        assert deployer.observe(conformance_project, ["demo", "other"]) == {}

    def test_a_deployed_function_is_observed_as_rendered(
        self, deployer: Deployer, conformance_project: Project, conformance_render: Render
    ) -> None:
        demo = self._workspace(conformance_project)
        deployer.ensure_workspace(conformance_project, demo)
        deployer.ensure_workspace(conformance_project, demo)  # idempotent
        hello = demo.functions[0]
        manifests, returned = self._deploy(deployer, conformance_render, conformance_project, hello)
        live = deployer.observe(conformance_project, [demo])
        assert set(live) == {"demo/hello"}
        assert live["demo/hello"].address == "demo/hello"
        assert manifest_drift(manifests, live["demo/hello"].manifests) == []
        if returned is not None:  # what deploy returns is what observe shows
            assert live_fingerprint(returned) == live["demo/hello"].fingerprint

    def test_deploying_again_is_idempotent(
        self, deployer: Deployer, conformance_project: Project, conformance_render: Render
    ) -> None:
        demo = self._workspace(conformance_project)
        deployer.ensure_workspace(conformance_project, demo)
        hello = demo.functions[0]
        manifests, _ = self._deploy(deployer, conformance_render, conformance_project, hello)
        before = deployer.observe(conformance_project, [demo])["demo/hello"]
        self._deploy(deployer, conformance_render, conformance_project, hello)
        after = deployer.observe(conformance_project, [demo])["demo/hello"]
        assert after.fingerprint == before.fingerprint
        assert manifest_drift(manifests, after.manifests) == []

    def test_an_update_is_observed_and_the_old_manifests_drift(
        self, deployer: Deployer, conformance_project: Project, conformance_render: Render
    ) -> None:
        demo = self._workspace(conformance_project)
        deployer.ensure_workspace(conformance_project, demo)
        hello = demo.functions[0]
        old, _ = self._deploy(deployer, conformance_render, conformance_project, hello, "1")
        changed = replace(hello, env={"GREETING": "hi"}, replicas=2)
        new, _ = self._deploy(deployer, conformance_render, conformance_project, changed, "2")
        live = deployer.observe(conformance_project, [demo])["demo/hello"]
        assert manifest_drift(new, live.manifests) == []
        drift = manifest_drift(old, live.manifests)
        assert drift and any("image" in line for line in drift), drift

    def test_functions_are_observed_per_workspace(
        self, deployer: Deployer, conformance_project: Project, conformance_render: Render
    ) -> None:
        for workspace in conformance_project.workspaces:
            deployer.ensure_workspace(conformance_project, workspace)
            for function in workspace.functions:
                self._deploy(deployer, conformance_render, conformance_project, function)
        assert set(deployer.observe(conformance_project, conformance_project.workspaces)) == {
            "demo/hello",
            "demo/bye",
            "other/hello",
        }
        assert set(deployer.observe(conformance_project, [self._workspace(conformance_project, "other")])) == {
            "other/hello"
        }
        assert set(deployer.observe(conformance_project, ["other"])) == {"other/hello"}

    def test_an_undeployed_function_is_gone_and_its_neighbours_stay(
        self, deployer: Deployer, conformance_project: Project, conformance_render: Render
    ) -> None:
        demo = self._workspace(conformance_project)
        deployer.ensure_workspace(conformance_project, demo)
        for function in demo.functions:
            self._deploy(deployer, conformance_render, conformance_project, function)
        deployer.undeploy(conformance_project, "demo", "conformance-demo", "hello")
        assert set(deployer.observe(conformance_project, [demo])) == {"demo/bye"}
        deployer.undeploy(conformance_project, "demo", "conformance-demo", "hello")  # already gone: no error

    def test_deleting_a_workspace_removes_its_functions(
        self, deployer: Deployer, conformance_project: Project, conformance_render: Render
    ) -> None:
        demo, other = self._workspace(conformance_project), self._workspace(conformance_project, "other")
        for workspace in (demo, other):
            deployer.ensure_workspace(conformance_project, workspace)
            self._deploy(deployer, conformance_render, conformance_project, workspace.functions[0])
        deployer.delete_workspace(conformance_project, "demo", "conformance-demo")
        assert deployer.observe(conformance_project, [demo]) == {}
        assert set(deployer.observe(conformance_project, [other])) == {"other/hello"}
        deployer.delete_workspace(conformance_project, "demo", "conformance-demo")  # already gone: no error
