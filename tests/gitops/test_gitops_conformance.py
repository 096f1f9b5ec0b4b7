"""The gitops deployer meets the Deployer contract (faasops.conformance): each change a commit in
a clone of a bare repository, pushed to it; ``observe`` reads the committed tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops_support import bare_repository, git

from faasops.conformance import DeployerContract
from faasops.model import Project
from faasops.plugins.gitops import GitOpsDeployer


class TestGitOpsDeployer(DeployerContract):
    @pytest.fixture
    def deployer(self, conformance_project: Project, tmp_path: Path) -> GitOpsDeployer:
        (tmp_path / "git").mkdir()
        _, clone = bare_repository(tmp_path / "git")
        return GitOpsDeployer({"repository": str(clone), "remote": "origin"}, conformance_project.root)

    def test_every_change_is_a_pushed_commit(self, deployer: GitOpsDeployer, conformance_project: Project) -> None:
        demo = conformance_project.workspace("demo")
        assert demo is not None
        deployer.ensure_workspace(conformance_project, demo)
        assert deployer.deploy_note("demo").startswith("commit ")
        pushed = git(deployer.repository, "ls-remote", "origin", "refs/heads/main").split()[0]
        assert pushed == git(deployer.repository, "rev-parse", "HEAD").strip()
