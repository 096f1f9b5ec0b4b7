"""The Builder service and the remote builder treat requirements.txt exactly as a local build:
it travels in the source archive, the service installs it with the same code (and refuses a
native wheel naming it), and an upload whose imports nothing provides is refused up front."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "builder"))

from builder_support import BuilderServer, faasops, function_spec, local_service_config, remote_project  # noqa: E402
from test_dependencies import GREETING_APP, pip_env  # noqa: E402
from wheelhouse import write_wheel  # noqa: E402

pytestmark = pytest.mark.slow  # builds real components on a Builder service


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(house, "fastmath", "2.0", {"fastmath/__init__.py": "", "fastmath/_core.so": b"\x7fELF"},
                tag="cp311-cp311-manylinux_2_17_x86_64")
    return house


@pytest.fixture(scope="module")
def builder(tmp_path_factory, wheelhouse) -> Iterator[BuilderServer]:
    """A service on the local backend whose pip reads only the test wheelhouse, building into a
    cache of its own."""
    workdir = tmp_path_factory.mktemp("deps-builder")
    env = pip_env(wheelhouse, workdir / "build-cache")
    with BuilderServer(workdir, local_service_config(), env=env) as server:
        yield server


def test_a_remote_build_refuses_a_native_wheel_naming_it(builder: BuilderServer, tmp_path: Path) -> None:
    project = remote_project(tmp_path, builder.url, handler_source=GREETING_APP.replace("greeting", "fastmath"))
    (project / "functions" / "hello" / "requirements.txt").write_text("fastmath==2.0\n")
    assert faasops(project, "validate").code == 0  # declared dependencies are checked once installed

    result = faasops(project, "apply", "--auto-approve")

    assert result.code == 1, result.output
    assert "demo/hello: the remote build failed (task " in result.err
    assert ("requirements.txt:1:1: fastmath 2.0 has only native wheels (cp311-cp311-manylinux_2_17_x86_64): its "
            "compiled code can't run in the component's WebAssembly CPython 3.12") in result.err
    assert "demo/hello: demo/hello:" not in result.output


def test_the_service_refuses_an_upload_whose_imports_nothing_provides(builder: BuilderServer) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in {"app.py": "import requests\n" + GREETING_APP.replace("from greeting import greet\n", "")}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    response = builder.upload("/api/v1/build", raw.getvalue(), {"project": "demo", "function": function_spec()})

    assert response.status == 422, response.data
    detail = json.loads(response.data)["detail"]
    assert "app.py:1:1: imports `requests`, but no module `requests` is in the source directory" in detail
