"""faas.yaml's per-function ``dependencies:`` list: each entry is read as a requirements.txt line
(``faasops validate`` locates every refused entry at its faas.yaml line and column), installed
exactly as requirements.txt is (same install key, so the same cache entry), and refused beside
a requirements.txt that declares packages too. The remote builder carries the list to the
Builder service, which installs it the same way.

pip reads a local wheelhouse only (hermetic), written by :mod:`wheelhouse`.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from cli_support import run_faasops
from test_dependencies import MANIFEST as DEPS_MANIFEST
from test_dependencies import GREETING_APP, apply, assert_failed_once_at_build_start, pip_env
from test_dependencies import wheelhouse  # noqa: F401  (the fixture: greeting-tools, shout-lib, fastmath)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "builder"))

from builder_support import (  # noqa: E402
    BuilderServer, faasops, function_spec, local_service_config, remote_project,
)

pytestmark = pytest.mark.slow  # installs wheels and builds real components

MANIFEST = DEPS_MANIFEST + "        dependencies:\n{entries}"

# greeting-tools provides `greeting`; nothing provides `missing_module`: the build stops right
# after the install, before componentize-py.
STOPPING_APP = "import missing_module\n" + GREETING_APP


def write_project(root: Path, entries: list[str], app: str = GREETING_APP, requirements: str | None = None) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "faas.yaml").write_text(MANIFEST.format(entries="".join(f"          - {entry}\n" for entry in entries)))
    (root / "src" / "app.py").write_text(app)
    if requirements is not None:
        (root / "src" / "requirements.txt").write_text(requirements)
    return root


def test_validate_locates_each_refused_entry_in_faas_yaml(tmp_path):
    root = write_project(tmp_path / "p", ["greeting-tools==1.0", "'-e ./lib'", "'shout-lib @ https://example.com/s.whl'",
                                          "'--index-url https://evil.example/simple'", "'requests>>2'"])

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 1 and "Traceback" not in result.output
    at = "workspaces[0].functions[0].dependencies"
    for line, index, message in [
        (11, 1, "editable installs are not supported"),
        (12, 2, "shout-lib @ https://example.com/s.whl: direct URLs are not installed"),
        (13, 3, "`--index-url` is not read from requirements.txt: the build host's pip configuration chooses the index"),
        (14, 4, "'requests>>2' is not a requirement by name"),
    ]:
        assert f"faas.yaml:{line}:13 {at}[{index}]: {message}" in result.err, result.err
    assert f"{at}[0]" not in result.err


def test_validate_refuses_entries_that_are_not_requirement_strings(tmp_path):
    root = write_project(tmp_path / "p", ["3", "''", "'  # only a comment'"])

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 1 and "Traceback" not in result.output
    at = "workspaces[0].functions[0].dependencies"
    assert f"faas.yaml:10:13 {at}[0]:" in result.err and f"faas.yaml:11:13 {at}[1]:" in result.err, result.err
    assert f"faas.yaml:12:13 {at}[2]: an empty requirement" in result.err, result.err
    assert all(result.err.count(f"{at}[{index}]:") == 1 for index in range(3)), result.err  # each said once


def test_dependencies_beside_a_requirements_file_declaring_packages_are_refused(tmp_path):
    root = write_project(tmp_path / "p", ["greeting-tools==1.0"], requirements="shout-lib==1.2\nspin-sdk==3.4.1\n")

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 1, result.output
    assert ("faas.yaml:10:11 workspaces[0].functions[0].dependencies: the source directory's src/requirements.txt "
            "declares dependencies too (shout-lib); declare them in one place") in result.err, result.err
    # The http-py template's requirements.txt (the builder's toolchain only) may stay.
    (root / "src" / "requirements.txt").write_text("spin-sdk==3.4.1\ncomponentize-py==0.16.0\n")
    assert run_faasops("-C", str(root), "validate").code == 0


def test_listed_dependencies_install_as_requirements_txt_does_and_share_its_install(tmp_path, wheelhouse):
    cache = tmp_path / "cache"
    from_file = write_project(tmp_path / "file", [], app=STOPPING_APP, requirements="greeting-tools==1.0\n")
    (from_file / "faas.yaml").write_text(MANIFEST.replace("        dependencies:\n", "").format(entries=""))
    first = apply(from_file, pip_env(wheelhouse, cache))
    assert_failed_once_at_build_start(first, cache, "what requirements.txt installed (greeting-tools, shout-lib)")

    # The same requirement listed in faas.yaml: the same install key, so validate (which never
    # installs) finds the install the first build left, and checks the imports against it.
    listed = write_project(tmp_path / "listed", ["'greeting-tools == 1.0  # pinned'"], app=STOPPING_APP)
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    second = apply(listed, pip_env(empty, cache))

    assert second.code == 1 and "Traceback" not in second.output
    assert ("src/app.py:1:1: imports `missing_module`, but no module `missing_module` is in the source directory, the "
            "standard library, spin-sdk or what `dependencies:` installed (greeting-tools, shout-lib); add the package "
            "that provides `missing_module` to the function's `dependencies:` in faas.yaml") in second.err, second.err
    assert len([path for path in (cache / "deps").iterdir() if not path.name.startswith(".")]) == 1


def test_a_listed_native_package_is_refused_naming_its_entry(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", ["shout-lib==1.2", "fastmath==2.0"], app=STOPPING_APP)
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(result, cache, "dependencies[1]: fastmath 2.0 has only native wheels "
                                                     "(cp311-cp311-manylinux_2_17_x86_64)")


def test_changing_the_list_changes_the_plan(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", ["greeting-tools==1.0"], app=STOPPING_APP)
    env = pip_env(wheelhouse, tmp_path / "cache")
    assert run_faasops("-C", str(root), "plan", env=env).code in (0, 2)
    (root / "faas.yaml").write_text(MANIFEST.format(entries="          - greeting-tools==1.0\n          - shout-lib\n"))

    planned = run_faasops("-C", str(root), "plan", env=env)

    assert "dependencies" in planned.output, planned.output


@pytest.fixture(scope="module")
def builder(tmp_path_factory, wheelhouse) -> Iterator[BuilderServer]:
    """A service on the local backend whose pip reads only the test wheelhouse."""
    workdir = tmp_path_factory.mktemp("deps-list-builder")
    with BuilderServer(workdir, local_service_config(), env=pip_env(wheelhouse, workdir / "build-cache")) as server:
        yield server


def test_the_remote_builder_carries_the_list_to_the_service(builder: BuilderServer, tmp_path: Path) -> None:
    project = remote_project(tmp_path, builder.url, handler_source=STOPPING_APP)
    manifest = project / "faas.yaml"
    manifest.write_text(manifest.read_text().replace(
        "        source: functions/hello\n",
        # A requirement no local build installs: the client's validate can't check the imports.
        "        source: functions/hello\n        dependencies:\n          - greeting-tools>=1,<2\n"))

    result = faasops(project, "apply", "--auto-approve")

    assert result.code == 1, result.output
    assert "demo/hello: the remote build failed (task " in result.err
    # Installed by the service (the client's pip reads no wheelhouse), then its import check ran.
    assert ("app.py:1:1: imports `missing_module`, but no module `missing_module` is in the source directory, the "
            "standard library, spin-sdk or what `dependencies:` installed (greeting-tools, shout-lib)") in result.err


def test_the_service_refuses_a_listed_requirement_pip_would_not_install(builder: BuilderServer) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = GREETING_APP.encode()
        info = tarfile.TarInfo("app.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    spec = {"project": "demo", "function": function_spec(dependencies=["greeting-tools==1.0", "-e ./lib"])}

    response = builder.upload("/api/v1/build", raw.getvalue(), spec)

    assert response.status == 422, response.data
    assert "editable installs are not supported" in response.data.decode(), response.data
