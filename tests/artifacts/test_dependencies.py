"""requirements.txt is installed into the component from wheels only, cached by content, and
checked before componentize-py runs: a native wheel, a missing wheel, a wrong hash or an import
nothing provides fails at the start of the build with a message naming it.

pip reads a local wheelhouse only (``PIP_NO_INDEX=1``, ``PIP_FIND_LINKS``), so these tests are
hermetic; the wheels are written by :mod:`wheelhouse`.
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest

from build_support import make_function
from cli_support import run_faasops
from faasops.plugins.componentize import IMPORT_INTERFACE_NAMES, ComponentizePyBuilder
from faasops.source import snapshot_directory
from wheelhouse import file_hash, write_wheel

pytestmark = pytest.mark.slow  # installs wheels and builds real components

MANIFEST = """\
apiVersion: faasops/v1
project: deps
backend: local
workspaces:
  - name: demo
    functions:
      - name: hello
        source: src
"""

GREETING_APP = textwrap.dedent("""\
    from greeting import greet
    from spin_sdk import http
    from spin_sdk.http import Request, Response


    class IncomingHandler(http.IncomingHandler):
        def handle_request(self, request: Request) -> Response:
            return Response(200, {"content-type": "text/plain"}, greet("faasops").encode())
    """)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(house, "greeting-tools", "1.0",
                {"greeting/__init__.py": "from shout import shout\n\n\ndef greet(name):\n    return shout('hello ' + name)\n"},
                requires=("shout-lib>=1",))
    write_wheel(house, "shout-lib", "1.2", {"shout.py": "def shout(text):\n    return text.upper()\n"})
    write_wheel(house, "fastmath", "2.0", {"fastmath/__init__.py": "", "fastmath/_core.so": b"\x7fELF"},
                tag="cp311-cp311-manylinux_2_17_x86_64")
    write_wheel(house, "sneaky", "1.0", {"sneaky/__init__.py": "", "sneaky/_speedups.so": b"\x7fELF"})
    return house


def pip_env(wheelhouse: Path, cache: Path | None = None) -> dict[str, str]:
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_CONFIG_FILE": os.devnull}
    if cache is not None:
        env["FAASOPS_BUILD_CACHE"] = str(cache)
    return env


def write_project(root: Path, requirements: str, app: str = GREETING_APP) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "faas.yaml").write_text(MANIFEST)
    (root / "src" / "app.py").write_text(app)
    (root / "src" / "requirements.txt").write_text(requirements)
    return root


def apply(root: Path, env: dict[str, str]):
    return run_faasops("-C", str(root), "apply", "--auto-approve", env=env)


def assert_failed_once_at_build_start(result, cache: Path, *fragments: str) -> None:
    """The apply failed in its build step with ``fragments`` in the step's message, which the
    summary recalls by its first line, never with the address twice; no component was built."""
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert "demo/hello: demo/hello:" not in result.output
    failed = [line for line in result.err.splitlines() if "demo/hello: build failed — " in line]
    assert len(failed) == 1, result.err
    message = failed[0].split("demo/hello: build failed — ", 1)[1]
    recalled = [line for line in result.err.splitlines() if line.startswith("  demo/hello: ")]
    assert recalled in ([f"  demo/hello: {message}"], [f"  demo/hello: {message} (in full above)"]), result.err
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not list(cache.glob("*.wasm"))


def test_native_wheel_fails_at_build_start_naming_the_package_and_what_to_do(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "fastmath==2.0\n")
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(
        result, cache,
        "requirements.txt:1:1: fastmath 2.0 has only native wheels (cp311-cp311-manylinux_2_17_x86_64): its compiled "
        "code can't run in the component's WebAssembly CPython 3.12; use a pure-Python alternative, or a WASI build")


def test_a_pure_tagged_wheel_carrying_compiled_code_is_refused(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "sneaky\n")
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(result, cache, "sneaky 1.0 is native code (compiled file sneaky/_speedups.so)")
    assert not (cache / "deps").exists() or not [p for p in (cache / "deps").iterdir() if not p.name.startswith(".")]


def test_a_requirement_without_a_wheel_is_named(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "greeting-tools==1.0\nnot-published==3.1\n")
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(
        result, cache, "requirements.txt:2:1: no wheel of not-published for CPython 3.12 could be found: faasops "
                       "installs wheels only (no setup.py runs on the build host)")


def test_an_import_the_installed_packages_do_not_provide_fails_before_componentize(tmp_path, wheelhouse):
    # shout-lib installs module `shout`; the app imports `greeting` (from greeting-tools).
    root = write_project(tmp_path / "p", "shout-lib==1.2\n")
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    located = ("app.py:1:1: imports `greeting`, but no module `greeting` is in the source directory, the standard "
               "library, spin-sdk or what requirements.txt installed (shout-lib)")
    assert_failed_once_at_build_start(result, cache, located)
    # validate found nothing before (which modules shout-lib provides was unknown); now that a
    # build installed these very requirements, it knows.
    validated = run_faasops("-C", str(root), "validate", env=pip_env(wheelhouse, cache))
    assert validated.code == 1 and f"src/{located}" in validated.err, validated.output


def test_an_unchanged_requirements_file_is_never_reinstalled(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "shout-lib==1.2\n")
    cache = tmp_path / "cache"
    import_error = "imports `greeting`, but no module `greeting`"
    assert import_error in apply(root, pip_env(wheelhouse, cache)).err  # installed, then the import check failed
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()

    # Another app and a comment: the build key changes, the requirements as installed do not.
    (root / "src" / "app.py").write_text("# v2\n" + GREETING_APP)
    (root / "src" / "requirements.txt").write_text("# pinned\nshout-lib==1.2   # for shout()\n")
    second = apply(root, pip_env(empty, cache))

    assert import_error in second.err, second.output  # pip never ran: it would have found no wheel
    (root / "src" / "requirements.txt").write_text("shout-lib==1.2.0\n")
    third = apply(root, pip_env(empty, cache))
    assert "no wheel of shout-lib" in third.err, third.output


def test_hashes_are_honoured(tmp_path, wheelhouse):
    good = file_hash(wheelhouse / "shout_lib-1.2-py3-none-any.whl")
    bad = "sha256:" + "0" * 64
    cache = tmp_path / "cache"
    root = write_project(tmp_path / "p", f"shout-lib==1.2 --hash={bad}\n")

    refused = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(refused, cache, "pip could not install requirements.txt")
    assert "DO NOT MATCH THE HASHES" in refused.err
    assert "(from -r requirements.txt (line 1))" in refused.err
    (root / "src" / "requirements.txt").write_text(f"shout-lib==1.2 \\\n    --hash={bad} \\\n    --hash={good}\n")
    accepted = apply(root, pip_env(wheelhouse, cache))
    assert "imports `greeting`" in accepted.err, accepted.output  # installed; the import check ran next


def test_a_spin_sdk_of_another_handler_api_generation_is_refused(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "spin-sdk==4.0.0\ncomponentize-py==0.16.0\n",
                         app=GREETING_APP.replace("from greeting import greet\n", "greet = str\n"))
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(result, cache, "requirements.txt:1:1: spin-sdk==4.0.0 is asked for, but this "
                                                     "builder builds with spin-sdk 3.4.1 (the sync IncomingHandler API "
                                                     "of spin-sdk 2.x and 3.x)")


def test_the_install_key_joins_the_build_key_and_sources_without_dependencies_keep_theirs(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text(GREETING_APP)
    builder = ComponentizePyBuilder(tmp_path / "cache")
    function = make_function(source)

    def keys(requirements: str | None) -> tuple[str, str]:
        """(the build key, the key of the same inputs without the dependencies part)"""
        path = source / "requirements.txt"
        if requirements is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(requirements)
        snapshot = snapshot_directory(source)
        fields = {"source": snapshot.digest, "handler": function.handler, "toolchain": builder.toolchain,
                  "interface_names": [f"{wit}={name}" for wit, name in IMPORT_INTERFACE_NAMES]}
        material = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        return builder.build_key(function, snapshot), "sha256:" + hashlib.sha256(material).hexdigest()

    without, old_formula = keys(None)
    toolchain_only, toolchain_old = keys("spin-sdk==3.4.1\ncomponentize-py==0.16.0\n")
    pinned, pinned_old = keys("greeting-tools==1.0\n")

    # Sources without dependencies keep the key formula they had before dependencies existed.
    assert without == old_formula and toolchain_only == toolchain_old
    assert pinned != pinned_old


@pytest.mark.slow
def test_component_imports_a_pure_dependency_and_its_dependency_from_local_wheels(tmp_path, wheelhouse):
    # The shared build cache (tests/conftest.py): one real build per distinct source, across runs.
    root = write_project(tmp_path / "p", "greeting-tools==1.0\n")
    env = pip_env(wheelhouse)

    applied = apply(root, env)
    assert applied.code == 0, applied.output
    answer = run_faasops("-C", str(root), "invoke", "demo/hello", env=env)

    assert answer.code == 0, answer.output
    assert answer.out.strip() == "HELLO FAASOPS"
