"""The ``ecr`` registry provider against real services: moto's ECR API for credentials and
repositories, Debian's docker-registry for the OCI Distribution API, a real built component."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import socket
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from faasops.errors import ProviderError
from faasops.oci import IMAGE_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, SPIN_APP_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE
from faasops.plugins.ecr import DistributionRegistry, EcrRegistry
from faasops.providers import BuildResult
from testkit.moto import MotoServer
from testkit.registry import OciRegistry
from registry_support import (
    CREATED,
    PASSWORD_ENV,
    RegistryReader,
    make_function,
    repository,
    uploads,
)


@pytest.fixture()
def reader(registry: OciRegistry, ecr_password: str) -> RegistryReader:
    return RegistryReader(registry.url, "AWS", ecr_password)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------- push


def test_push_stores_a_spin_artifact_that_pulls_back_with_an_oci_accept_header(
    make_ecr, hello_build: BuildResult, registry: OciRegistry, reader: RegistryReader
):
    hello = make_function()
    provider = make_ecr((hello,))
    assert isinstance(provider, EcrRegistry)

    artifact = provider.push(hello, hello_build, CREATED)

    repo = repository(hello)
    assert artifact.pushed
    assert artifact.reference == f"{registry.host}/{repo}@{artifact.digest}"
    manifest, response = reader.manifest(repo, artifact.digest)
    assert response.headers["Content-Type"] == MANIFEST_MEDIA_TYPE
    assert response.headers["Docker-Content-Digest"] == artifact.digest
    assert "sha256:" + hashlib.sha256(response.data).hexdigest() == artifact.digest
    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert manifest["config"]["mediaType"] == IMAGE_CONFIG_MEDIA_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [WASM_LAYER_MEDIA_TYPE, SPIN_APP_MEDIA_TYPE]
    assert manifest["annotations"]["org.opencontainers.image.created"] == CREATED

    wasm = manifest["layers"][0]
    assert wasm["digest"] == hello_build.wasm_digest
    assert reader.blob_size(repo, wasm["digest"]) == hello_build.wasm_path.stat().st_size
    locked = json.loads(reader.blob(repo, manifest["layers"][1]["digest"]))
    assert locked["components"][0]["source"]["digest"] == hello_build.wasm_digest
    config = json.loads(reader.blob(repo, manifest["config"]["digest"]))
    assert (config["architecture"], config["os"]) == ("wasm", "wasip1")

    # Also tagged with the build key, resolving to the same digest.
    tag = hello_build.build_key.removeprefix("sha256:")[:16]
    assert reader.tags(repo) == [tag]
    _, by_tag = reader.manifest(repo, tag)
    assert by_tag.headers["Docker-Content-Digest"] == artifact.digest
    assert provider.calls["blob.uploaded"] == 3


def test_repush_of_the_same_build_and_created_is_identical_and_uploads_nothing(
    make_ecr, hello_build: BuildResult
):
    hello = make_function()
    first = make_ecr((hello,)).push(hello, hello_build, CREATED)

    again = make_ecr((hello,))  # a new run
    second = again.push(hello, hello_build, CREATED)

    assert second.digest == first.digest
    assert second.reference == first.reference
    assert second.pushed is False
    assert uploads(again.calls) == 0
    assert again.calls["registry.PUT manifest"] == 0
    assert again.calls["registry.HEAD blob"] == 0  # the manifest's presence vouches for its blobs
    # No ECR repository calls either: the registry already answered for the repository.
    assert again.calls["ecr.DescribeRepositories"] == again.calls["ecr.CreateRepository"] == 0


def test_a_new_created_time_pushes_a_new_manifest_but_no_blob(make_ecr, hello_build: BuildResult):
    hello = make_function()
    first = make_ecr((hello,)).push(hello, hello_build, CREATED)

    later = make_ecr((hello,))
    second = later.push(hello, hello_build, "2024-06-01T00:00:00Z")

    assert second.pushed and second.digest != first.digest
    assert later.calls["blob.skipped"] == 3
    assert uploads(later.calls) == 0


def test_second_function_with_the_same_component_does_not_upload_it_again(
    make_ecr, hello_build: BuildResult, reader: RegistryReader
):
    hello, twin = make_function("hello"), make_function("twin")
    provider = make_ecr((hello, twin))
    provider.push(hello, hello_build, CREATED)
    before = provider.calls["registry.PUT blob"]

    artifact = provider.push(twin, hello_build, CREATED)

    # Config and locked app differ per function; the 37 MB component is mounted, not uploaded.
    assert provider.calls["registry.PUT blob"] - before == 2
    assert provider.calls["blob.mounted"] == 1
    manifest, _ = reader.manifest(repository(twin), artifact.digest)
    assert reader.blob_size(repository(twin), manifest["layers"][0]["digest"]) == hello_build.wasm_path.stat().st_size


def test_a_later_run_mounts_the_component_from_a_function_built_from_the_same_source(
    make_ecr, hello_build: BuildResult
):
    hello, twin = make_function("hello"), make_function("twin")
    make_ecr((hello, twin)).push(hello, hello_build, CREATED)

    later = make_ecr((hello, twin))  # knows nothing about earlier uploads
    later.push(twin, hello_build, CREATED)

    assert later.calls["blob.mounted"] == 1
    assert later.calls["blob.uploaded"] == 2


def test_concurrent_pushes_from_threads_upload_the_shared_component_once(
    make_ecr, hello_build: BuildResult, reader: RegistryReader
):
    functions = tuple(make_function(f"fn{i}", workspace=("a", "b")[i % 2]) for i in range(6))
    provider = make_ecr(functions)

    with ThreadPoolExecutor(max_workers=6) as pool:
        artifacts = list(pool.map(lambda fn: provider.push(fn, hello_build, CREATED), functions))

    assert all(a.pushed for a in artifacts)
    assert len({a.digest for a in artifacts}) == 6
    assert provider.calls["ecr.GetAuthorizationToken"] == 1
    assert provider.calls["ecr.CreateRepository"] == 6
    # The component once, then mounted; config and locked app once per function.
    assert provider.calls["blob.uploaded"] == 1 + 2 * 6
    assert provider.calls["blob.mounted"] == 5
    for fn, artifact in zip(functions, artifacts):
        manifest, _ = reader.manifest(repository(fn), artifact.digest)
        assert manifest["annotations"]["org.opencontainers.image.title"] == fn.name


def test_chunked_upload_streams_the_component_in_patches(
    make_ecr, hello_build: BuildResult, reader: RegistryReader
):
    hello = make_function()
    chunk = 8 * 1024 * 1024
    provider = make_ecr((hello,), chunk_size=chunk)

    artifact = provider.push(hello, hello_build, CREATED)

    size = hello_build.wasm_path.stat().st_size
    assert provider.calls["registry.PATCH blob chunk"] == -(-size // chunk)
    manifest, _ = reader.manifest(repository(hello), artifact.digest)
    assert reader.blob_size(repository(hello), manifest["layers"][0]["digest"]) == size


def test_tag_option_and_moving_a_tag_onto_a_present_manifest(
    make_ecr, hello_build: BuildResult, reader: RegistryReader
):
    hello = make_function()
    first = make_ecr((hello,), tag="v1").push(hello, hello_build, CREATED)

    later = make_ecr((hello,), tag="v2")
    second = later.push(hello, hello_build, CREATED)

    assert second.pushed is False
    assert reader.tags(repository(hello)) == ["v1", "v2"]
    _, by_tag = reader.manifest(repository(hello), "v2")
    assert by_tag.headers["Docker-Content-Digest"] == first.digest
    assert uploads(later.calls) == 0


# ------------------------------------------------------------------------------ ECR repositories


def test_creates_the_ecr_repository_when_missing_with_the_configured_settings(
    make_ecr, hello_build: BuildResult, aws: MotoServer
):
    hello = make_function("Hello", workspace="Demo")
    provider = make_ecr((hello,), image_tag_mutability="IMMUTABLE", scan_on_push=True, repository_prefix="team/")

    provider.push(hello, hello_build, CREATED)

    repo = aws.client("ecr").describe_repositories(repositoryNames=["team/test/demo/hello"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert provider.calls["ecr.CreateRepository"] == 1


def test_an_existing_ecr_repository_is_used_as_it_is(make_ecr, hello_build: BuildResult, aws: MotoServer):
    aws.client("ecr").create_repository(repositoryName="faasops/test/demo/hello", imageTagMutability="MUTABLE")
    hello = make_function()
    provider = make_ecr((hello,))

    provider.push(hello, hello_build, CREATED)

    assert provider.calls["ecr.DescribeRepositories"] == 1
    assert provider.calls["ecr.CreateRepository"] == 0


def test_create_repositories_false_makes_no_repository_calls(make_ecr, hello_build: BuildResult, aws: MotoServer):
    hello = make_function()
    provider = make_ecr((hello,), create_repositories=False)

    provider.push(hello, hello_build, CREATED)

    assert aws.client("ecr").describe_repositories()["repositories"] == []
    assert not any(name.endswith("Repository") or name.endswith("Repositories") for name in provider.calls)


# ------------------------------------------------------------------------------ credentials


def test_the_ecr_token_is_fetched_once_per_run(make_ecr, hello_build: BuildResult):
    functions = (make_function("one"), make_function("two"), make_function("three"))
    provider = make_ecr(functions)

    for fn in functions:
        provider.push(fn, hello_build, CREATED)

    assert provider.calls["ecr.GetAuthorizationToken"] == 1


def test_irsa_web_identity_needs_no_settings(
    make_provider, hello_build: BuildResult, aws: MotoServer, registry: OciRegistry,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
):
    """In a pod, the EKS webhook sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE; boto3's default
    chain exchanges the token with sts:AssumeRoleWithWebIdentity. Here STS and ECR are moto's
    (through AWS_ENDPOINT_URL), and there are no static keys anywhere."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVtbzpmYWFzb3BzIn0.")
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/faasops-deployer")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    hello = make_function()
    provider = make_provider("ecr", (hello,), registry_url=registry.url)

    artifact = provider.push(hello, hello_build, CREATED)

    assert artifact.pushed
    assert provider.ecr.credential_method() == "assume-role-with-web-identity"
    assert provider.calls["ecr.GetAuthorizationToken"] == 1


