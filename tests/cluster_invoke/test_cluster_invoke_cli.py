"""`faasops invoke` on a cluster through the real CLI: the ``kubernetes`` invoker through the
Kubernetes API emulator's service proxy, and the ``gateway`` invoker against the local server,
both reaching real components run by the local runtime."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

from cli_support import Result
from cluster_invoke_test_support import cloud_copy, invoke
from testkit.kubeapi import KubeEmulator


def cluster_project(tmp_path: Path, kubeconfig: Path, invoker: dict[str, object] | None = None) -> Path:
    """The cloud example deploying to the emulator through ``kubeconfig``; the invoker is the aws
    preset's (``kubernetes``) unless ``invoker`` is given."""
    providers: dict[str, object] = {"deployer": {"kubeconfig": str(kubeconfig)}}
    if invoker:
        providers["invoker"] = invoker
    return cloud_copy(tmp_path, providers)


def echoed(result: Result) -> tuple[dict[str, str], str]:
    """Response headers and body of an ``invoke -i`` of the echo function."""
    head, _, body = result.out.partition("\n\n")
    lines = head.splitlines()
    assert lines[0] == "HTTP 200", result.output
    return {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}, body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_invoke_through_the_api_server_service_proxy_prints_the_greeting(
        tmp_path: Path, invoke_kube: KubeEmulator, invoke_kubeconfig: Path, deploy_service: Callable[..., None]) -> None:
    deploy_service("hello", "storefront")
    project = cluster_project(tmp_path, invoke_kubeconfig)
    invoke_kube.reset_stats()
    result = invoke(project, "storefront/hello")
    assert result.code == 0, result.output
    assert result.out == "Hello from Blue FaaS!"
    assert invoke_kube.stats()["requests"] == {"proxy services": 1}
    included = invoke(project, "storefront/hello", "-i")
    assert included.code == 0, included.output
    assert included.out.startswith("HTTP 200\n") and included.out.endswith("\n\nHello from Blue FaaS!")
    assert "content-type: text/plain" in included.out.lower()


def test_invoke_through_the_proxy_passes_method_path_query_headers_and_body(
        tmp_path: Path, invoke_kubeconfig: Path, deploy_service: Callable[..., None]) -> None:
    deploy_service("echo", "storefront")
    project = cluster_project(tmp_path, invoke_kubeconfig)
    payload = tmp_path / "payload.json"
    payload.write_text('{"id": 7}')
    # A JSON content type with a body of bytes: sent as is, not re-encoded as a JSON string.
    result = invoke(project, "storefront/echo", "-X", "PUT", "-d", f"@{payload}",
                    "-H", "content-type: application/json", "-H", "x-trace: abc", "--path", "/items?id=7&tag=a%20b", "-i")
    assert result.code == 0, result.output
    headers, body = echoed(result)
    assert headers["x-echo-method"] == "PUT"
    assert headers["x-echo-uri"] == "/items?id=7&tag=a%20b"
    seen = json.loads(headers["x-echo-headers"])
    assert seen["x-trace"] == "abc" and seen["content-type"] == "application/json"
    assert body == '{"id": 7}'


def test_invoke_uses_the_workspace_namespace(tmp_path: Path, invoke_kubeconfig: Path,
                                             deploy_service: Callable[..., None]) -> None:
    deploy_service("hello", "shop-web")
    project = cloud_copy(tmp_path, {"deployer": {"kubeconfig": str(invoke_kubeconfig)}},
                         workspaces=[{"name": "storefront", "namespace": "shop-web"}])
    result = invoke(project, "storefront/hello")
    assert result.code == 0, result.output
    assert result.out == "Hello from Blue FaaS!"


def test_invoke_of_a_function_without_a_service_says_it_is_not_deployed(
        tmp_path: Path, invoke_kubeconfig: Path, deploy_service: Callable[..., None]) -> None:
    deploy_service("hello", "storefront")
    result = invoke(cluster_project(tmp_path, invoke_kubeconfig), "storefront/checkout")
    assert result.code == 1
    assert result.err == ("Error: function storefront/checkout is not deployed in namespace storefront (the cluster "
                          "has no Service checkout there): run `faasops apply`, or check "
                          "`kubectl -n storefront get spinapps`\n")


def test_invoke_of_a_service_without_ready_pods_says_so(tmp_path: Path, invoke_kubeconfig: Path,
                                                        deploy_service: Callable[..., None]) -> None:
    deploy_service("hello", "storefront", backend=False)
    result = invoke(cluster_project(tmp_path, invoke_kubeconfig), "storefront/hello")
    assert result.code == 1
    assert result.err.startswith("Error: function storefront/hello has no ready pods in namespace storefront "
                                 "(no endpoints available for service")
    assert len(result.err.splitlines()) == 1


def test_invoke_of_an_undeclared_function_lists_the_declared_ones(tmp_path: Path, invoke_kubeconfig: Path) -> None:
    result = invoke(cluster_project(tmp_path, invoke_kubeconfig), "storefront/nope")
    assert result.code == 1
    assert result.err == ("Error: unknown function storefront/nope (functions of workspace storefront: "
                          "storefront/checkout, storefront/echo, storefront/hello)\n")


