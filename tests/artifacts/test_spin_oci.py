"""Spin OCI artifacts and the on-disk OCI image layout."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from pathlib import Path

import jsonschema
import pytest

from build_support import make_function
from faasops.errors import ProviderError
from faasops.model import SecretRef
from faasops.oci import (
    IMAGE_CONFIG_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    SPIN_APP_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
    OciLayout,
    function_artifact,
    spin_artifact,
)

CREATED = "2024-05-01T12:00:00Z"

# The shapes the OCI image-spec (image-layout.md, image-index.md, descriptor.md) requires.
DESCRIPTOR = {
    "type": "object",
    "required": ["mediaType", "digest", "size"],
    "properties": {
        "mediaType": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"},
        "digest": {"type": "string", "pattern": r"^sha256:[a-f0-9]{64}$"},
        "size": {"type": "integer", "minimum": 0},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
INDEX_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "manifests"],
    "properties": {
        "schemaVersion": {"const": 2},
        "mediaType": {"const": INDEX_MEDIA_TYPE},
        "manifests": {"type": "array", "items": DESCRIPTOR},
    },
}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "config", "layers"],
    "properties": {
        "schemaVersion": {"const": 2},
        "mediaType": {"const": MANIFEST_MEDIA_TYPE},
        "config": DESCRIPTOR,
        "layers": {"type": "array", "minItems": 1, "items": DESCRIPTOR},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def fake_wasm(path: Path, payload: bytes = b"component") -> tuple[Path, str]:
    data = b"\x00asm\x0d\x00\x01\x00" + payload
    path.write_bytes(data)
    return path, "sha256:" + hashlib.sha256(data).hexdigest()


def assert_valid_layout(root: Path) -> None:
    """Every rule of image-layout.md this layout can break."""
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    jsonschema.validate(index, INDEX_SCHEMA)
    for blob in (root / "blobs" / "sha256").iterdir():
        if blob.name.startswith("."):
            pytest.fail(f"temporary file left in blobs: {blob.name}")
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, "blob name is its digest"
    for entry in index["manifests"]:
        manifest_bytes = (root / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes()
        assert len(manifest_bytes) == entry["size"]
        manifest = json.loads(manifest_bytes)
        jsonschema.validate(manifest, MANIFEST_SCHEMA)
        for descriptor in [manifest["config"], *manifest["layers"]]:
            blob = root / "blobs" / "sha256" / descriptor["digest"].split(":")[1]
            assert blob.stat().st_size == descriptor["size"]


# ------------------------------------------------------------------------------- spin artifact


def test_spin_artifact_has_the_layout_spin_registry_push_produces(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    artifact = spin_artifact(wasm, digest, "hello", CREATED, {"com.example.team": "payments"})
    manifest = artifact.manifest_dict
    jsonschema.validate(manifest, MANIFEST_SCHEMA)

    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [WASM_LAYER_MEDIA_TYPE, SPIN_APP_MEDIA_TYPE]
    assert manifest["layers"][0] == {"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": digest, "size": wasm.stat().st_size}
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.title": "hello",
        "com.example.team": "payments",
    }

    locked_layer = artifact.layers[1]
    assert manifest["layers"][1]["digest"] == "sha256:" + hashlib.sha256(locked_layer.data).hexdigest()
    assert json.loads(locked_layer.data) == {
        "spin_lock_version": 0,
        "metadata": {"name": "hello", "trigger": {"type": "http"}},
        "triggers": [
            {
                "id": "hello-http-trigger",
                "trigger_type": "http",
                "trigger_config": {"component": "hello", "route": "/..."},
            }
        ],
        "components": [{"id": "hello", "source": {"content_type": "application/wasm", "digest": digest}}],
    }

    assert manifest["config"]["mediaType"] == IMAGE_CONFIG_MEDIA_TYPE
    assert json.loads(artifact.config.data) == {
        "architecture": "wasm",
        "os": "wasip1",
        "config": {"Labels": {"com.fermyon.spin.lockedAppDigest": locked_layer.digest}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    assert artifact.digest == "sha256:" + hashlib.sha256(artifact.manifest).hexdigest()


def test_manifest_bytes_are_canonical_json(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    artifact = spin_artifact(wasm, digest, "hello", CREATED)
    value = json.loads(artifact.manifest)
    assert artifact.manifest == json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def test_same_inputs_give_the_same_manifest_digest(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    copy, _ = fake_wasm(tmp_path / "copy.wasm")
    first = spin_artifact(wasm, digest, "hello", CREATED, {"a": "1", "b": "2"})
    second = spin_artifact(copy, None, "hello", CREATED, {"b": "2", "a": "1"})  # hashed here
    assert first.digest == second.digest
    assert first.manifest == second.manifest
    assert spin_artifact(wasm, digest, "hello", "2024-05-02T00:00:00Z").digest != first.digest
    assert spin_artifact(wasm, digest, "other", CREATED).digest != first.digest


def test_env_and_declared_variables_go_into_the_locked_app_without_values(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    function = make_function(
        tmp_path,
        env={"LOG_LEVEL": "debug"},
        variables={"greeting": "hi there"},
        secrets=(SecretRef("API_TOKEN", "kubernetes", "tokens", "api"),),  # an env-style name
    )
    artifact = function_artifact(function, wasm, digest, CREATED)
    locked = artifact.locked_app()
    assert locked["variables"] == {"api_token": {"secret": True}, "greeting": {}}
    component = locked["components"][0]
    assert component["env"] == {"LOG_LEVEL": "debug"}
    assert component["config"] == {"api_token": "{{ api_token }}", "greeting": "{{ greeting }}"}
    assert b"hi there" not in artifact.layers[1].data, "variable values stay out of the artifact"
    plain = spin_artifact(wasm, digest, "hello", CREATED)
    assert artifact.digest != plain.digest


def test_a_secret_and_a_variable_with_one_spin_name_are_rejected(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    function = make_function(
        tmp_path, variables={"db_password": "x"}, secrets=(SecretRef("DB_PASSWORD", "kubernetes", "db"),)
    )
    with pytest.raises(ProviderError, match="db_password declared as variable and secret"):
        function_artifact(function, wasm, digest, CREATED)


@pytest.mark.parametrize("name", ["Greeting", "api-token", "_x", "x_", "a__b", "1st"])
def test_invalid_spin_variable_names_are_rejected(tmp_path, name):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    with pytest.raises(ProviderError, match="not a valid Spin variable name"):
        spin_artifact(wasm, digest, "hello", CREATED, variables=[name])


# ---------------------------------------------------------------------------------- OCI layout


def test_layout_stores_an_artifact_per_the_image_layout_spec(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    artifact = spin_artifact(wasm, digest, "hello", CREATED)
    layout = OciLayout(tmp_path / "layout")

    stored = layout.put_artifact(artifact, "demo/hello:latest")

    assert stored == artifact.digest
    assert_valid_layout(layout.root)
    index = json.loads((layout.root / "index.json").read_text())
    assert index["manifests"] == [
        {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": artifact.digest,
            "size": len(artifact.manifest),
            "annotations": {"org.opencontainers.image.ref.name": "demo/hello:latest"},
        }
    ]
    assert layout.resolve("demo/hello:latest") == artifact.manifest_dict
    assert layout.resolve(artifact.digest) == artifact.manifest_dict
    assert layout.wasm_path_for(artifact.digest).read_bytes() == wasm.read_bytes()
    assert layout.list_refs() == {"demo/hello:latest": artifact.digest}
    for blob in artifact.blobs():
        assert layout.has_blob(blob.digest)


def test_identical_wasm_in_two_artifacts_is_stored_once(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    layout = OciLayout(tmp_path / "layout")
    one = layout.put_artifact(spin_artifact(wasm, digest, "one", CREATED), "demo/one:v1")
    two = layout.put_artifact(spin_artifact(wasm, digest, "two", CREATED), "demo/two:v1")

    assert one != two
    assert layout.wasm_path_for(one) == layout.wasm_path_for(two)
    # wasm + (locked app, config, manifest) per artifact
    assert len(list((layout.root / "blobs" / "sha256").iterdir())) == 1 + 3 * 2
    assert_valid_layout(layout.root)


def test_putting_a_ref_again_moves_it(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    layout = OciLayout(tmp_path / "layout")
    old = layout.put_artifact(spin_artifact(wasm, digest, "hello", CREATED), "demo/hello:latest")
    new = layout.put_artifact(spin_artifact(wasm, digest, "hello", "2025-01-01T00:00:00Z"), "demo/hello:latest")
    assert old != new
    assert layout.list_refs() == {"demo/hello:latest": new}
    assert layout.resolve(old)["annotations"]["org.opencontainers.image.created"] == CREATED


def test_put_blob_verifies_the_digest_and_skips_existing(tmp_path):
    layout = OciLayout(tmp_path / "layout")
    data = b"some bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with pytest.raises(ProviderError, match="expected"):
        layout.put_blob(b"other bytes", digest)
    assert not layout.has_blob(digest)
    assert not [p for p in (layout.root / "blobs" / "sha256").iterdir()], "no partial blob left"
    assert layout.put_blob(data, digest) is True
    assert layout.put_blob(data, digest) is False
    assert layout.blob_path(digest).read_bytes() == data


def test_unknown_refs_and_digests_are_provider_errors(tmp_path):
    layout = OciLayout(tmp_path / "layout")
    with pytest.raises(ProviderError, match="no artifact named"):
        layout.resolve("demo/missing:latest")
    with pytest.raises(ProviderError, match="no blob"):
        layout.resolve("sha256:" + "a" * 64)
    with pytest.raises(ProviderError, match="not a sha256 digest"):
        layout.blob_path("sha256:../../etc/passwd")


def _put_from_process(root: str, wasm: str, digest: str, name: str) -> str:
    return OciLayout(Path(root)).put_artifact(spin_artifact(Path(wasm), digest, name, CREATED), f"demo/{name}:v1")


def test_concurrent_puts_from_threads_and_processes_keep_every_ref(tmp_path):
    wasm, digest = fake_wasm(tmp_path / "app.wasm")
    root = tmp_path / "layout"
    OciLayout(root)
    names = [f"fn{i}" for i in range(16)]
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        pending = pool.starmap_async(_put_from_process, [(str(root), str(wasm), digest, n) for n in names[:8]])
        threads = [
            threading.Thread(target=_put_from_process, args=(str(root), str(wasm), digest, n)) for n in names[8:]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pending.get(timeout=60)

    layout = OciLayout(root)
    assert sorted(layout.list_refs()) == sorted(f"demo/{n}:v1" for n in names)
    assert_valid_layout(root)


@pytest.mark.slow
def test_a_real_component_round_trips_through_the_layout(hello_build, tmp_path):
    result = hello_build.result
    artifact = function_artifact(hello_build.function, result.wasm_path, result.wasm_digest, CREATED)
    layout = OciLayout(tmp_path / "layout")
    digest = layout.put_artifact(artifact, "demo/hello:latest")
    stored = layout.wasm_path_for(digest)
    assert stored != result.wasm_path
    assert "sha256:" + hashlib.sha256(stored.read_bytes()).hexdigest() == result.wasm_digest
    assert_valid_layout(layout.root)
