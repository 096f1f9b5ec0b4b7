"""A requirement with only native wheels is installed as under Spin when its compiled modules all
have pure-Python fallbacks beside them (http-router's ``router.py`` next to its ``.so``): faasops
takes the build host's CPython 3.12 wheel without the compiled files, and resolves its
dependencies the same way. A native wheel without full fallbacks is refused, naming the module.

pip reads a local wheelhouse only (hermetic); the native wheels carry the build host's platform
tag, as a PyPI manylinux wheel would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import run_faasops
from faasops.dependencies import host_platforms
from test_dependencies import GREETING_APP, assert_failed_once_at_build_start, apply, pip_env, write_project
from wheelhouse import file_hash, write_wheel

pytestmark = pytest.mark.slow  # installs wheels and builds real components

HOST_TAG = f"cp312-cp312-{host_platforms()[0]}"
EXTENSION = ".cpython-312-x86_64-linux-gnu.so"

ROUTE_APP = GREETING_APP.replace("from greeting import greet", "from fastroute import route").replace(
    'greet("faasops")', 'route("hello")')


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(house, "shout-lib", "1.2", {"shout.py": "def shout(text):\n    return text.upper()\n"})
    # Native, with a pure-Python module beside each compiled one (as http-router's wheels are),
    # a vendored shared library, and a dependency that is native with fallbacks too.
    write_wheel(house, "fastroute", "1.0", {
        "fastroute/__init__.py": "from fastroute.router import route\n",
        "fastroute/router.py": "from shout import shout\nfrom speedups import fast\n\n\n"
                               "def route(path):\n    return fast(shout('routed ' + path))\n",
        f"fastroute/router{EXTENSION}": b"\x7fELF",
        "fastroute.libs/libhelper-1a2b3c.so.1": b"\x7fELF",
    }, tag=HOST_TAG, requires=("shout-lib>=1", "speedups-helper==0.3"))
    write_wheel(house, "speedups-helper", "0.3", {
        "speedups/__init__.py": "def fast(text):\n    return text + ' (pure)'\n",
        f"speedups/__init__{EXTENSION}": b"\x7fELF",
    }, tag=HOST_TAG)
    # Native without a fallback for one of its modules.
    write_wheel(house, "numbers-c", "1.0", {
        "numbers_c/__init__.py": "from numbers_c.add import add\n",
        "numbers_c/add.py": "def add(a, b):\n    return a + b\n",
        f"numbers_c/add{EXTENSION}": b"\x7fELF",
        f"numbers_c/_core{EXTENSION}": b"\x7fELF",
    }, tag=HOST_TAG)
    return house


def installed_dir(cache: Path) -> Path:
    [installed] = [path for path in (cache / "deps").iterdir() if not path.name.startswith(".")]
    return installed


def test_native_wheels_with_python_fallbacks_install_without_their_compiled_files(tmp_path, wheelhouse):
    # The app imports `greeting`, which nothing installs: the build stops right after the install.
    root = write_project(tmp_path / "p", "fastroute==1.0\n", app=ROUTE_APP.replace("fastroute", "greeting"))
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(result, cache, "app.py:1:1: imports `greeting`", "what requirements.txt installed "
                                                     "(fastroute, shout-lib, speedups-helper)")
    site = installed_dir(cache)
    assert (site / "fastroute" / "router.py").is_file() and (site / "speedups" / "__init__.py").is_file()
    assert (site / "shout.py").is_file()
    assert not [path for path in site.rglob("*") if ".so" in path.name]
    fallback_info = (site / "fastroute-1.0.dist-info" / "FAASOPS_FALLBACK").read_text()
    assert fallback_info.splitlines() == [f"from fastroute-1.0-{HOST_TAG}.whl, without:",
                                          "fastroute.libs/libhelper-1a2b3c.so.1", f"fastroute/router{EXTENSION}"]
    # The dist-info stays: what the import check reads; validate now knows `fastroute` too.
    (root / "src" / "app.py").write_text(ROUTE_APP)
    assert run_faasops("-C", str(root), "validate", env=pip_env(wheelhouse, cache)).code == 0


def test_a_native_wheel_with_a_compiled_module_lacking_a_fallback_is_refused_naming_it(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "shout-lib==1.2\nnumbers-c==1.0\n", app=ROUTE_APP.replace("fastroute", "shout"))
    cache = tmp_path / "cache"

    result = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(
        result, cache,
        f"requirements.txt:2:1: numbers-c 1.0 has only native wheels ({HOST_TAG}): its compiled module numbers_c._core "
        f"(numbers_c/_core{EXTENSION}) has no pure-Python fallback (numbers_c/_core.py) and can't run in the "
        "component's WebAssembly CPython 3.12; use a pure-Python alternative")
    assert not (cache / "deps").exists() or not [p for p in (cache / "deps").iterdir() if not p.name.startswith(".")]


def test_hashes_name_the_native_wheel_that_was_downloaded(tmp_path, wheelhouse):
    native = file_hash(wheelhouse / f"fastroute-1.0-{HOST_TAG}.whl")
    others = (f"shout-lib==1.2 --hash={file_hash(wheelhouse / 'shout_lib-1.2-py3-none-any.whl')}\n"
              f"speedups-helper==0.3 --hash={file_hash(wheelhouse / f'speedups_helper-0.3-{HOST_TAG}.whl')}\n")
    app = ROUTE_APP.replace("fastroute", "greeting")
    cache = tmp_path / "cache"
    root = write_project(tmp_path / "p", f"fastroute==1.0 --hash=sha256:{'0' * 64}\n" + others, app=app)

    refused = apply(root, pip_env(wheelhouse, cache))

    assert_failed_once_at_build_start(refused, cache, f"requirements.txt:1:1: fastroute-1.0-{HOST_TAG}.whl matches "
                                                      "none of the hashes given for fastroute")
    (root / "src" / "requirements.txt").write_text(f"fastroute==1.0 --hash={native}\n" + others)
    accepted = apply(root, pip_env(wheelhouse, cache))
    assert "imports `greeting`" in accepted.err, accepted.output  # installed; the import check ran next


@pytest.mark.slow
def test_component_imports_the_python_fallback_of_a_native_wheel(tmp_path, wheelhouse):
    root = write_project(tmp_path / "p", "fastroute==1.0\n", app=ROUTE_APP)
    env = pip_env(wheelhouse)

    applied = apply(root, env)
    assert applied.code == 0, applied.output
    answer = run_faasops("-C", str(root), "invoke", "demo/hello", env=env)

    assert answer.code == 0, answer.output
    assert answer.out.strip() == "ROUTED HELLO (pure)"
