"""The API's read cache of the declared project: loaded again exactly when the git work tree
changed (a commit, an edit of a tracked or untracked file, a revert), never otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api_support import ApiServer, git, make_git_project
from faasops.api.project_cache import ProjectCache
from faasops.errors import ManifestError
from faasops.manifest import load_project
from faasops.model import Project


class CountingLoader:
    def __init__(self, project_dir: Path):
        self.project_dir = project_dir
        self.loads = 0

    def __call__(self) -> Project:
        self.loads += 1
        return load_project(self.project_dir, None)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_git_project(tmp_path)


def function_names(project: Project) -> list[str]:
    return sorted(f.name for f in project.functions())


def add_function(manifest: Path, name: str) -> None:
    manifest.write_text(manifest.read_text() + f"      - name: {name}\n        source: functions/hello\n")


def test_an_unchanged_tree_is_loaded_once(project: Path) -> None:
    loader = CountingLoader(project)
    cache = ProjectCache(project, loader)

    first, second = cache.get(), cache.get()

    assert second is first
    assert loader.loads == 1


def test_every_kind_of_change_loads_again(project: Path) -> None:
    manifest = project / "faas.yaml"
    loader = CountingLoader(project)
    cache = ProjectCache(project, loader)
    assert function_names(cache.get()) == ["hello"]

    add_function(manifest, "one")  # a tracked file edited
    assert function_names(cache.get()) == ["hello", "one"]
    add_function(manifest, "two")  # the same already modified file edited again
    assert function_names(cache.get()) == ["hello", "one", "two"]
    git(project, "add", "faas.yaml")  # staged: same content, the cached project stays right
    assert function_names(cache.get()) == ["hello", "one", "two"]
    git(project, "commit", "-q", "-m", "two more")  # a commit
    assert function_names(cache.get()) == ["hello", "one", "two"]
    git(project, "reset", "-q", "--hard", "HEAD~1")  # back to the first commit: clean again
    assert function_names(cache.get()) == ["hello"]

    # A second edit of a modified file that keeps its size: only the modification time tells.
    add_function(manifest, "x")
    assert function_names(cache.get()) == ["hello", "x"]
    manifest.write_text(manifest.read_text().replace("name: x", "name: y"))
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert function_names(cache.get()) == ["hello", "y"]
    loads = loader.loads
    cache.get()
    assert loader.loads == loads


def test_an_invalid_tree_is_an_error_on_every_read_until_fixed(project: Path) -> None:
    manifest = project / "faas.yaml"
    good = manifest.read_text()
    cache = ProjectCache(project, CountingLoader(project))
    cache.get()
    manifest.write_text(good.replace("name: hello", "name: Hello_World"))

    for _ in range(2):
        with pytest.raises(ManifestError):
            cache.get()
    manifest.write_text(good)
    assert function_names(cache.get()) == ["hello"]


def test_without_a_work_tree_every_read_loads(tmp_path: Path) -> None:
    project = make_git_project(tmp_path)
    loader = CountingLoader(project)
    cache = ProjectCache(None, loader)
    cache.get()
    cache.get()
    assert loader.loads == 2


def test_the_api_answers_a_hand_edit_made_between_two_reads(api_server: ApiServer) -> None:
    api = api_server.client()
    manifest = api_server.project / "faas.yaml"
    assert [f["name"] for f in api.get("/api/workspaces/demo/functions").json()["functions"]] == ["hello"]

    add_function(manifest, "second")

    listed = api.get("/api/workspaces/demo/functions").json()["functions"]
    assert [(f["name"], f["status"]) for f in listed] == [("hello", "pending-create"), ("second", "pending-create")]


def test_renames_and_paths_with_spaces_are_followed(project: Path) -> None:
    manifest = project / "faas.yaml"
    loader = CountingLoader(project)
    cache = ProjectCache(project, loader)
    (project / "notes with spaces.txt").write_text("a\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "notes")
    git(project, "mv", "faas.yaml", "faas.yml")
    git(project, "mv", "faas.yml", "faas.yaml")  # back: the tree is clean again
    cache.get()
    (project / "notes with spaces.txt").write_text("b\n")
    cache.get()
    (project / "notes with spaces.txt").write_text("cc\n")
    cache.get()
    assert loader.loads == 3
    git(project, "mv", "faas.yaml", "renamed.yaml")
    git(project, "mv", "renamed.yaml", "faas.yaml")
    add_function(manifest, "moved")
    assert function_names(cache.get()) == ["hello", "moved"]
