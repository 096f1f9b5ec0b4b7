"""``sqlite_databases`` and ``files`` from faas.yaml to the Spin locked app and back: validated,
written into the artifact as ``spin registry push`` lays it out, and served by the local runtime
(`faasops apply` + `faasops invoke`, real builds)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from cli_support import REPO, run_faasops

HANDLER = REPO / "tests" / "runtime" / "handlers" / "sqlite_files"
DATA_LAYER = "application/vnd.wasm.content.layer.v1+data"

MANIFEST = """\
apiVersion: faasops/v1
project: hostapis
workspaces:
  - name: demo
    functions:
      - name: store
        source: functions/store
        sqlite_databases: [default]
        files:
          - static
          - {source: assets, destination: /data}
      - name: bare
        source: functions/store
"""


def write_project(root: Path, manifest: str = MANIFEST) -> Path:
    shutil.copytree(HANDLER, root / "functions" / "store", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "faas.yaml").write_text(manifest)
    return root


def oci_blob(root: Path, digest: str) -> bytes:
    return (root / ".faasops" / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def locked_app(root: Path, function: str) -> tuple[dict, dict]:
    """(manifest, locked app) of the function's newest artifact in the local OCI layout."""
    index = json.loads((root / ".faasops" / "oci" / "index.json").read_text())
    entries = [m for m in index["manifests"]
               if f"/{function}:" in m["annotations"]["org.opencontainers.image.ref.name"]]
    manifest = json.loads(oci_blob(root, entries[-1]["digest"]))
    return manifest, json.loads(oci_blob(root, manifest["layers"][-1]["digest"]))


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("hostapis"))
    result = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert result.code == 0, result.output
    return root


# ------------------------------------------------------------------------------ the locked app

@pytest.mark.slow
def test_locked_app_declares_the_databases_and_layers_each_file(applied: Path) -> None:
    manifest, locked = locked_app(applied, "store")
    component = locked["components"][0]

    assert component["metadata"]["databases"] == ["default"]
    files = {entry["path"]: entry for entry in component["files"]}
    assert sorted(files) == ["data/big.bin", "static/css/site.css", "static/index.html"]
    big = (HANDLER / "assets" / "big.bin").read_bytes()
    # Files above 128 bytes are a data layer each, named by digest; smaller ones are inlined.
    data_layers = [layer for layer in manifest["layers"] if layer["mediaType"] == DATA_LAYER]
    assert [(l["digest"], l["size"]) for l in data_layers] == [(files["data/big.bin"]["digest"], len(big))]
    assert oci_blob(applied, files["data/big.bin"]["digest"]) == big
    assert "inline" not in files["data/big.bin"]
    assert base64.b64decode(files["static/index.html"]["inline"]) == (HANDLER / "static" / "index.html").read_bytes()
    assert manifest["layers"][0]["mediaType"] == "application/vnd.wasm.content.layer.v1+wasm"

    _, bare = locked_app(applied, "bare")
    assert "files" not in bare["components"][0]
    assert "databases" not in (bare["components"][0].get("metadata") or {})


# ---------------------------------------------------------------------------- served locally

@pytest.mark.slow
def test_invoke_round_trips_every_sqlite_value_type(applied: Path) -> None:
    result = run_faasops("-C", str(applied), "invoke", "demo/store", "--path", "/roundtrip")

    assert result.code == 0, result.output
    rows = json.loads(result.out)["rows"]
    assert rows[0] == [["Value_Integer", -9223372036854775808], ["Value_Real", 2.5], ["Value_Text", "héllo ✓"],
                       ["Value_Blob", "00ff10"], ["Value_Null", None], ["Value_Text", "real"]]


@pytest.mark.slow
def test_the_default_database_persists_under_faasops_state(applied: Path) -> None:
    first = int(run_faasops("-C", str(applied), "invoke", "demo/store", "--path", "/count").out)
    second = int(run_faasops("-C", str(applied), "invoke", "demo/store", "--path", "/count").out)

    assert second == first + 1
    assert (applied / ".faasops" / "sqlite" / "demo" / "store" / "default.db").is_file()