def test_rejected_ecr_token_is_renewed_once_then_reported_without_the_secret(
    make_ecr, hello_build: BuildResult, registry: OciRegistry, ecr_password: str,
    caplog: pytest.LogCaptureFixture,
):
    registry.set_password("AWS", "not-the-ecr-token")
    hello = make_function()
    provider = make_ecr((hello,))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ProviderError) as raised:
        provider.push(hello, hello_build, CREATED)

    message = str(raised.value)
    assert message.startswith(f"registry rejected the credentials for user AWS at {registry.host}")
    assert "\n" not in message
    secrets = (ecr_password, base64.b64encode(f"AWS:{ecr_password}".encode()).decode())
    traceback_text = "".join(traceback.format_exception(raised.value))
    for text in (message, traceback_text, caplog.text, repr(provider.ecr.authorization())):
        for secret in secrets:
            assert secret not in text
    assert provider.calls["ecr.GetAuthorizationToken"] == 2


def test_password_env_overrides_the_ecr_token(
    make_ecr, hello_build: BuildResult, registry: OciRegistry, monkeypatch: pytest.MonkeyPatch
):
    registry.set_password("deployer", "override-s3cret")
    monkeypatch.setenv(PASSWORD_ENV, "override-s3cret")
    hello = make_function()
    provider = make_ecr((hello,), username="deployer", password_env=PASSWORD_ENV)

    artifact = provider.push(hello, hello_build, CREATED)

    assert artifact.pushed
    assert provider.calls["ecr.GetAuthorizationToken"] == 0
    assert provider.calls["ecr.CreateRepository"] == 1  # repositories still go through the ECR API


