"""Garbage collection by the ``ecr`` registry provider: images are deleted with ECR's documented
``BatchDeleteImage``; an image the ECR API does not know lives only behind ``registry_url``
(here a docker-registry apart from the ECR API on moto) and is deleted there through the
registry API."""

from __future__ import annotations

import json

from faasops.providers import BuildResult, Garbage, StoredItem
from testkit.moto import MotoServer
from testkit.registry import OciRegistry
from registry_support import RegistryReader, make_function, repository


def test_ecr_deletes_images_through_its_api_and_the_rest_through_the_registry(
        make_ecr, aws: MotoServer, registry: OciRegistry, ecr_password: str, hello_build: BuildResult) -> None:
    hello = make_function()
    ecr = make_ecr((hello,))
    pushed = ecr.push(hello, hello_build, "2024-01-01T00:00:00Z")  # into the docker-registry
    name = repository(hello)
    api = aws.client("ecr")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": "sha256:" + "4" * 64}, "layers": []}
    known = api.put_image(repositoryName=name, imageManifest=json.dumps(manifest),
                          imageTag="by-api")["image"]["imageId"]["imageDigest"]
    host = pushed.reference.partition("/")[0]
    garbage = Garbage(f"registry {host}", (StoredItem("image", f"{host}/{name}@{known}", 0),
                                           StoredItem("image", pushed.reference, 0)), ())

    removed = ecr.collect(garbage)

    assert sorted(i.name for i in removed.items) == sorted(i.name for i in garbage.items)
    assert api.describe_images(repositoryName=name)["imageDetails"] == []
    reader = RegistryReader(registry.url, "AWS", ecr_password)
    assert reader.get(f"/v2/{name}/manifests/{pushed.digest}").status == 404
    assert ecr.calls.get("ecr.BatchDeleteImage") == 1
    assert ecr.collect(garbage).items == ()  # gone from both: nothing left to remove
