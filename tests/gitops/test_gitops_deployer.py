"""The `gitops` deployer through the CLI: apply commits the manifests to a git repository and
pushes them to a (local, bare) remote; plan compares with the directory; destroy removes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_support import run_faasops
from gitops_support import bare_repository, files_under, git, make_project

DIRECTORY = "clusters/dev/faasops"
WORKSPACES = """\
- name: demo
  functions:
    - name: hello
      source: functions/hello
    - name: scaled
      source: functions/hello
      resources: {requests: {cpu: 100m}}
      autoscaling: {type: hpa, min: 1, max: 3, cpu: 70}
"""


def gitops_providers(**extra: str) -> str:
    options = {"type": "gitops", "repository": "../deploy-repo", "directory": DIRECTORY, "branch": "main",
               "remote": "origin", **extra}
    return "deployer:\n" + "".join(f"  {key}: {value}\n" for key, value in options.items())


@pytest.fixture()
def repo(tmp_path: Path) -> tuple[Path, Path]:
    """(bare remote, the clone the project commits to)."""
    return bare_repository(tmp_path)


@pytest.fixture()
def project(tmp_path: Path, repo: tuple[Path, Path]) -> Path:
    return make_project(tmp_path, WORKSPACES, gitops_providers())


def remote_files(bare: Path) -> list[str]:
    return sorted(git(bare, "ls-tree", "-r", "--name-only", "main").split())


def tasks(project: Path) -> list[dict]:
    listed = run_faasops("-C", str(project), "tasks", "--format", "json", "--limit", "200")
    assert listed.code == 0, listed.output
    return json.loads(listed.out)


@pytest.mark.slow
def test_apply_commits_exactly_the_rendered_tree_and_pushes_the_branch(
        project: Path, repo: tuple[Path, Path], tmp_path: Path) -> None:
    bare, clone = repo

    result = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert result.code == 0, result.output
    assert remote_files(bare) == ["README.md"] + [f"{DIRECTORY}/{name}" for name in (
        "demo/horizontalpodautoscaler-scaled.yaml", "demo/kustomization.yaml", "demo/namespace-demo.yaml",
        "demo/spinapp-hello.yaml", "demo/spinapp-scaled.yaml", "demo/spinappexecutor-containerd-shim-spin.yaml",
        "kustomization.yaml")]
    # The same files `faasops render` writes, byte for byte.
    rendered = tmp_path / "rendered"
    assert run_faasops("-C", str(project), "render", "--out", str(rendered)).code == 0
    assert files_under(clone / DIRECTORY) == files_under(rendered)
    # One commit per change, by faasops, saying what changed; the deploy task records the commit.
    subjects = git(bare, "log", "--format=%an <%ae>|%s", "main").splitlines()
    assert subjects[-1] == "Someone <someone@example.test>|start"
    assert sorted(subjects[:-1]) == ["faasops <faasops@localhost>|faasops: deploy demo/hello",
                                     "faasops <faasops@localhost>|faasops: deploy demo/scaled",
                                     "faasops <faasops@localhost>|faasops: namespace demo (workspace demo)"]
    deploy_commit = git(bare, "log", "-1", "--format=%H", "--grep=deploy demo/hello", "main").strip()
    assert "image: local/hello/demo/hello@sha256:" in git(bare, "show", "-s", "--format=%b", deploy_commit)
    deploy_task = next(t for t in tasks(project) if t["kind"] == "deploy" and t["function"] == "hello")
    assert deploy_task["message"] == f"commit {deploy_commit} on main, pushed to origin"

    plan = run_faasops("-C", str(project), "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output
    assert "No changes." in plan.out


@pytest.mark.slow
def test_an_edit_in_the_directory_is_drift_that_apply_commits_back(project: Path, repo: tuple[Path, Path]) -> None:
    bare, clone = repo
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
    spinapp = clone / DIRECTORY / "demo" / "spinapp-hello.yaml"
    original = spinapp.read_text()
    spinapp.write_text(original.replace("replicas: 1", "replicas: 5"))
    git(clone, "commit", "--quiet", "-am", "scale hello by hand")

    plan = run_faasops("-C", str(project), "plan", "--detailed-exitcode")

    assert plan.code == 2, plan.output
    assert "demo/hello" in plan.out and "replicas" in plan.out

    healed = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert healed.code == 0, healed.output
    assert spinapp.read_text() == original
    assert git(bare, "log", "-1", "--format=%s", "main").strip() == "faasops: deploy demo/hello"
    assert yaml.safe_load(git(bare, "show", f"main:{DIRECTORY}/demo/spinapp-hello.yaml"))["spec"]["replicas"] == 1


@pytest.mark.slow
def test_commits_stage_only_faasops_files_and_destroy_removes_them(project: Path, repo: tuple[Path, Path]) -> None:
    bare, clone = repo
    (clone / "README.md").write_text("edited, not staged\n")
    (clone / "notes.txt").write_text("staged by someone\n")
    git(clone, "add", "notes.txt")
    (clone / DIRECTORY).mkdir(parents=True)
    (clone / DIRECTORY / "untracked.txt").write_text("not faasops'\n")

    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0

    committed = set(git(clone, "log", "--format=", "--name-only", "origin/main~3..origin/main").split())
    assert committed and all(path.startswith(f"{DIRECTORY}/") and path.endswith(".yaml") for path in committed)
    status = git(clone, "status", "--porcelain").splitlines()
    assert sorted(status) == [" M README.md", f"?? {DIRECTORY}/untracked.txt", "A  notes.txt"]

    destroyed = run_faasops("-C", str(project), "destroy", "--auto-approve")

    assert destroyed.code == 0, destroyed.output
    assert remote_files(bare) == ["README.md"]
    assert git(bare, "log", "-1", "--format=%s", "main").strip() == "faasops: delete workspace demo (namespace demo)"
    assert sorted(files_under(clone / DIRECTORY)) == ["untracked.txt"]
    assert "A  notes.txt" in git(clone, "status", "--porcelain")
    delete_task = next(t for t in tasks(project) if t["kind"] == "delete" and t["function"] == "hello")
    assert delete_task["message"].startswith("commit ") and delete_task["message"].endswith("pushed to origin")


@pytest.mark.slow
def test_a_remote_that_moved_on_is_fast_forwarded_before_faasops_commits(
        project: Path, repo: tuple[Path, Path], tmp_path: Path) -> None:
    bare, _ = repo
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "--quiet", str(bare), str(other))
    (other / "apps.yaml").write_text("kind: List\n")
    git(other, "add", "apps.yaml")
    git(other, "commit", "--quiet", "-m", "a colleague's change")
    git(other, "push", "--quiet", "origin", "main")

    result = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert result.code == 0, result.output
    subjects = git(bare, "log", "--format=%s", "main").splitlines()
    assert subjects[-2:] == ["a colleague's change", "start"]
    assert len(subjects) == 5  # three of faasops' on top, nothing lost
    assert "apps.yaml" in remote_files(bare)


def test_without_a_remote_it_commits_locally_on_a_new_branch(tmp_path: Path, repo: tuple[Path, Path]) -> None:
    bare, clone = repo
    providers = ("deployer:\n  type: gitops\n  repository: ../deploy-repo\n  branch: faasops-dev\n"
                 "  create_executors: false\n")
    project = make_project(tmp_path, "- name: demo\n  functions: []\n", providers)

    result = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert result.code == 0, result.output
    assert git(clone, "symbolic-ref", "--short", "HEAD").strip() == "faasops-dev"
    assert git(clone, "show", "--name-only", "--format=%s", "faasops-dev").split() == [
        "faasops:", "namespace", "demo", "(workspace", "demo)",
        "faasops/demo/kustomization.yaml", "faasops/demo/namespace-demo.yaml", "faasops/kustomization.yaml"]
    assert git(bare, "branch", "--list", "--format=%(refname:short)").split() == ["main"]  # nothing pushed


@pytest.mark.parametrize(("providers", "message"), [
    ("deployer:\n  type: gitops\n", "providers.deployer: missing required option 'repository'"),
    ("deployer:\n  type: gitops\n  repository: ../deploy-repo\n  remote_url: x\n",
     "providers.deployer.remote_url: unknown option 'remote_url' (did you mean 'remote'?)"),
    ("deployer:\n  type: gitops\n  repository: ../deploy-repo\n  author: faasops\n",
     "providers.deployer.author must look like `Name <email>`"),
    ("deployer:\n  type: gitops\n  repository: ../deploy-repo\n  directory: ../outside\n",
     "providers.deployer.directory must be a relative path inside the repository"),
])
def test_invalid_options_are_one_line_errors(tmp_path: Path, providers: str, message: str) -> None:
    project = make_project(tmp_path, "- name: demo\n  functions: []\n", providers)

    result = run_faasops("-C", str(project), "plan")

    assert result.code == 1
    assert message in result.err
    assert "Traceback" not in result.output


def test_a_repository_that_is_not_a_git_work_tree_is_reported(tmp_path: Path) -> None:
    (tmp_path / "deploy-repo").mkdir()
    project = make_project(tmp_path, "- name: demo\n  functions: []\n",
                           "deployer:\n  type: gitops\n  repository: ../deploy-repo\n")

    result = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert result.code == 1
    assert f"providers.deployer.repository {tmp_path / 'deploy-repo'} is not a git work tree" in result.err
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_push_with_credentials_in_the_url_never_prints_them(tmp_path: Path, repo: tuple[Path, Path]) -> None:
    providers = gitops_providers(remote="https://deployer:s3cr3t-token@127.0.0.1:9/nothing.git")
    project = make_project(tmp_path, "- name: demo\n  functions: []\n", providers)

    result = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert result.code == 1
    assert "s3cr3t-token" not in result.output
    assert "https://***@127.0.0.1:9/nothing.git" in result.err
    assert "s3cr3t-token" not in json.dumps(tasks(project))
