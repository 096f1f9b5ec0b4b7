"""Instant hot swap under `faasops up`: the local deploy step compiles the component into the
runtime cache, and `up` swaps the new version in (one log line per swap) without compiling it.
Real builds, real wasmtime, the real CLI."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from cli_support import run_faasops
from up_support import UpProcess, running_up

pytestmark = pytest.mark.slow

SWAP_WAIT_S = 120  # the deadline of a wait, not a speed assertion (bench/swap_bench.py measures)


def http(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def compiled_artifacts(cache: Path) -> set[str]:
    """The wasm sha256 digests the runtime cache holds compiled artifacts of."""
    return {path.name.split("-", 1)[0] for path in cache.glob("*.cwasm")}


def deployed_wasm_digest(project: Path) -> str:
    """The sha256 of the component the local registry holds for demo/hello's recorded artifact."""
    rows = run_faasops("-C", str(project), "get", "functions", "--format", "json")
    assert rows.code == 0, rows.output
    (row,) = [r for r in json.loads(rows.out) if r["name"] == "hello"]
    manifest_digest = row["artifact"].rpartition("@")[2].removeprefix("sha256:")
    blobs = project / ".faasops" / "oci" / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_digest).read_text())
    (layer,) = [layer for layer in manifest["layers"] if layer["mediaType"].endswith("wasm")]
    wasm = (blobs / layer["digest"].removeprefix("sha256:")).read_bytes()
    return hashlib.sha256(wasm).hexdigest()


def recorded_artifact(project: Path) -> str:
    rows = run_faasops("-C", str(project), "get", "functions", "--format", "json")
    return next(r["artifact"] for r in json.loads(rows.out) if r["name"] == "hello")


def short(image: str) -> str:
    """``local/…@sha256:0a1b…`` → ``sha256:0a1b2c3d4e5f``, as `faasops up` logs digests."""
    return "sha256:" + image.rpartition("@")[2].removeprefix("sha256:")[:12]


def wait_for_line(up: UpProcess, text: str) -> str:
    deadline = time.monotonic() + SWAP_WAIT_S
    while time.monotonic() < deadline:
        for line in up.log().splitlines():
            if text in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no line with {text!r} in the `faasops up` log:\n{up.log()}")


def test_apply_precompiles_and_up_swaps_the_new_version_in_with_one_log_line(
        hello_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "runtime-cache"
    monkeypatch.setenv("FAASOPS_RUNTIME_CACHE", str(cache))
    first = run_faasops("-C", str(hello_project), "apply", "--auto-approve")
    assert first.code == 0, first.output
    # The deploy step compiled the deployed component into the runtime cache.
    assert compiled_artifacts(cache) == {deployed_wasm_digest(hello_project)}
    old_artifact = recorded_artifact(hello_project)

    with running_up(hello_project, "--no-apply") as up:
        assert http(up.url + "/demo/hello/") == (200, b"Hello from Blue FaaS!")
        new_text = f"Hello again {uuid.uuid4()}"
        handler = hello_project / "functions" / "hello" / "app.py"
        handler.write_text(handler.read_text().replace("Hello from Blue FaaS!", new_text))

        applied = run_faasops("-C", str(hello_project), "apply", "--auto-approve")
        assert applied.code == 0, applied.output
        new_wasm = deployed_wasm_digest(hello_project)
        assert new_wasm in compiled_artifacts(cache), "apply returned before the new component was compiled"
        # A fresh build runs for seconds: CI logs hear from it while it runs.
        assert "building demo/hello (componentize-py) … 5 s" in applied.err, applied.err

        new_artifact = recorded_artifact(hello_project)
        line = wait_for_line(up, f"Swapped demo/hello {short(old_artifact)} → {short(new_artifact)}")
        # Loaded from the artifact apply compiled, not compiled by `up`.
        assert "ready in" in line and "compiled" not in line, line
        assert http(up.url + "/demo/hello/") == (200, new_text.encode())
    assert up.process.returncode == 0, up.log()


def test_precompile_false_leaves_the_compile_to_up(hello_project: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "runtime-cache"
    monkeypatch.setenv("FAASOPS_RUNTIME_CACHE", str(cache))
    manifest = hello_project / "faas.yaml"
    manifest.write_text(manifest.read_text() + "providers:\n  deployer: {type: local, precompile: false}\n")
    applied = run_faasops("-C", str(hello_project), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert compiled_artifacts(cache) == set()
    with running_up(hello_project, "--no-apply") as up:
        assert http(up.url + "/demo/hello/") == (200, b"Hello from Blue FaaS!")
    assert compiled_artifacts(cache) == {deployed_wasm_digest(hello_project)}