def test_wrong_override_password_is_reported_without_it(
    make_ecr, hello_build: BuildResult, registry: OciRegistry, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(PASSWORD_ENV, "wrong-Pa55word-value")
    hello = make_function()

    with pytest.raises(ProviderError) as raised:
        make_ecr((hello,), password_env=PASSWORD_ENV).push(hello, hello_build, CREATED)

    assert str(raised.value) == (
        f"registry rejected the credentials for user AWS at {registry.host} (password from ${PASSWORD_ENV})"
    )
    assert "wrong-Pa55word-value" not in repr(raised.value)


def test_unset_password_env_is_named(make_ecr, hello_build: BuildResult, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    hello = make_function()

    with pytest.raises(ProviderError, match=rf"password_env names \${PASSWORD_ENV}, which is not set"):
        make_ecr((hello,), password_env=PASSWORD_ENV).push(hello, hello_build, CREATED)


# ------------------------------------------------------------------------------ failures


def test_unreachable_registry_is_a_clear_error(make_ecr, hello_build: BuildResult):
    hello = make_function()
    port = closed_port()

    with pytest.raises(ProviderError) as raised:
        make_ecr((hello,), registry_url=f"http://127.0.0.1:{port}").push(hello, hello_build, CREATED)

    assert str(raised.value) == (
        f"registry http://127.0.0.1:{port} is unreachable (HEAD manifest): connection refused"
    )


def test_unreachable_ecr_api_is_a_clear_error(make_provider, hello_build: BuildResult, aws: MotoServer, registry: OciRegistry):
    hello = make_function()
    port = closed_port()
    provider = make_provider("ecr", (hello,), endpoint_url=f"http://127.0.0.1:{port}", connect_timeout_seconds=1)

    with pytest.raises(ProviderError, match=rf"^ECR API is unreachable at http://127.0.0.1:{port}"):
        provider.push(hello, hello_build, CREATED)


def test_missing_aws_credentials_point_at_irsa(
    make_ecr, hello_build: BuildResult, monkeypatch: pytest.MonkeyPatch
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    hello = make_function()

    with pytest.raises(ProviderError, match="no AWS credentials found. In a pod, use IRSA"):
        make_ecr((hello,)).push(hello, hello_build, CREATED)


@pytest.fixture()
def enforcing_moto(monkeypatch: pytest.MonkeyPatch):
    """A second moto server that enforces IAM policies after the first IAM calls (the setup)."""
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "6")
    with MotoServer() as server:
        yield server


def _limited_user(iam, name: str, actions: list[str]) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name, PolicyName="faasops",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_ecr_access_denied_names_the_missing_permission(
    enforcing_moto: MotoServer, make_provider, hello_build: BuildResult, aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
):
    iam = enforcing_moto.client("iam")
    no_create = _limited_user(iam, "ci-push", ["ecr:GetAuthorizationToken", "ecr:DescribeRepositories"])
    no_token = _limited_user(iam, "ci-none", ["ecr:DescribeRepositories"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.delenv("AWS_SECURITY_TOKEN")
    hello = make_function()
    with OciRegistry({"AWS": "123456789012-auth-token"}) as registry:
        for keys, permission in ((no_create, "ecr:CreateRepository"), (no_token, "ecr:GetAuthorizationToken")):
            for name, value in keys.items():
                monkeypatch.setenv(name, value)
            provider = make_provider("ecr", (hello,), endpoint_url=enforcing_moto.url, registry_url=registry.url)
            with pytest.raises(ProviderError) as raised:
                provider.push(hello, hello_build, CREATED)
            message = str(raised.value)
            assert message.startswith(f"ECR denied {permission}: the AWS identity needs IAM permission {permission} (")
            assert "\n" not in message and "<" not in message


def test_options_are_checked(make_provider, aws: MotoServer):
    with pytest.raises(ProviderError, match="remove 'password': faasops never reads credentials from faas.yaml"):
        make_provider("ecr", password="hunter2")
    with pytest.raises(ProviderError, match=r"providers.registry.pasword_env: unknown option 'pasword_env' \(did you mean 'password_env'\?\)"):
        make_provider("ecr", pasword_env="X")
    with pytest.raises(ProviderError, match="image_tag_mutability must be MUTABLE or IMMUTABLE"):
        make_provider("ecr", image_tag_mutability="sometimes")
    with pytest.raises(ProviderError, match="tag 'a b' is not a valid OCI tag"):
        make_provider("ecr", tag="a b")
    assert isinstance(make_provider("ecr"), DistributionRegistry)


def test_invalid_repository_names_are_reported(make_ecr, hello_build: BuildResult):
    hello = make_function()
    with pytest.raises(ProviderError, match="is not a valid repository name"):
        make_ecr((hello,), repository_prefix="Team//").push(hello, hello_build, CREATED)