@pytest.mark.slow
def test_a_function_without_sqlite_databases_gets_a_catchable_access_denied(applied: Path) -> None:
    result = run_faasops("-C", str(applied), "invoke", "demo/bare", "--path", "/denied?db=default", "-i")

    assert "403" in result.out.splitlines()[0]
    assert result.out.rstrip().endswith("Err(Error_AccessDenied: )")
    assert not (applied / ".faasops" / "sqlite" / "demo" / "bare").exists()


@pytest.mark.slow
def test_invoke_reads_mounted_files_and_not_the_rest_of_the_source(applied: Path) -> None:
    index = run_faasops("-C", str(applied), "invoke", "demo/store", "--path", "/file?path=/static/index.html")
    data = run_faasops("-C", str(applied), "invoke", "demo/store", "--path", "/list?path=/data")
    source = run_faasops("-C", str(applied), "invoke", "demo/store", "--path", "/file?path=/app.py")
    bare = run_faasops("-C", str(applied), "invoke", "demo/bare", "--path", "/file?path=/static/index.html")

    assert index.out.strip() == "<h1>hello</h1>"
    assert json.loads(data.out) == ["big.bin"]
    assert source.out.strip() == "FileNotFoundError"
    assert bare.out.strip() == "FileNotFoundError"


@pytest.mark.slow
def test_changing_a_mounted_file_redeploys_with_the_new_content(tmp_path: Path, applied: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(applied, root, ignore=shutil.ignore_patterns(".faasops"))
    assert run_faasops("-C", str(root), "apply", "--auto-approve").code == 0
    before, _ = locked_app(root, "store")
    (root / "functions" / "store" / "static" / "index.html").write_text("<h1>changed</h1>\n")

    applied_again = run_faasops("-C", str(root), "apply", "--auto-approve")

    assert applied_again.code == 0, applied_again.output
    after, _ = locked_app(root, "store")
    assert after != before
    invoked = run_faasops("-C", str(root), "invoke", "demo/store", "--path", "/file?path=/static/index.html")
    assert invoked.out.strip() == "<h1>changed</h1>"


# ------------------------------------------------------------------------------ validation

FILES_PROBLEMS = {
    "parent": ("- ../outside.txt", "must not contain '..'"),
    "absolute": ("- /etc/passwd", "must be relative to the source directory"),
    "missing": ("- nope.txt", "'nope.txt' does not exist in the source directory"),
    "destination": ("- {source: static, destination: data}", "must be an absolute path"),
    "whole-source": ("- .", "names the whole source directory"),
    "symlink": ("- linked", "linked is a symbolic link"),
    "symlink-inside": ("- static", "static/evil is a symbolic link"),
}


@pytest.mark.parametrize("case", sorted(FILES_PROBLEMS))
def test_validate_refuses_files_that_escape_or_do_not_exist(tmp_path: Path, case: str) -> None:
    entry, message = FILES_PROBLEMS[case]
    manifest = MANIFEST.replace("""          - static
          - {source: assets, destination: /data}
""", f"          {entry}\n")
    root = write_project(tmp_path, manifest)
    (tmp_path / "outside.txt").write_text("secret")
    source = root / "functions" / "store"
    # Links that stay inside the source (the snapshot allows those; files mounts don't).
    if case == "symlink":
        os.symlink("secret.txt", source / "linked")
    if case == "symlink-inside":
        os.symlink("../secret.txt", source / "static" / "evil")

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 1
    assert "faas.yaml:10:13 workspaces[0].functions[0].files[0]: " in result.output, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("labels, message", [
    ("[Default-db]", "not a valid SQLite database label"),
    ("[default, default]", "non-unique"),
    ("default", "expected a list"),
])
def test_validate_refuses_malformed_sqlite_databases(tmp_path: Path, labels: str, message: str) -> None:
    root = write_project(tmp_path, MANIFEST.replace("sqlite_databases: [default]", f"sqlite_databases: {labels}"))

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 1
    assert "sqlite_databases" in result.output and message in result.output, result.output


def test_validate_accepts_spin_style_labels_and_file_entries(tmp_path: Path) -> None:
    root = write_project(tmp_path, MANIFEST.replace("sqlite_databases: [default]",
                                                    "sqlite_databases: [default, user-data, audit_log]").replace(
        "          - static\n", "          - static\n          - 'static/**/*.css'\n          - app.py\n"))

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 0, result.output
