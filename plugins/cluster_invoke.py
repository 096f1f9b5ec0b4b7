"""``faasops invoke`` against a cluster: the ``kubernetes`` (API server service proxy) and
``gateway`` invokers.

``kubernetes`` (the ``aws`` preset's invoker) reaches the Service spin-operator creates for each
SpinApp — named like the function, in the workspace's namespace, port 80 targeting the pod's
``http-app`` port — through the API server's service proxy::

    {METHOD} /api/v1/namespaces/{namespace}/services/{function}:{port}/proxy{path}

so it needs nothing but the kubeconfig the deployer already uses and RBAC on ``services/proxy``
(verb by HTTP method: ``get`` for GET, ``create`` for POST …). Options (``providers.invoker``):
``kubeconfig`` and ``context`` (as the deployer; when neither is set, those of
``providers.deployer`` are used), ``port`` (80), ``timeout_seconds`` (60 s per request). The
``Authorization`` header belongs to the API server on this path, so a request that sets one is
refused (use a gateway).

``gateway`` calls the platform's HTTP gateway (an ingress, a load balancer) directly. Options:
``url`` (required, the base URL), ``path_template`` (``/{workspace}/{function}{path}``; also
``{namespace}``), ``token_env`` (the name of an environment variable holding a bearer token
sent as ``Authorization``), ``timeout_seconds`` (60 s). ``timeout`` is the deprecated spelling of
``timeout_seconds``; both types' options are in :func:`faasops_provider_options`.

Both send the method, headers, body and path with query as given (``faasops invoke -X -H -d
--path``) and return the function's answer whatever its status; only failures to get an answer
from the function (unreachable, not deployed, no ready pods, refused credentials) are errors.
An address not declared in the project is refused with the ones that are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from faasops.plugins.kubernetes import KubernetesDeployer, _one_line, _reason

from faasops.errors import ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Function, Project, ProviderConfig, Workspace
from faasops.options import positive_seconds, seconds_option
from faasops.providers import InvokeRequest, InvokeResponse

KUBERNETES_TYPE = "kubernetes"
GATEWAY_TYPE = "gateway"
# spin-operator's Service: port 80 (unnamed) → the pod's "http-app" port.
DEFAULT_SERVICE_PORT = 80
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_PATH_TEMPLATE = "/{workspace}/{function}{path}"
CONNECTION_OPTIONS = ("kubeconfig", "context")
_TIMEOUT = seconds_option("timeout of one call", DEFAULT_TIMEOUT_S, aliases=["timeout"])
KUBERNETES_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kubeconfig": {"type": "string", "minLength": 1,
                       "description": "kubeconfig file (default: providers.deployer's, when neither is set)"},
        "context": {"type": "string", "minLength": 1, "description": "kubeconfig context"},
        "port": {"type": ["integer", "string"], "pattern": "^[A-Za-z0-9-]+$", "default": DEFAULT_SERVICE_PORT,
                 "description": "the Service port, by number or name"},
        "timeout_seconds": _TIMEOUT,
    },
}
GATEWAY_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "the gateway's http(s) base URL"},
        "path_template": {"type": "string", "minLength": 1, "default": DEFAULT_PATH_TEMPLATE,
                          "description": "path of a function; fields {workspace} {function} {namespace} {path}"},
        "token_env": {"type": "string", "minLength": 1, "writeOnly": True,
                      "description": "environment variable holding a bearer token sent as Authorization"},
        "timeout_seconds": _TIMEOUT,
    },
    "required": ["url"],
}
TEMPLATE_FIELDS = ("workspace", "function", "namespace", "path")
# Added by the API server to every answer (audit and flow control): not the function's.
API_SERVER_HEADERS = ("audit-id", "x-kubernetes-pf-flowschema-uid", "x-kubernetes-pf-prioritylevel-uid")


def declared_function(project: Project, workspace: str, function: str) -> tuple[Workspace, Function]:
    """The workspace and function an address names, or a :class:`ProviderError` that lists the
    ones the project declares."""
    declared = project.workspace(workspace)
    if declared is None:
        known = ", ".join(sorted(ws.name for ws in project.workspaces)) or "none"
        raise ProviderError(f"unknown workspace {workspace!r} (workspaces of project {project.name}: {known})")
    for fn in declared.functions:
        if fn.name == function:
            return declared, fn
    known = ", ".join(sorted(f"{workspace}/{fn.name}" for fn in declared.functions)) or "none"
    raise ProviderError(f"unknown function {workspace}/{function} (functions of workspace {workspace}: {known})")


class KubernetesInvoker:
    """An :class:`~faasops.providers.Invoker` through the API server's service proxy."""

    def __init__(self, project: Project, options: Mapping[str, Any]):
        self.project = project
        self.port = _port(options.get("port", DEFAULT_SERVICE_PORT))
        self.timeout = _seconds(options.get("timeout_seconds", DEFAULT_TIMEOUT_S), "timeout_seconds")
        connection = {k: options[k] for k in CONNECTION_OPTIONS if options.get(k)}
        self.connection_slot = "providers.invoker"
        if not connection:
            # One kubeconfig for deploying and calling, unless the invoker names its own.
            deployer = project.provider("deployer").options
            connection = {k: deployer[k] for k in CONNECTION_OPTIONS if deployer.get(k)}
            self.connection_slot = "providers.deployer"
        self.connection = connection

    def invoke(self, workspace: str, function: str, request: InvokeRequest) -> InvokeResponse:
        declared, _ = declared_function(self.project, workspace, function)
        namespace = declared.spec()["namespace"]
        headers = _joined_headers(request.headers)
        if "authorization" in headers:
            raise ProviderError(
                "the kubernetes invoker cannot send an Authorization header: on the service proxy it "
                "carries the credentials for the API server; call the function through a gateway "
                "(providers.invoker: {type: gateway, url: …}) to send one"
            )
        path = _checked_path(request.path)
        kubeconfig = self.connection.get("kubeconfig")
        if kubeconfig:  # said here to name the slot it came from
            config_file = self.project.root / Path(str(kubeconfig)).expanduser()
            if not config_file.is_file():
                raise ProviderError(f"kubeconfig {config_file} does not exist ({self.connection_slot}.kubeconfig)")
        # The deployer's client construction: kubeconfig / in-cluster / context, TLS, tokens.
        api = KubernetesDeployer(self.connection, self.project.root)._api()
        host = api.configuration.host
        proxy = (f"/api/v1/namespaces/{quote(namespace, safe='')}/services/"
                 f"{quote(function, safe='')}:{self.port}/proxy")
        method, url, client_headers, _, _ = api.param_serialize(request.method.upper(), proxy + path,
                                                                header_params={}, auth_settings=["BearerToken"])
        # Straight to urllib3: the client's REST layer would re-encode a body it takes for JSON.
        raw = _send(api.rest_client.pool_manager, method, url, request.body, {**client_headers, **headers},
                    self.timeout, unreachable=f"cannot reach the Kubernetes API server at {host}",
                    slow=f"{workspace}/{function} did not answer within {self.timeout:g}s through the "
                         f"Kubernetes API server at {host} (providers.invoker.timeout_seconds)")
        status = _api_server_status(raw)
        if status is not None:
            raise self._proxy_error(workspace, function, namespace, host, raw.status, status)
        response_headers = [(k, v) for k, v in raw.headers.items() if k.lower() not in API_SERVER_HEADERS]
        return _response(raw.status, response_headers, raw.data)

    def _proxy_error(self, workspace: str, function: str, namespace: str, host: str, code: int,
                     status: dict[str, Any]) -> ProviderError:
        """The API server's own failure (a ``Status``, not the function's answer), in one line."""
        message = _one_line(str(status.get("message") or status.get("reason") or ""))
        details = status.get("details") if isinstance(status.get("details"), dict) else {}
        address = f"{workspace}/{function}"
        if code == 404 and details.get("kind") == "services":
            return ProviderError(
                f"function {address} is not deployed in namespace {namespace} (the cluster has no Service "
                f"{function} there): run `faasops apply`, or check `kubectl -n {namespace} get spinapps`"
            )
        if code == 503:
            if "no endpoints" in message:
                return ProviderError(
                    f"function {address} has no ready pods in namespace {namespace} ({message}): check "
                    f"`kubectl -n {namespace} get spinapp {function}` and its pods"
                )
            return ProviderError(f"cannot reach function {address} in namespace {namespace} through the "
                                 f"Kubernetes API server at {host}: {message}")
        if code == 401:
            return ProviderError(f"the Kubernetes API server at {host} rejected the credentials (401 Unauthorized): "
                                 "check the kubeconfig user or the service account token")
        if code == 403:
            return ProviderError(
                f"forbidden: faasops may not proxy to services in namespace {namespace} (403): grant RBAC on "
                f"services/proxy; the server said: {message}"
            )
        return ProviderError(f"the Kubernetes API server at {host} failed to proxy to {address} ({code}): {message}")


