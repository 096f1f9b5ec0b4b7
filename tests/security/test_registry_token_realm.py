"""The registry's credentials reach a ``Bearer realm=…`` token service only on the registry's own
origin or a host listed in ``token_realm_hosts`` — checked with a tiny registry on 127.0.0.1 whose
realm is a second server on another port, which records every header it receives."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from faasops.errors import ProviderError
from faasops.model import Project, ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.ecr import DistributionRegistry

USER = "deployer"
SECRET = "realm-test-secret-4f1c9e"
PASSWORD_ENV = "FAASOPS_TEST_REALM_PASSWORD"
GOOD_TOKEN = "token-for-deployer"
SCOPES = ("repository:faasops/p/demo/hello:pull,push",)


@dataclass
class Server:
    """An HTTP server on 127.0.0.1 with a port of its own, recording each request's headers."""

    answer: Any  # (handler, method) -> None
    seen: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                server.answer(self)

            do_HEAD = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def _token_service(handler: BaseHTTPRequestHandler) -> None:
    """Basic credentials of USER get GOOD_TOKEN; no credentials an anonymous token."""
    authorization = handler.headers.get("Authorization")
    if authorization is None:
        _reply(handler, 200, {"token": "anonymous", "expires_in": 300})
    elif authorization == "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode():
        _reply(handler, 200, {"token": GOOD_TOKEN, "expires_in": 300})
    else:
        _reply(handler, 401)


def registry_with_realm(realm: str) -> Any:
    """A registry answering GOOD_TOKEN with 200, anything else with a Bearer challenge naming
    ``realm`` (relative to itself when it starts with /); it serves /token itself too."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.startswith("/token"):
            _token_service(handler)
        elif handler.headers.get("Authorization") == f"Bearer {GOOD_TOKEN}":
            _reply(handler, 200, {})
        else:
            where = f"http://{handler.server.server_address[0]}:{handler.server.server_address[1]}{realm}" \
                if realm.startswith("/") else realm
            _reply(handler, 401, {"errors": [{"code": "UNAUTHORIZED"}]},
                   {"WWW-Authenticate": f'Bearer realm="{where}",service="test-registry"'})

    return answer


@pytest.fixture()
def realm() -> Iterator[Server]:
    server = Server(_token_service)
    yield server
    server.stop()


@pytest.fixture()
def registry(realm: Server) -> Iterator[Server]:
    server = Server(registry_with_realm(f"http://{realm.host}/token"))
    yield server
    server.stop()


@pytest.fixture()
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    return SECRET


def make_registry(tmp_path: Path, url: str, **options: Any) -> DistributionRegistry:
    config = ProviderConfig("registry", "oci", {"registry_url": url, **options})
    project = Project(name="p", root=tmp_path, providers={"registry": config}, workspaces=())
    return create_provider(create_plugin_manager(), project, "registry")


def head_manifest(provider: DistributionRegistry) -> int:
    response = provider.client().request("HEAD", "/v2/faasops/p/demo/hello/manifests/latest", "manifest", SCOPES)
    return response.status


def test_credentials_never_reach_a_realm_on_another_host_by_default(
        tmp_path: Path, registry: Server, realm: Server, password: str) -> None:
    provider = make_registry(tmp_path, f"http://{registry.host}", username=USER, password_env=PASSWORD_ENV)

    with pytest.raises(ProviderError) as raised:
        head_manifest(provider)

    assert str(raised.value) == (
        f"registry {registry.host} asks for a token from {realm.host}, another host; faasops sends the "
        f"registry's credentials only to the registry itself. If {realm.host} is the registry's token "
        "service, list it under token_realm_hosts in providers.registry"
    )
    assert not any("authorization" in request for request in realm.seen)
    assert realm.seen == []  # nothing at all: an anonymous token could not push anyway
    assert SECRET not in str(raised.value)


def test_a_realm_listed_in_token_realm_hosts_receives_the_credentials(
        tmp_path: Path, registry: Server, realm: Server, password: str) -> None:
    provider = make_registry(tmp_path, f"http://{registry.host}", username=USER, password_env=PASSWORD_ENV,
                             token_realm_hosts=[realm.host])

    assert head_manifest(provider) == 200

    assert [request.get("authorization") for request in realm.seen] == [
        "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()]


def test_a_realm_on_the_same_host_but_another_port_is_another_host(
        tmp_path: Path, registry: Server, realm: Server, password: str) -> None:
    # Listing the host without the realm's port allows only the scheme's default port (80).
    provider = make_registry(tmp_path, f"http://{registry.host}", username=USER, password_env=PASSWORD_ENV,
                             token_realm_hosts=["127.0.0.1"])

    with pytest.raises(ProviderError, match=f"asks for a token from {realm.host}, another host"):
        head_manifest(provider)
    assert realm.seen == []


def test_without_credentials_the_token_is_fetched_anonymously(tmp_path: Path, registry: Server, realm: Server) -> None:
    provider = make_registry(tmp_path, f"http://{registry.host}")

    with pytest.raises(ProviderError, match="requires credentials"):
        head_manifest(provider)  # the anonymous token is not good enough for this registry

    assert realm.seen and not any("authorization" in request for request in realm.seen)


def test_a_realm_on_the_registry_itself_receives_the_credentials(tmp_path: Path, password: str) -> None:
    registry = Server(registry_with_realm("/token"))
    try:
        provider = make_registry(tmp_path, f"http://{registry.host}", username=USER, password_env=PASSWORD_ENV)
        assert head_manifest(provider) == 200
        token_requests = [request for request in registry.seen if request["path"].startswith("/token")]
        assert [request["authorization"] for request in token_requests] == [
            "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()]
    finally:
        registry.stop()


@pytest.mark.parametrize("value", ["https://auth.example.com", "auth.example.com/token", "a:b:c", 7])
def test_token_realm_hosts_entries_are_checked(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ProviderError, match="token_realm_hosts"):
        make_registry(tmp_path, "https://registry.example.com", token_realm_hosts=[value])
