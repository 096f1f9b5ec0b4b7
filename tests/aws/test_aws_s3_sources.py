"""The S3 source store against a real moto server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aws_support import BUCKET, StoreFactory
from faasops.errors import ProviderError
from faasops.model import Function, Location
from faasops.providers import SourceStore
from faasops.source import snapshot_directory


def function_with_source(tmp_path: Path, body: str = "print('hi')\n") -> tuple[Function, Any]:
    source = tmp_path / "hello"
    source.mkdir(exist_ok=True)
    (source / "app.py").write_text(body)
    function = Function(workspace="demo", name="hello", source_dir=source, source="functions/hello",
                        location=Location("faas.yaml", 1, 1))
    return function, snapshot_directory(source)


def test_store_honours_the_source_store_protocol(make_store: StoreFactory) -> None:
    assert isinstance(make_store(), SourceStore)


def test_upload_is_content_addressed_encrypted_and_typed(make_store: StoreFactory, s3: Any, tmp_path: Path) -> None:
    function, snapshot = function_with_source(tmp_path)
    uri = make_store().upload(function, snapshot)

    key = f"sources/{snapshot.digest.removeprefix('sha256:')}.tar.gz"
    assert uri == f"s3://{BUCKET}/{key}"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/gzip"
    assert head["Metadata"] == {"workspace": "demo", "function": "hello", "digest": snapshot.digest}
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == snapshot.archive


def test_second_upload_of_the_same_source_writes_nothing(make_store: StoreFactory, tmp_path: Path) -> None:
    function, snapshot = function_with_source(tmp_path)
    store = make_store()
    first = store.upload(function, snapshot)
    store.calls.clear()
    # The same process knows the key is there: no request at all (functions sharing a source) …
    assert store.upload(function, snapshot) == first
    assert store.calls == {}
    # … and another run asks once, then writes nothing.
    store = make_store()
    second = store.upload(function, snapshot)
    assert first == second
    assert store.calls == {"s3.HeadObject": 1}

    # A different tree is a different object.
    _, changed = function_with_source(tmp_path, "print('changed')\n")
    assert store.upload(function, changed) != first
    assert store.calls["s3.PutObject"] == 1


def test_kms_encryption_uses_the_configured_key(make_store: StoreFactory, s3: Any, moto: Any, tmp_path: Path) -> None:
    key_id = moto.client("kms").create_key()["KeyMetadata"]["KeyId"]
    function, snapshot = function_with_source(tmp_path)
    uri = make_store(sse="aws:kms", kms_key_id=key_id, prefix="team-a/src").upload(function, snapshot)
    key = uri.removeprefix(f"s3://{BUCKET}/")
    assert key.startswith("team-a/src/")
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]


def test_missing_bucket_without_create_bucket_says_how_to_fix_it(make_store: StoreFactory, s3: Any,
                                                                 tmp_path: Path) -> None:
    function, snapshot = function_with_source(tmp_path)
    with pytest.raises(ProviderError) as error:
        make_store(create_bucket=False).upload(function, snapshot)
    assert "create_bucket: true" in str(error.value) and BUCKET in str(error.value)
    assert s3.list_buckets()["Buckets"] == []


def test_created_bucket_blocks_public_access(make_store: StoreFactory, s3: Any, tmp_path: Path) -> None:
    make_store().upload(*function_with_source(tmp_path))
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