def test_invoke_with_the_api_server_unreachable_is_a_one_line_error(tmp_path: Path, invoke_kube: KubeEmulator) -> None:
    port = closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(invoke_kube.write_kubeconfig(tmp_path / "k").read_text()
                          .replace(invoke_kube.url, f"http://127.0.0.1:{port}"))
    result = invoke(cluster_project(tmp_path, kubeconfig), "storefront/hello")
    assert result.code == 1
    assert result.err == f"Error: cannot reach the Kubernetes API server at http://127.0.0.1:{port}: connection refused\n"


def test_invoker_kubeconfig_overrides_the_deployers(tmp_path: Path, invoke_kubeconfig: Path) -> None:
    missing = tmp_path / "elsewhere" / "kubeconfig"
    project = cluster_project(tmp_path, invoke_kubeconfig, {"type": "kubernetes", "kubeconfig": str(missing)})
    result = invoke(project, "storefront/hello")
    assert result.code == 1
    assert result.err == f"Error: kubeconfig {missing} does not exist (providers.invoker.kubeconfig)\n"


def test_kubernetes_invoker_refuses_an_authorization_header(tmp_path: Path, invoke_kubeconfig: Path) -> None:
    result = invoke(cluster_project(tmp_path, invoke_kubeconfig), "storefront/hello", "-H", "Authorization: Bearer x")
    assert result.code == 1
    assert "cannot send an Authorization header" in result.err and "gateway" in result.err


def test_gateway_invoker_calls_the_gateway_with_the_path_template(tmp_path: Path, served_url: str) -> None:
    project = cloud_copy(tmp_path, {"invoker": {"type": "gateway", "url": served_url + "/",
                                                "path_template": "/demo/{function}{path}"}})
    hello = invoke(project, "storefront/hello")
    assert hello.code == 0, hello.output
    assert hello.out == "Hello from Blue FaaS!"
    echo = invoke(project, "storefront/echo", "-X", "POST", "-d", "ping", "-H", "x-trace: gw", "-H", "x-uni: héllo",
                  "--path", "/a/b?c=d", "-i")
    headers, body = echoed(echo)
    assert headers["x-echo-method"] == "POST" and headers["x-echo-uri"] == "/a/b?c=d"
    sent = json.loads(headers["x-echo-headers"])
    assert sent["x-trace"] == "gw"
    assert sent["x-uni"] == "héllo"  # sent as UTF-8, as curl does
    assert body == "ping"


def test_gateway_invoker_sends_the_bearer_token_from_token_env(tmp_path: Path, served_url: str) -> None:
    project = cloud_copy(tmp_path, {"invoker": {"type": "gateway", "url": served_url, "token_env": "GATEWAY_TOKEN",
                                                "path_template": "/demo/{function}{path}"}})
    result = invoke(project, "storefront/echo", "-i", env={"GATEWAY_TOKEN": "s3cret"})
    headers, _ = echoed(result)
    assert json.loads(headers["x-echo-headers"])["authorization"] == "Bearer s3cret"
    unset = invoke(project, "storefront/echo", env={"GATEWAY_TOKEN": ""})
    assert unset.code == 1
    assert unset.err == "Error: providers.invoker.token_env names $GATEWAY_TOKEN, which is not set or empty\n"


def test_gateway_answers_pass_through_whatever_their_status(tmp_path: Path, served_url: str) -> None:
    # The default template asks the local server for /storefront/hello, which it does not serve.
    project = cloud_copy(tmp_path, {"invoker": {"type": "gateway", "url": served_url}})
    result = invoke(project, "storefront/hello", "-i")
    assert result.code == 0, result.output
    assert result.out.startswith("HTTP 404\n")
    assert '"no function storefront/hello"' in result.out


def test_gateway_unreachable_is_a_one_line_error(tmp_path: Path) -> None:
    port = closed_port()
    project = cloud_copy(tmp_path, {"invoker": {"type": "gateway", "url": f"http://127.0.0.1:{port}"}})
    result = invoke(project, "storefront/hello")
    assert result.code == 1
    assert result.err == f"Error: cannot reach the gateway at http://127.0.0.1:{port}: connection refused\n"


def test_gateway_without_url_says_what_to_set(tmp_path: Path) -> None:
    result = invoke(cloud_copy(tmp_path, {"invoker": {"type": "gateway"}}), "storefront/hello")
    assert result.code == 1
    assert result.err == ("Error: 1 problem(s) in the manifests:\n"
                          "  faas.local.yaml:3:5 providers.invoker: missing required option 'url'\n")


def test_invoke_with_credentials_the_api_server_rejects_says_so(tmp_path: Path) -> None:
    with KubeEmulator(port=0, token="the-right-token") as guarded:
        kubeconfig = guarded.write_kubeconfig(tmp_path / "kubeconfig")
        kubeconfig.write_text(kubeconfig.read_text().replace("the-right-token", "a-stale-token"))
        result = invoke(cluster_project(tmp_path, kubeconfig), "storefront/hello")
    assert result.code == 1
    assert result.err == (f"Error: the Kubernetes API server at {guarded.url} rejected the credentials "
                          "(401 Unauthorized): check the kubeconfig user or the service account token\n")