class GatewayInvoker:
    """An :class:`~faasops.providers.Invoker` through the platform's HTTP gateway."""

    def __init__(self, project: Project, options: Mapping[str, Any]):
        self.project = project
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ProviderError(f"providers.invoker (type gateway) needs `url`, the gateway's http(s) base URL; got {url!r}")
        self.url = url.rstrip("/")
        self.path_template = str(options.get("path_template") or DEFAULT_PATH_TEMPLATE)
        try:
            self.path_template.format(**{name: "" for name in TEMPLATE_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise ProviderError(f"providers.invoker.path_template {self.path_template!r} is not a valid template "
                                f"({type(exc).__name__}: {exc}); fields: {', '.join(TEMPLATE_FIELDS)}") from None
        self.token_env = options.get("token_env")
        self.timeout = _seconds(options.get("timeout_seconds", DEFAULT_TIMEOUT_S), "timeout_seconds")

    def invoke(self, workspace: str, function: str, request: InvokeRequest) -> InvokeResponse:
        import urllib3

        declared, _ = declared_function(self.project, workspace, function)
        path = _checked_path(request.path)
        target = self.path_template.format(workspace=quote(workspace, safe=""), function=quote(function, safe=""),
                                           namespace=quote(declared.spec()["namespace"], safe=""), path=path)
        url = self.url + (target if target.startswith("/") else "/" + target)
        headers = _joined_headers(request.headers)
        if self.token_env:
            headers["authorization"] = bearer_token(self.token_env, "providers.invoker")
        raw = _send(urllib3.PoolManager(), request.method.upper(), url, request.body, headers, self.timeout,
                    unreachable=f"cannot reach the gateway at {self.url}",
                    slow=f"{workspace}/{function} did not answer within {self.timeout:g}s at {self.url} "
                         "(providers.invoker.timeout_seconds)")
        return _response(raw.status, list(raw.headers.items()), raw.data)


# ------------------------------------------------------------------------------------------ values


def _seconds(value: Any, name: str) -> float:
    return positive_seconds(value, f"providers.invoker.{name}")


def _port(value: Any) -> str:
    """A port number, or the name of a Service port."""
    text = str(value)
    if isinstance(value, bool) or not text or not all(c.isalnum() or c == "-" for c in text):
        raise ProviderError(f"providers.invoker.port must be a port number or name, not {value!r}")
    return text


def _checked_path(path: str) -> str:
    """The request path, which must stay below the function's route."""
    if not path.startswith("/"):
        path = "/" + path
    if ".." in path.partition("?")[0].split("/"):
        raise ProviderError(f"invoke path {path!r} may not contain '..' segments")
    return path


def _joined_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Request headers by lower-cased name; repeated ones joined with ", " (RFC 9110 5.3)."""
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def bearer_token(env: str, where: str) -> str:
    """``Bearer <token>`` from the environment variable a ``token_env`` option names."""
    token = os.environ.get(env, "").strip()
    if not token:
        raise ProviderError(f"{where}.token_env names ${env}, which is not set or empty")
    return f"Bearer {token}"


def _send(pool: Any, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float, *,
          unreachable: str, slow: str) -> Any:
    """One request, whatever the answer's status; no retries (a call may not be idempotent) and
    no redirects (they are the function's answer)."""
    import urllib3

    merged = urllib3.HTTPHeaderDict()
    for name, value in headers.items():
        merged[name] = value  # case-insensitive: the caller's User-Agent replaces the client's
    try:
        return pool.request(method, url, body=body or None, headers=merged, timeout=urllib3.Timeout(total=timeout),
                            retries=False, redirect=False, preload_content=True)
    except urllib3.exceptions.ReadTimeoutError:
        raise ProviderError(slow) from None
    except urllib3.exceptions.SSLError as exc:
        raise ProviderError(f"{unreachable}: {_one_line(str(exc))}") from None
    except urllib3.exceptions.HTTPError as exc:  # refused, unknown host, connect timeout
        raise ProviderError(f"{unreachable}: {_reason(exc)}") from None


def _api_server_status(raw: Any) -> dict[str, Any] | None:
    """The API server's ``Status`` body when it, not the function, answered an error."""
    if raw.status < 400 or "json" not in (raw.headers.get("content-type") or ""):
        return None
    try:
        body = json.loads(raw.data)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("apiVersion") == "v1":
        return body
    return None


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> InvokeResponse:
    # As for a local call: a 5xx answer means the function failed (a trap, a traceback).
    return InvokeResponse(status, headers, body, error=f"HTTP {status}" if status >= 500 else None)


# ------------------------------------------------------------------------------------------ hooks


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("invoker", KUBERNETES_TYPE, KUBERNETES_OPTIONS_SCHEMA), ("invoker", GATEWAY_TYPE, GATEWAY_OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [
        ("invoker", KUBERNETES_TYPE, "calls a function's Service through the Kubernetes API server proxy"),
        ("invoker", GATEWAY_TYPE, "calls functions through the platform's HTTP gateway (`url`)"),
    ]


@hookimpl
def faasops_invoker(config: ProviderConfig, project: Project) -> KubernetesInvoker | GatewayInvoker | None:
    if config.type == KUBERNETES_TYPE:
        return KubernetesInvoker(project, config.options)
    if config.type == GATEWAY_TYPE:
        return GatewayInvoker(project, config.options)
    return None
