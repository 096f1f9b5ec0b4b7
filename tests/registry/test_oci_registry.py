"""The ``oci`` registry provider: any distribution registry, with basic auth, the bearer token
flow, or anonymously — against a real docker-registry in each mode."""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator

import pytest

from faasops.errors import ProviderError
from faasops.oci import SPIN_APP_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE
from faasops.plugin_manager import provider_types
from faasops.plugins.ecr import DistributionRegistry, EcrRegistry, merge_scopes, parse_challenge
from faasops.providers import BuildResult
from testkit.registry import OciRegistry
from registry_support import (
    CREATED,
    PASSWORD_ENV,
    RegistryReader,
    make_function,
    repository,
    start_registry,
    uploads,
)

USER = "deployer"
SECRET = "Sup3r-secret-registry-pa55"


@pytest.fixture()
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    return SECRET


@pytest.fixture()
def basic_registry() -> Iterator[OciRegistry]:
    server = start_registry({USER: SECRET})
    yield server
    server.stop()


@pytest.fixture()
def token_registry() -> Iterator[OciRegistry]:
    server = start_registry({USER: SECRET}, auth="token")
    yield server
    server.stop()


def realm_host(registry: OciRegistry) -> str:
    """The test token service runs on another port: the provider must be told to trust it."""
    assert registry.token_service is not None
    return registry.token_service.url.removeprefix("http://")


def test_registry_types_are_advertised(plugin_manager):
    types = dict(provider_types(plugin_manager)["registry"])
    assert types["oci"] == "any OCI distribution registry (basic/bearer auth)"
    assert "ecr" in types


def test_basic_auth_push_and_pull_back(make_provider, hello_build: BuildResult, basic_registry: OciRegistry, password: str):
    hello = make_function()
    provider = make_provider("oci", (hello,), registry_url=basic_registry.url, username=USER, password_env=PASSWORD_ENV)
    assert type(provider) is DistributionRegistry

    artifact = provider.push(hello, hello_build, CREATED)

    assert artifact.reference == f"{basic_registry.host}/faasops/test/demo/hello@{artifact.digest}"
    manifest, _ = RegistryReader(basic_registry.url, USER, SECRET).manifest(repository(hello), artifact.digest)
    assert [layer["mediaType"] for layer in manifest["layers"]] == [WASM_LAYER_MEDIA_TYPE, SPIN_APP_MEDIA_TYPE]
    # Basic credentials go along with every request, so there are no challenge round trips:
    # HEAD manifest, 3 × (HEAD blob, POST upload, PUT blob), PUT manifest by digest and by tag.
    assert sum(count for name, count in provider.calls.items() if name.startswith("registry.")) == 12


def test_anonymous_registry_needs_no_credentials(make_provider, hello_build: BuildResult):
    hello = make_function()
    with start_registry(auth="none") as registry:
        provider = make_provider("oci", (hello,), registry_url=registry.url)
        assert provider.push(hello, hello_build, CREATED).pushed
        assert provider.push(hello, hello_build, CREATED).pushed is False


def test_missing_credentials_are_named(make_provider, hello_build: BuildResult, basic_registry: OciRegistry):
    hello = make_function()
    provider = make_provider("oci", (hello,), registry_url=basic_registry.url)

    with pytest.raises(ProviderError) as raised:
        provider.push(hello, hello_build, CREATED)

    assert str(raised.value) == (
        f"registry {basic_registry.host} requires credentials; set username and password_env for it"
    )


def test_wrong_basic_password_is_reported_without_it(
    make_provider, hello_build: BuildResult, basic_registry: OciRegistry, password: str
):
    basic_registry.set_password(USER, "something-else")
    hello = make_function()
    provider = make_provider("oci", (hello,), registry_url=basic_registry.url, username=USER, password_env=PASSWORD_ENV)

    with pytest.raises(ProviderError) as raised:
        provider.push(hello, hello_build, CREATED)

    assert str(raised.value) == (
        f"registry rejected the credentials for user {USER} at {basic_registry.host} (password from ${PASSWORD_ENV})"
    )
    assert SECRET not in "".join(traceback.format_exception(raised.value))


def test_password_change_takes_effect_without_restarting_the_registry(
    make_provider, hello_build: BuildResult, basic_registry: OciRegistry, monkeypatch: pytest.MonkeyPatch
):
    basic_registry.set_password(USER, "rotated-password")
    monkeypatch.setenv(PASSWORD_ENV, "rotated-password")
    hello = make_function()
    provider = make_provider("oci", (hello,), registry_url=basic_registry.url, username=USER, password_env=PASSWORD_ENV)

    assert provider.push(hello, hello_build, CREATED).pushed


