"""The ``gitops`` deployer: instead of applying to a cluster, it writes the objects faasops would
apply into a directory of a git repository and commits them (optionally pushing the branch), so
Argo CD or Flux deploys what faasops built and pushed.

The directory is a kustomize tree (:mod:`faasops.kustomize_tree`, the same layout as
``faasops render``): ``<namespace>/<kind>-<name>.yaml`` per object, a ``kustomization.yaml`` per
namespace and one at the root. What the deployer writes is what the ``kubernetes`` deployer
would apply (:mod:`faasops.handoff`): the workspace's Namespace, the function's SpinApp and
autoscaler, and the SpinAppExecutor it names.

* **Commits.** Every change of the Deployer contract is one commit — ``faasops: deploy demo/hello``
  (the image in the body), ``faasops: delete demo/hello``, ``faasops: namespace demo``,
  ``faasops: delete workspace demo`` — with the changed files listed in the body. Exactly the
  files faasops wrote or removed are staged and committed (``git commit --only``): other
  changes in the work tree, staged or not, stay out. Nothing changed, no commit. The commit
  is in the state: the task of the step (``faasops tasks``) says ``commit <sha> on <branch>``.
* **Branch.** ``branch`` (default: the branch checked out) is checked out first, created when
  missing; switching needs a clean work tree. With ``remote``, the branch is fetched and
  fast-forwarded before the first write of a run, and every commit is pushed to it; a push the
  remote refuses (someone pushed meanwhile) is an error saying so, and the next run
  fast-forwards first. Pushes run without a terminal prompt (``GIT_TERMINAL_PROMPT=0``): use a
  credential helper, an SSH key or a deploy token in the CI job; URLs are never printed with
  their credentials.
* **Drift.** ``observe`` reads the files: a plan compares the manifests with what the directory
  holds (an edit in git is drift, which the next apply writes back). It does not fetch.

Options (``providers.deployer`` in faas.yaml): ``repository`` (required: the work tree, relative
to the project root), ``directory`` (inside it; default ``faasops``), ``branch``, ``remote`` (a
remote name or URL to push to; default: none, commit only), ``author`` (``Name <email>``;
default ``faasops <faasops@localhost>``, also the committer), ``create_executors`` (true),
``runtime_class`` and ``spot_runtime_class`` (as for the ``kubernetes`` deployer): the
:data:`OPTIONS_SCHEMA`. ``apply --force-conflicts`` and ``--wait`` mean nothing here: the CLI
says so and ignores them.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from faasops.errors import ProviderError
from faasops.handoff import executor_object, executor_template, namespace_object
from faasops.hookspecs import hookimpl
from faasops.kustomize_tree import KustomizeTree, dump, object_path
from faasops.model import Function, Project, ProviderConfig, Workspace
from faasops.plugins.spinkube import (
    EXECUTOR_OPTIONS,
    FUNCTION_ID_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    WORKSPACE_ID_LABEL,
    function_id,
)
from faasops.providers import LiveObject
from faasops.template_sandbox import read_rendered

TYPE = "gitops"
WHERE = "providers.deployer"
DEFAULT_DIRECTORY = "faasops"
DEFAULT_AUTHOR = "faasops <faasops@localhost>"
_TEXT = {"type": "string", "minLength": 1}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "repository": {**_TEXT, "description": "the git work tree, relative to the project root"},
        "directory": {**_TEXT, "default": DEFAULT_DIRECTORY, "description": "the directory inside it"},
        "branch": {**_TEXT, "description": "branch to commit to (default: the checked-out one)"},
        "remote": {**_TEXT, "description": "remote name or URL to push to (default: commit only)"},
        "author": {**_TEXT, "default": DEFAULT_AUTHOR, "description": "`Name <email>` of the commits"},
        **EXECUTOR_OPTIONS,
    },
    "required": ["repository"],
}
GIT_TIMEOUT_S = 300.0  # a push over a slow link; a hung one must not hang CI forever
OBSERVED_KINDS = ("SpinApp", "HorizontalPodAutoscaler", "ScaledObject")
_AUTHOR = re.compile(r"^\s*([^<>]+?)\s*<([^<>\s]+)>\s*$")
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


class Git:
    """git commands in one work tree (git is run as a program, as ``--changed-since`` does)."""

    def __init__(self, work_tree: Path, author: tuple[str, str]):
        self.work_tree = work_tree
        name, email = author
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                    "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(["git", *args], cwd=self.work_tree, env=self.env, capture_output=True, text=True,
                                    timeout=GIT_TIMEOUT_S)
        except FileNotFoundError:
            raise ProviderError(f"{WHERE} (type gitops) needs git, which is not installed") from None
        except subprocess.TimeoutExpired:
            raise ProviderError(f"git {args[0]} in {self.work_tree} did not finish within {GIT_TIMEOUT_S:g}s") from None
        if check and result.returncode != 0:
            raise ProviderError(f"git {' '.join(_redacted(a) for a in args[:2])} in {self.work_tree} failed: "
                                f"{_redacted(_last_lines(result.stderr or result.stdout))}")
        return result

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()


class GitOpsDeployer:
    """A :class:`faasops.providers.Deployer` committing manifests to a git repository."""

    def __init__(self, options: Mapping[str, Any], project_root: Path):
        # Checked against OPTIONS_SCHEMA, defaults filled in, by the plugin manager.
        repository = options["repository"]
        directory = options.get("directory", DEFAULT_DIRECTORY)
        self.branch: str | None = options.get("branch")
        self.remote: str | None = options.get("remote")
        author = options.get("author", DEFAULT_AUTHOR)
        match = _AUTHOR.match(author or "")
        if match is None:
            raise ProviderError(f"{WHERE}.author must look like `Name <email>`, not {author!r}")
        self.executors = executor_template(options, WHERE)
        self.repository = (project_root / str(repository)).resolve()
        self.directory = PurePosixPath(str(directory))
        if self.directory.is_absolute() or ".." in self.directory.parts:
            raise ProviderError(f"{WHERE}.directory must be a relative path inside the repository, not {directory!r}")
        self.git = Git(self.repository, (match.group(1), match.group(2)))
        self.tree = KustomizeTree(self.repository / self.directory)
        self._lock = threading.RLock()  # one git index: apply's threads commit one at a time
        self._prepared = False
        self._notes: dict[str, str] = {}

    # ------------------------------------------------------------------------------ Deployer

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        """The files of each workspace's namespace directory, grouped by function."""
        live: dict[str, list[dict[str, Any]]] = {}
        for ws in workspaces:
            declared = project.workspace(ws) if isinstance(ws, str) else ws
            name = ws if isinstance(ws, str) else ws.name
            namespace = declared.spec()["namespace"] if declared is not None else name
            addresses = {function_id(name, f.name): f.address for f in (declared.functions if declared else ())}
            functions = [(fid, obj) for _, obj in self.tree.objects(namespace)
                         if (fid := _function_id(obj, name)) is not None]
            # SpinApps first: their names give the addresses of functions no longer declared.
            for fid, obj in sorted(functions, key=lambda item: OBSERVED_KINDS.index(item[1]["kind"])):
                address = addresses.setdefault(fid, f"{name}/{obj['metadata']['name']}")
                live.setdefault(address, []).append(obj)
        return {address: LiveObject(address, tuple(objects)) for address, objects in sorted(live.items())}

    def ensure_workspace(self, project: Project, workspace: Workspace) -> None:
        with self._lock:
            self._prepare()
            namespace = workspace.spec()["namespace"]
            shared = [obj for _, obj in self.tree.objects(namespace) if obj.get("kind") == "Namespace"]
            earlier = (shared[0].get("metadata") or {}).get("labels") if shared else None
            changed = self.tree.write(namespace_object(workspace, earlier)) + self.tree.refresh_kustomizations()
            self._commit(workspace.name, changed, f"faasops: namespace {namespace} (workspace {workspace.name})")

    def delete_workspace(self, project: Project, workspace: str, namespace: str) -> None:
        """Remove the namespace's directory, unless another workspace's functions are still in it."""
        with self._lock:
            self._prepare()
            others = [obj for _, obj in self.tree.objects(namespace) if obj.get("kind") == "SpinApp"
                      and ((obj.get("metadata") or {}).get("labels") or {}).get(WORKSPACE_ID_LABEL) != workspace]
            if others:
                return
            changed = self.tree.remove_namespace(namespace) + self.tree.refresh_kustomizations()
            self._commit(workspace, changed, f"faasops: delete workspace {workspace} (namespace {namespace})")

    def deploy(self, project: Project, function: Function, manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write the manifests (and the executor the SpinApp names), remove the function's files
        no longer rendered, commit. Returns the manifests as :meth:`observe` reads them back."""
        if not manifests:
            raise ProviderError(f"{function.address}: nothing to deploy (the scaffolder rendered no manifests)")
        with self._lock:
            self._prepare()
            namespace = manifests[0]["metadata"]["namespace"]
            changed: list[str] = []
            executor = executor_object(self.executors, project, function, manifests)
            if executor is not None:
                changed += self.tree.write(executor)
            keep = {object_path(m) for m in manifests}
            changed += self._remove_function(namespace, function.workspace, function.name, keep)
            for manifest in manifests:
                changed += self.tree.write(manifest)
            changed += self.tree.refresh_kustomizations()
            image = next((m["spec"].get("image") for m in manifests if m.get("kind") == "SpinApp"), None)
            self._commit(function.address, changed, f"faasops: deploy {function.address}",
                         [f"image: {image}"] if image else [])
        return [document for m in manifests for document in read_rendered(dump(m), f"{function.address} (written)")]

    def undeploy(self, project: Project, workspace: str, namespace: str, name: str) -> None:
        with self._lock:
            self._prepare()
            changed = self._remove_function(namespace, workspace, name, keep=set())
            changed += self.tree.refresh_kustomizations()
            self._commit(f"{workspace}/{name}", changed, f"faasops: delete {workspace}/{name}")

    def deploy_note(self, address: str) -> str:
        """What the last change of ``address`` committed (for its task message), once."""
        with self._lock:
            return self._notes.pop(address, "")

    # ------------------------------------------------------------------------------ files

    def _remove_function(self, namespace: str, workspace: str, name: str, keep: set[PurePosixPath]) -> list[str]:
        fid = function_id(workspace, name)
        changed: list[str] = []
        for path, obj in self.tree.objects(namespace):
            if path not in keep and _function_id(obj, workspace) == fid:
                changed += self.tree.remove(path)
        return changed

    # ------------------------------------------------------------------------------ git

    def _prepare(self) -> None:
        """Once per run, before the first write: the work tree exists, is on ``branch`` and (with
        ``remote``) has what the remote has."""
        if self._prepared:
            return
        if not self.repository.is_dir():
            raise ProviderError(f"{WHERE}.repository {self.repository} does not exist (clone the GitOps repository there)")
        top = self.git.run("rev-parse", "--show-toplevel", check=False)
        if top.returncode != 0:
            raise ProviderError(f"{WHERE}.repository {self.repository} is not a git work tree")
        current = self.git.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.strip()
        branch = self.branch or current
        if not branch:
            raise ProviderError(f"{self.repository} has a detached HEAD: set {WHERE}.branch")
        fetched = self.remote is not None and self._fetch(branch)
        if current != branch:
            self._switch(branch, fetched)
        if fetched:
            merge = self.git.run("merge", "--ff-only", "--quiet", "FETCH_HEAD", check=False)
            if merge.returncode != 0:
                raise ProviderError(
                    f"branch {branch} of {self.repository} has diverged from {_redacted(str(self.remote))}: "
                    f"rebase or reset it onto the remote's, then apply again ({_last_lines(merge.stderr)})")
        self.branch = branch
        self._prepared = True

    def _fetch(self, branch: str) -> bool:
        """Fetch ``branch`` from the remote; False when the remote does not have it yet."""
        fetch = self.git.run("fetch", "--quiet", str(self.remote), f"refs/heads/{branch}", check=False)
        if fetch.returncode == 0:
            return True
        if "couldn't find remote ref" in fetch.stderr:
            return False
        raise ProviderError(f"git fetch {_redacted(str(self.remote))} {branch} failed: {_redacted(_last_lines(fetch.stderr))}")

    def _switch(self, branch: str, fetched: bool) -> None:
        if self.git.out("status", "--porcelain"):
            raise ProviderError(f"{self.repository} is not on branch {branch} and its work tree has changes: "
                                "commit or stash them, or check the branch out yourself")
        unborn = self.git.run("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0
        exists = self.git.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0
        if exists:
            self.git.run("switch", "--quiet", branch)
        elif fetched:
            self.git.run("switch", "--quiet", "-c", branch, "FETCH_HEAD")
        elif unborn:
            self.git.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        else:
            self.git.run("switch", "--quiet", "-c", branch)

    def _commit(self, address: str, changed: list[str], subject: str, details: list[str] | None = None) -> None:
        """Commit exactly ``changed`` (paths in the tree), push with ``remote``; note the commit."""
        paths = sorted({str(self.directory / path) for path in changed})
        if not paths:
            return
        present = [p for p in paths if (self.repository / p).exists()]
        tracked = set(self.git.out("ls-files", "--", *paths).splitlines()) if paths else set()
        stage = sorted(set(present) | (tracked & set(paths)))
        if not stage:
            return
        self.git.run("add", "--all", "--", *stage)
        if self.git.run("diff", "--cached", "--quiet", "--", *stage, check=False).returncode == 0:
            return
        body = "\n".join([*(details or []), "", *(f"  {p}" for p in stage)]).strip("\n")
        self.git.run("commit", "--quiet", "--no-verify", "-m", subject, "-m", body, "--only", "--", *stage)
        sha = self.git.out("rev-parse", "HEAD")
        note = f"commit {sha} on {self.branch}"
        if self.remote is not None:
            push = self.git.run("push", "--quiet", str(self.remote), f"HEAD:refs/heads/{self.branch}", check=False)
            if push.returncode != 0:
                raise ProviderError(
                    f"committed {sha[:12]} to {self.branch} but {_redacted(str(self.remote))} refused the push "
                    f"({_redacted(_last_lines(push.stderr))}); the next apply fetches and fast-forwards first, "
                    "or push it yourself")
            note += f", pushed to {_redacted(str(self.remote))}"
        self._notes[address] = note


def _function_id(obj: dict[str, Any], workspace: str) -> str | None:
    """The function an object faasops wrote for ``workspace`` belongs to (None: not a function's)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if obj.get("kind") not in OBSERVED_KINDS or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return None
    if labels.get(WORKSPACE_ID_LABEL) != workspace:
        return None
    return labels.get(FUNCTION_ID_LABEL) or None


def _redacted(text: str) -> str:
    """``https://user:token@host/…`` → ``https://***@host/…``: remotes may carry credentials."""
    return _CREDENTIALS.sub(r"\1***@", text)


def _last_lines(text: str, count: int = 2) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[-count:]) or "no output"


# ------------------------------------------------------------------------------------------ hooks


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("deployer", TYPE, OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("deployer", TYPE, "commits the manifests to a git repository for Argo CD or Flux")]


@hookimpl
def faasops_deployer(config: ProviderConfig, project: Project) -> GitOpsDeployer | None:
    if config.type != TYPE:
        return None
    return GitOpsDeployer(config.options, project.root)
