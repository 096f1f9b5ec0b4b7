"""Garbage collection by the ``oci`` registry provider against a real docker-registry: the
project's repositories found through the catalog, images through their tags and the recorded
pushes (an untagged image cannot be listed), another project's repositories never touched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from faasops.plugins.ecr import DistributionRegistry
from faasops.providers import BuildResult, Retained, StoredArtifacts
from testkit.registry import OciRegistry
from registry_support import PASSWORD_ENV, RegistryReader, make_function, repository, start_registry

USER = "deployer"
SECRET = "gc-registry-pa55"


@pytest.fixture()
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[OciRegistry]:
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    server = start_registry({USER: SECRET})
    yield server
    server.stop()


def test_oci_garbage_finds_tagged_and_recorded_images_of_its_project_only(
        make_provider, hello_build: BuildResult, registry: OciRegistry) -> None:
    hello = make_function()
    mine = make_provider("oci", (hello,), registry_url=registry.url, username=USER, password_env=PASSWORD_ENV)
    assert isinstance(mine, StoredArtifacts)
    old = mine.push(hello, hello_build, "2024-01-01T00:00:00Z")
    new = mine.push(hello, hello_build, "2024-02-01T00:00:00Z")  # the same tag moves on: old is untagged
    other = DistributionRegistry(replace(mine.project, name="other"), mine.options)
    theirs = other.push(hello, hello_build, "2024-01-01T00:00:00Z")
    reader = RegistryReader(registry.url, USER, SECRET)

    # Untagged and not recorded: invisible, so nothing to collect.
    assert mine.garbage(Retained(artifacts=frozenset({new.reference}))).items == ()
    # Recorded by the history: found. All its blobs are shared with the kept image: 0 bytes go.
    found = mine.garbage(Retained(artifacts=frozenset({new.reference}), recorded=frozenset({old.reference})))
    assert [(i.kind, i.name, i.size) for i in found.items] == [("image", old.reference, 0)]
    # Nothing kept: the tagged image goes too, and their shared blobs count once; a plain
    # registry cannot delete repositories, so purge lists none.
    everything = mine.garbage(Retained(recorded=frozenset({old.reference}), purge=True))
    assert sorted(i.name for i in everything.items) == sorted([old.reference, new.reference])
    assert sum(i.size for i in everything.items) == hello_build.wasm_path.stat().st_size + _small_blobs(reader, new.reference)

    removed = mine.collect(found)
    assert [i.name for i in removed.items] == [old.reference]
    assert reader.get(f"/v2/{repository(hello)}/manifests/{old.digest}").status == 404
    reader.manifest(repository(hello), new.digest)  # kept
    reader.manifest("faasops/other/demo/hello", theirs.digest)  # another project's: untouched
    assert mine.collect(found).items == ()  # already gone


def _small_blobs(reader: RegistryReader, reference: str) -> int:
    """The config and locked-app layer sizes of an image (everything but the component)."""
    name, _, digest = reference.rpartition("@")
    manifest, _ = reader.manifest(name.partition("/")[2], digest)
    return manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"][1:])