# ------------------------------------------------------------------------------ bearer tokens


def test_bearer_token_flow_push_repush_and_mount(
    make_provider, hello_build: BuildResult, token_registry: OciRegistry, password: str
):
    hello, twin = make_function("hello"), make_function("twin")
    options = {"registry_url": token_registry.url, "username": USER, "password_env": PASSWORD_ENV,
               "token_realm_hosts": [realm_host(token_registry)]}
    provider = make_provider("oci", (hello, twin), **options)

    first = provider.push(hello, hello_build, CREATED)
    second = provider.push(twin, hello_build, CREATED)

    assert first.pushed and second.pushed
    assert provider.calls["blob.mounted"] == 1  # the token for the mount covers both repositories
    # One token per scope set: hello; hello + pull from twin (a mount guessed from the shared
    # source, before twin exists: it starts a plain upload); twin; twin + pull from hello.
    assert provider.calls["registry.GET token"] == 4
    requested = {scopes for user, scopes in token_registry.token_service.requests if user == USER}
    assert (
        "repository:faasops/test/demo/hello:pull",
        "repository:faasops/test/demo/twin:pull,push",
    ) in requested

    again = make_provider("oci", (hello,), **options)
    repeat = again.push(hello, hello_build, CREATED)
    assert repeat.digest == first.digest and repeat.pushed is False
    assert uploads(again.calls) == 0


def test_bearer_flow_with_a_wrong_password_names_the_token_service(
    make_provider, hello_build: BuildResult, token_registry: OciRegistry, password: str
):
    token_registry.set_password(USER, "a-different-one")
    hello = make_function()
    provider = make_provider(
        "oci", (hello,), registry_url=token_registry.url, username=USER, password_env=PASSWORD_ENV,
        token_realm_hosts=[realm_host(token_registry)],
    )

    with pytest.raises(ProviderError) as raised:
        provider.push(hello, hello_build, CREATED)

    token_host = token_registry.token_service.url.removeprefix("http://")
    assert str(raised.value) == (
        f"registry rejected the credentials for user {USER} at {token_registry.host} "
        f"(password from ${PASSWORD_ENV}; token service {token_host})"
    )
    assert SECRET not in "".join(traceback.format_exception(raised.value))


def test_concurrent_bearer_pushes(make_provider, hello_build: BuildResult, token_registry: OciRegistry, password: str):
    functions = tuple(make_function(f"fn{i}") for i in range(4))
    provider = make_provider("oci", functions, registry_url=token_registry.url, username=USER, password_env=PASSWORD_ENV,
                             token_realm_hosts=[realm_host(token_registry)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        artifacts = list(pool.map(lambda fn: provider.push(fn, hello_build, CREATED), functions))

    assert all(a.pushed for a in artifacts)
    assert provider.calls["blob.uploaded"] == 1 + 2 * 4
    reader_token = RegistryReader(token_registry.url)  # anonymous: the registry refuses
    assert reader_token.get(f"/v2/{repository(functions[0])}/tags/list").status == 401


# ------------------------------------------------------------------------------ endpoints


def test_plain_http_is_refused_except_locally_or_when_insecure(make_provider):
    with pytest.raises(ProviderError, match="refusing plain http to registry registry.example.com; use https or set insecure: true"):
        make_provider("oci", registry_url="http://registry.example.com").client()
    assert make_provider("oci", registry_url="http://registry.example.com", insecure=True).client().base_url == (
        "http://registry.example.com"
    )
    assert make_provider("oci", registry_url="registry.example.com:5443").client().base_url == (
        "https://registry.example.com:5443"
    )
    assert make_provider("oci", registry_url="http://localhost:5000").client().host == "localhost:5000"


def test_oci_options_are_checked(make_provider):
    with pytest.raises(ProviderError, match="providers.registry: missing required option 'registry_url'"):
        make_provider("oci")
    with pytest.raises(ProviderError, match="providers.registry.region: unknown option 'region'"):
        make_provider("oci", registry_url="https://r.example.com", region="eu-west-1")
    with pytest.raises(ProviderError, match="password_env: must be the name of an environment variable") as refused:
        make_provider("oci", registry_url="https://r.example.com", password_env="$SECRET")
    assert "SECRET" not in str(refused.value)
    assert not isinstance(make_provider("oci", registry_url="https://r.example.com"), EcrRegistry)


def test_challenge_parsing_and_scope_merging():
    challenge = parse_challenge('Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example.com/token", "service": "registry", "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert merge_scopes(["repository:a:push,pull", "repository:a:pull", "repository:b:pull"]) == {
        "repository:a:pull,push", "repository:b:pull",
    }
