"""HTTP front of the emulator: routing, content negotiation, auth, watch streaming, proxy.

Everything resource-shaped is delegated to :class:`~testkit.kubeapi.cluster.Cluster`;
this module owns the wire format (status codes, ``Status`` bodies, chunked watch streams,
``Table`` and aggregated-discovery media types) and the test-only ``/emulator/v1`` endpoints.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import select
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from . import discovery, errors
from .cluster import Cluster, ListParams, Options, WriteParams, parse_body
from .errors import ApiError
from .patches import json_merge_patch, json_patch
from .resources import ResourceType
from .tables import table

JSON = "application/json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "authorization", "content-length"}
_WATCH_DEFAULT_TIMEOUT = 1800.0


@dataclass
class ResourceRequest:
    """A request for a resource, parsed from the URL like apiserver's RequestInfo."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str
    rest: str  # the path after a proxy subresource


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: "KubeEmulator") -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # responses are small; don't wait for delayed ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, body: bytes, content_type: str = JSON, headers: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {code} {http.client.responses.get(code, 'Unknown')}",
                f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}",
                "Cache-Control: no-cache, private"]
        for key, value in (headers or {}).items():
            head.append(f"{key}: {value}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            data += body
        self.wfile.write(data)

    def _send_json(self, code: int, value: Any, content_type: str = JSON, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(value, separators=(",", ":")).encode(), content_type, headers)

    def _tally(self, method: str, path: str, rt: ResourceType | None, subresource: str) -> None:
        self._counted = True
        self.server.emulator._count(method, path, rt, subresource)

    def _send_error(self, error: ApiError) -> None:
        self._send_json(error.code, error.status())

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        self._counted = False
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"
        query_lists = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in query_lists.items()}
        try:
            body = self._read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else b""
            if path.startswith("/emulator/v1"):
                self._admin(path[len("/emulator/v1"):], body)
                return
            self._authenticate(path)
            self._route(path, query, query_lists, body)
        except ApiError as exc:
            if not self._counted:
                emulator._count(self.command, path, None, "")
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the emulator: answer 500 like a panicking handler
            self._send_error(ApiError(500, "InternalError", f"emulator error: {type(exc).__name__}: {exc}"))
            raise

    def _authenticate(self, path: str) -> None:
        token = self.server.emulator.token
        if token is None:
            return
        header = self.headers.get("Authorization", "")
        if header == f"Bearer {token}":
            return
        if not header and any(path == p or path.startswith(p + "/") for p in _PUBLIC_PATHS):
            return  # anonymous access to public info, as RBAC's system:public-info-viewer allows
        raise errors.unauthorized()

    def _accepts(self, media: str) -> bool:
        accept = self.headers.get("Accept", "")
        return media in accept.replace(" ", "")

    def _wants_aggregated(self) -> str | None:
        accept = self.headers.get("Accept", "").replace(" ", "")
        for media in (discovery.AGGREGATED_V2, discovery.AGGREGATED_V2BETA1):
            if media in accept:
                return media
        return None

    def _check_acceptable(self) -> None:
        accept = self.headers.get("Accept", "")
        if not accept:
            return
        if any(t in accept for t in ("json", "*/*", "yaml")):
            return
        raise ApiError(406, "NotAcceptable",
                       "only the following media types are accepted: application/json, application/yaml, "
                       "application/vnd.kubernetes.protobuf")

    def _route(self, path: str, query: dict[str, str], query_lists: dict[str, list[str]], body: bytes) -> None:
        emulator = self.server.emulator
        cluster = emulator.cluster
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        if path == "/":
            self._tally("GET", path, None, "")
            self._send_json(200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2",
                                            "/openapi/v3", "/readyz", "/version"]})
            return
        if parts[0] in ("healthz", "livez", "readyz"):
            self._tally("GET", path, None, "")
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return
        if path == "/version":
            self._tally("GET", path, None, "")
            self._send_json(200, discovery.SERVER_VERSION)
            return
        if parts[0] == "openapi":
            self._openapi(path, parts)
            return
        if parts[0] == "api":
            if len(parts) == 1:
                self._discovery_root(path, core=True)
                return
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                self._discovery_root(path, core=False)
                return
            if len(parts) == 2:
                self._tally("GET", path, None, "")
                versions = dict(cluster.registry.group_versions()).get(parts[1])
                if not versions:
                    raise errors.page_not_found()
                self._send_json(200, discovery.api_group(parts[1], versions))
                return
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.page_not_found()
        if not rest:
            self._tally("GET", path, None, "")
            if not cluster.registry.resources(group, version):
                raise errors.page_not_found()
            self._send_json(200, discovery.api_resource_list(cluster.registry, group, version))
            return
        watch_prefix = False
        if rest[0] == "watch":
            watch_prefix, rest = True, rest[1:]
        request = self._resource_request(group, version, rest)
        self._check_acceptable()
        self._resource(request, query, query_lists, body, watch_prefix)

    def _discovery_root(self, path: str, core: bool) -> None:
        """``/api`` or ``/apis``: aggregated discovery when asked for, the legacy form otherwise."""
        self._tally("GET", path, None, "")
        registry = self.server.emulator.cluster.registry
        aggregated = self._wants_aggregated()
        if aggregated:
            version = "apidiscovery.k8s.io/" + ("v2" if aggregated == discovery.AGGREGATED_V2 else "v2beta1")
            self._send_json(200, discovery.aggregated(registry, core=core, api_version=version), aggregated)
        elif core:
            host, port = self.server.server_address[:2]
            self._send_json(200, discovery.api_versions(f"{host}:{port}"))
        else:
            self._send_json(200, discovery.api_group_list(registry))

    def _resource_request(self, group: str, version: str, rest: list[str]) -> ResourceRequest:
        cluster = self.server.emulator.cluster
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
            else:
                # /namespaces/{name}[/status|/finalize]: the Namespace object itself.
                rest = ["namespaces", rest[1]] + rest[2:]
                namespace = None
        rt = cluster.registry.lookup(group, version, rest[0])
        if rt is None:
            raise errors.page_not_found()
        if not rt.namespaced and namespace is not None:
            raise errors.page_not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else ""
        tail = "/".join(rest[3:])
        if subresource and subresource not in rt.subresources:
            raise errors.page_not_found()
        if subresource != "proxy" and len(rest) > 3:
            raise errors.page_not_found()
        return ResourceRequest(rt, namespace, name, subresource, tail)

    # ------------------------------------------------------------------ resources

    def _write_params(self, query: dict[str, str], query_lists: dict[str, list[str]]) -> WriteParams:
        dry_run_values = query_lists.get("dryRun", [])
        for value in dry_run_values:
            if value != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        validation = query.get("fieldValidation", "")
        if validation not in ("", "Ignore", "Warn", "Strict"):
            raise errors.bad_request(f"fieldValidation: Invalid value: \"{validation}\": must be Ignore, Warn or Strict")
        force = query.get("force", "").lower() in ("true", "1")
        manager = query.get("fieldManager", "")
        if len(manager) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return WriteParams(field_manager=manager, dry_run=bool(dry_run_values), force=force,
                           field_validation=validation)

    def _default_manager(self) -> str:
        # Like prefixFromUserAgent: "kubectl/v1.37 (linux)" -> "kubectl".
        return (self.headers.get("User-Agent") or "unknown").split("/")[0][:128]

    def _resource(self, req: ResourceRequest, query: dict[str, str], query_lists: dict[str, list[str]],
                  body: bytes, watch_prefix: bool) -> None:
        emulator = self.server.emulator
        cluster = emulator.cluster
        rt = req.rt
        method = self.command
        if rt.namespaced and req.namespace is None and req.name is not None:
            raise errors.page_not_found()
        if req.subresource == "proxy":
            self._tally("PROXY", "", rt, "proxy")
            self._proxy(req, query_lists, body)
            return
        watching = watch_prefix or query.get("watch", "").lower() in ("1", "true")
        if method == "GET":
            if req.name is None or watching:
                self._tally("WATCH" if watching else "LIST", "", rt, "")
                params = cluster.parse_list_params(rt, query)
                if watching:
                    if req.name is not None:
                        # The legacy /watch/…/{name} form watches one object.
                        params.fields.append(
                            cluster.parse_list_params(rt, {"fieldSelector": f"metadata.name={req.name}"}).fields[0])
                    self._watch(req, params, query)
                    return
                items, metadata = cluster.list(rt, req.namespace, params)
                if self._accepts("as=Table"):
                    self._send_json(200, table(rt, items, metadata, query.get("includeObject", "Metadata")), TABLE)
                else:
                    self._send_json(200, {"apiVersion": rt.api_version, "kind": rt.list_kind,
                                          "metadata": metadata, "items": items})
                return
            self._tally("GET", "", rt, req.subresource)
            if req.subresource == "scale":
                self._send_json(200, cluster.get_scale(rt, req.namespace, req.name))
                return
            obj = cluster.get(rt, req.namespace, req.name)
            if self._accepts("as=Table"):
                self._send_json(200, table(rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                           query.get("includeObject", "Metadata")), TABLE)
            else:
                self._send_json(200, obj)
            return
        if method == "POST":
            self._tally("POST", "", rt, req.subresource)
            if req.name is not None:
                raise errors.method_not_allowed()
            params = self._write_params(query, query_lists)
            params.field_manager = params.field_manager or self._default_manager()
            result = cluster.create(rt, req.namespace, parse_body(body, self.headers.get("Content-Type", "")), params)
            self._send_result(result)
            return
        if req.name is None:
            if method == "DELETE":
                self._tally("DELETECOLLECTION", "", rt, "")
                params = cluster.parse_list_params(rt, query)
                options = self._delete_options(query, body)
                dry_run = bool(query_lists.get("dryRun")) or bool(options.get("dryRun"))
                self._send_json(200, cluster.delete_collection(rt, req.namespace, params, options, dry_run))
                return
            raise errors.method_not_allowed()
        if method == "PUT":
            self._tally("PUT", "", rt, req.subresource)
            params = self._write_params(query, query_lists)
            params.field_manager = params.field_manager or self._default_manager()
            payload = parse_body(body, self.headers.get("Content-Type", ""))
            if req.subresource == "scale":
                replicas = int(((payload or {}).get("spec") or {}).get("replicas", 0))
                self._send_json(200, cluster.set_scale(rt, req.namespace, req.name, replicas, params))
                return
            self._send_result(cluster.update(rt, req.namespace, req.name, payload, params, req.subresource))
            return
        if method == "PATCH":
            self._tally("PATCH", "", rt, req.subresource)
            params = self._write_params(query, query_lists)
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if not content_type.startswith("application/apply-patch"):
                params.field_manager = params.field_manager or self._default_manager()
            if req.subresource == "scale":
                scale = cluster.get_scale(rt, req.namespace, req.name)
                patch_body = parse_body(body, content_type)
                patched = json_patch(scale, patch_body) if isinstance(patch_body, list) else json_merge_patch(scale, patch_body)
                replicas = int((patched.get("spec") or {}).get("replicas", 0))
                self._send_json(200, cluster.set_scale(rt, req.namespace, req.name, replicas, params))
                return
            result = cluster.patch(rt, req.namespace, req.name, body, content_type, params, req.subresource)
            self._send_result(result)
            return
        if method == "DELETE":
            self._tally("DELETE", "", rt, req.subresource)
            options = self._delete_options(query, body)
            dry_run = bool(query_lists.get("dryRun")) or bool(options.get("dryRun"))
            self._send_result(cluster.delete(rt, req.namespace, req.name, options, dry_run))
            return
        raise errors.method_not_allowed()

    def _delete_options(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                raise errors.bad_request("the body of the delete request is not a DeleteOptions object") from None
            if isinstance(parsed, dict):
                options = parsed
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        return options

    def _send_result(self, result: Any) -> None:
        headers = {}
        if result.warnings:
            headers["Warning"] = ", ".join(f'299 - "{w.replace(chr(34), chr(39))}"' for w in result.warnings)
        self._send_json(result.code, result.obj, JSON, headers)

    # ------------------------------------------------------------------ watch

    def _client_alive(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return True
            if isinstance(self.connection, ssl.SSLSocket):
                # TLS can't peek; a client sends nothing while it reads a watch, so whatever
                # arrives (usually close_notify) may be consumed.
                previous = self.connection.gettimeout()
                self.connection.settimeout(0.1)
                try:
                    return self.connection.recv(1) != b""
                except (TimeoutError, ssl.SSLWantReadError):
                    return True
                finally:
                    self.connection.settimeout(previous)
            return self.connection.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    def _watch(self, req: ResourceRequest, params: ListParams, query: dict[str, str]) -> None:
        cluster = self.server.emulator.cluster
        timeout = float(query.get("timeoutSeconds") or _WATCH_DEFAULT_TIMEOUT)
        send_initial_raw = query.get("sendInitialEvents", "").lower()
        send_initial = True if send_initial_raw == "true" else None
        as_table = self._accepts("as=Table")
        stream = cluster.watch(req.rt, req.namespace, params, query.get("resourceVersion", ""), timeout,
                               query.get("allowWatchBookmarks", "").lower() == "true", send_initial,
                               self._client_alive)
        # Validate before committing to a 200 stream: the generator raises on a bad version.
        first = next(stream, None)
        content_type = TABLE if as_table else JSON
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, private\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        self.wfile.write(head.encode("latin-1"))
        batches = [first] if first is not None else []
        try:
            for batch in _chain(batches, stream):
                if not batch:
                    continue
                payload = b""
                for event in batch:
                    if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        event = {"type": event["type"], "object": table(
                            req.rt, [event["object"]],
                            {"resourceVersion": event["object"]["metadata"].get("resourceVersion", "")},
                            "Object")}
                    payload += json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    # ------------------------------------------------------------------ service proxy

    def _proxy(self, req: ResourceRequest, query_lists: dict[str, list[str]], body: bytes) -> None:
        emulator = self.server.emulator
        cluster = emulator.cluster
        if req.rt.key != ("", "services") or req.name is None or req.namespace is None:
            raise errors.page_not_found()
        # "name", "name:port" or "scheme:name:port", as the real proxy accepts.
        pieces = req.name.split(":")
        name = pieces[1] if len(pieces) == 3 else pieces[0]
        port = pieces[-1] if len(pieces) >= 2 else ""
        exists = cluster.store.get(("", "services"), req.namespace, name) is not None or (
            # spin-operator creates a Service named after each SpinApp; the emulator runs no
            # operator, so a SpinApp stands for its Service.
            cluster.store.get(("core.spinkube.dev", "spinapps"), req.namespace, name) is not None
        )
        if not exists:
            raise errors.not_found("", "services", name)
        backend = emulator.service_backend(req.namespace, name, port)
        if backend is None:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{req.name}"')
        target = urllib.parse.urlsplit(backend)
        base_path = target.path.rstrip("/")
        path = base_path + "/" + req.rest if req.rest else (base_path or "/")
        raw_query = urllib.parse.urlsplit(self.path).query
        if raw_query:
            path += "?" + raw_query
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(target.hostname or "127.0.0.1", target.port, timeout=60)
        try:
            connection.request(self.command, path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as exc:
            raise ApiError(503, "ServiceUnavailable",
                           f"error trying to reach service: {exc}") from None
        finally:
            connection.close()
        passthrough = {k: v for k, v in response.getheaders()
                       if k.lower() not in _HOP_BY_HOP and k.lower() != "content-type"}
        self._send(response.status, payload, response.getheader("Content-Type") or "application/octet-stream",
                   passthrough)

    # ------------------------------------------------------------------ openapi

    def _openapi(self, path: str, parts: list[str]) -> None:
        emulator = self.server.emulator
        openapi = emulator.openapi
        self._tally("GET", path, None, "")
        if path == "/openapi/v2":
            accept = self.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                raise ApiError(406, "NotAcceptable",
                               "only the following media types are accepted: application/json")
            self._send(200, openapi.swagger())
            return
        if path == "/openapi/v3":
            self._send_json(200, openapi.root())
            return
        if len(parts) > 2 and parts[1] == "v3":
            document = openapi.document("/".join(parts[2:]))
            if document is None:
                raise errors.page_not_found()
            self._send(200, document, JSON, {"Etag": '"' + str(hash(document)) + '"'})
            return
        raise errors.page_not_found()

    # ------------------------------------------------------------------ admin

    def _admin(self, path: str, body: bytes) -> None:
        emulator = self.server.emulator
        method = self.command
        payload = json.loads(body) if body else {}
        if path == "/stats":
            if method == "GET":
                self._send_json(200, emulator.stats())
                return
            if method == "DELETE":
                emulator.reset_stats()
                self._send_json(200, {"status": "reset"})
                return
        if path == "/reset" and method == "POST":
            emulator.reset()
            self._send_json(200, {"status": "reset"})
            return
        if path == "/service-backends":
            if method == "POST":
                emulator.set_service_backend(payload["namespace"], payload["name"], payload["url"],
                                             port=str(payload.get("port", "")))
                self._send_json(201, payload)
                return
            if method == "GET":
                self._send_json(200, {"items": emulator.service_backends()})
                return
        if path == "/spinapps/ready" and method == "POST":
            obj = emulator.mark_spinapp_ready(payload["namespace"], payload["name"], payload.get("readyReplicas"))
            self._send_json(200, obj)
            return
        raise errors.page_not_found()


def _chain(first: list[Any], rest: Any) -> Any:
    yield from first
    yield from rest


class KubeEmulator:
    """A Kubernetes API server emulator on 127.0.0.1 for tests and benchmarks.

    >>> with KubeEmulator() as emu:
    ...     kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")

    Options:
        port: TCP port (0 picks a free one; read ``url`` after ``start()``).
        token: when set, requests must carry ``Authorization: Bearer <token>`` (else 401).
            Without it, any or no token is accepted. kubectl sends tokens over TLS only, so
            use ``tls=True`` with a token when kubectl is the client.
        tls: serve HTTPS with a fresh self-signed certificate for 127.0.0.1/localhost (needs
            the ``cryptography`` package); ``write_kubeconfig`` embeds it as the CA.
        preinstall_spinkube: install the SpinApp and SpinAppExecutor CRDs (core.spinkube.dev).
        preinstall_keda: install KEDA's ScaledObject CRD (keda.sh/v1alpha1).
        spinapp_ready: stand in for spin-operator by setting every SpinApp's status as ready
            (``readyReplicas`` = ``spec.replicas`` or 1, Available/Progressing conditions) on
            each write. Off by default; tests can also call ``mark_spinapp_ready`` or write
            ``/status`` themselves.
        spin_operator_webhook: enforce spin-operator's validating webhook (``vspinapp.kb.io``):
            the SpinApp's executor must exist in its namespace, ``replicas`` must be > 0 without
            ``enableAutoscaling`` and unset with it (see :mod:`.admission`). On by default.
        keda_webhook: enforce KEDA's ScaledObject webhook (``vscaledobject.kb.io``): with a
            cpu/memory trigger the target Deployment must exist and its containers carry the
            resource's request (or limit), and ``minReplicaCount`` must not be 0. On by default.
        spin_operator: stand in for spin-operator's reconciler: ``spin_operator_delay`` seconds
            (0.1) after each SpinApp write, create or update its Deployment (see
            :mod:`.operators`) when its executor has ``createDeployment: true``; deleting the
            SpinApp deletes it. On by default, so KEDA's webhook can be satisfied, and a
            ScaledObject applied right after its SpinApp is refused as on a cluster.
        crd_strategic_merge_patch: accept strategic merge patches on custom resources as JSON
            merge patches. Off by default because the real server answers 415 there.
        namespace_termination: seconds a deleted namespace stays ``Terminating`` (phase and
            ``deletionTimestamp`` set, contents deleted at once, new objects refused with 403
            ``NamespaceTerminating``, a second DELETE answered 409) before it is gone, as the
            namespace controller does on a cluster (see :mod:`.namespaces`). 0 (the default):
            gone at once. ``set_namespace_termination`` changes it on a running emulator.
    """

    def __init__(
        self,
        port: int = 0,
        token: str | None = None,
        host: str = "127.0.0.1",
        *,
        tls: bool = False,
        preinstall_spinkube: bool = True,
        preinstall_keda: bool = True,
        spinapp_ready: bool = False,
        spin_operator_webhook: bool = True,
        keda_webhook: bool = True,
        spin_operator: bool = True,
        spin_operator_delay: float = 0.1,
        crd_strategic_merge_patch: bool = False,
        namespace_termination: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.tls = tls
        self.ca_pem: bytes | None = None
        self.cluster = Cluster(Options(
            preinstall_spinkube=preinstall_spinkube,
            preinstall_keda=preinstall_keda,
            spinapp_ready=spinapp_ready,
            spin_operator_webhook=spin_operator_webhook,
            keda_webhook=keda_webhook,
            spin_operator=spin_operator,
            spin_operator_delay=spin_operator_delay,
            crd_strategic_merge_patch=crd_strategic_merge_patch,
            namespace_termination=namespace_termination,
        ))
        self.openapi = discovery.OpenAPI(self.cluster.registry)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._backends: dict[tuple[str, str, str], str] = {}

    # ------------------------------------------------------------------ lifecycle

    def _bind(self) -> _Server:
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        if self.tls:
            cert_pem, key_pem = _self_signed_certificate(self.host)
            self.ca_pem = cert_pem
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "cert.pem").write_bytes(cert_pem)
                (Path(tmp) / "key.pem").write_bytes(key_pem)
                context.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
            # Handshakes happen in the handler threads, not in the accept loop.
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        return server

    def start(self) -> "KubeEmulator":
        """Start serving in a background thread (idempotent)."""
        if self._server is None:
            self._server = self._bind()
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name=f"kube-emulator-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; open watches end within about a second."""
        if self.cluster.operator is not None:
            self.cluster.operator.stop()
        self.cluster.terminator.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self.cluster.store.lock:
                self.cluster.store.reset_count += 1  # ends watch loops
                self.cluster.store.changed.notify_all()
            self._server = None
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread (the ``python -m`` entry point)."""
        self._server = self._bind()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def __enter__(self) -> "KubeEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # ------------------------------------------------------------------ clients

    def write_kubeconfig(self, path: str | Path, namespace: str = "default",
                         context: str = "faasops-emulator") -> Path:
        """Write a kubeconfig for kubectl and the python client; returns its path."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": self._cluster_entry()}],
            "users": [{"name": context, "user": {"token": self.token or "faasops-emulator"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def _cluster_entry(self) -> dict[str, str]:
        entry = {"server": self.url}
        if self.ca_pem is not None:
            entry["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        return entry

    # ------------------------------------------------------------------ stats

    def _count(self, method: str, path: str, rt: ResourceType | None, subresource: str) -> None:
        if rt is not None:
            verb = {"GET": "get", "LIST": "list", "WATCH": "watch", "POST": "create", "PUT": "update",
                    "PATCH": "patch", "DELETE": "delete", "DELETECOLLECTION": "deletecollection",
                    "PROXY": "proxy"}.get(method, method.lower())
            resource = rt.group_resource + (f"/{subresource}" if subresource and subresource != "proxy" else "")
            key = f"{verb} {resource}"
        else:
            key = f"{method.lower()} {path}"
        with self._stats_lock:
            self._counts[key] += 1

    def stats(self) -> dict[str, Any]:
        """Request counts: ``{"total": N, "requests": {"patch spinapps.core.spinkube.dev": 3, …}}``.

        Keys are ``"<verb> <resource>"`` with Kubernetes audit verbs (get, list, watch, create,
        update, patch, delete, deletecollection, proxy) and group-qualified resources
        (``configmaps``, ``deployments.apps``, ``spinapps.core.spinkube.dev/status``);
        discovery and OpenAPI requests count as ``"get /apis"``-style keys. Requests that
        failed before routing count under their path. ``/emulator`` calls are not counted.
        """
        with self._stats_lock:
            counts = dict(self._counts)
        by_verb: Counter[str] = Counter()
        for key, value in counts.items():
            by_verb[key.split(" ", 1)[0]] += value
        return {"total": sum(counts.values()), "requests": dict(sorted(counts.items())), "by_verb": dict(by_verb)}

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._counts.clear()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Wipe every object and CRD; the initial namespaces and preinstalled CRDs come back."""
        self.cluster.reset()
        self._backends.clear()

    def set_namespace_termination(self, seconds: float) -> None:
        """How long namespaces deleted from now on stay ``Terminating`` (0: gone at once)."""
        self.cluster.options.namespace_termination = float(seconds)

    def finish_namespace_termination(self, namespace: str) -> bool:
        """End a Terminating namespace's termination now, as the namespace controller does once
        its finalizers are done: it is gone. False when it is not terminating."""
        return self.cluster.purge_namespace(namespace)

    def set_service_backend(self, namespace: str, name: str, url: str, port: str = "") -> None:
        """Route ``/api/v1/namespaces/{namespace}/services/{name}[:port]/proxy/…`` to ``url``.

        ``port`` (a port name or number) restricts the route to requests naming that port;
        empty matches any. The Service (or a same-named SpinApp) must exist, as in a cluster.
        """
        self._backends[(namespace, name, str(port))] = url

    def service_backend(self, namespace: str, name: str, port: str = "") -> str | None:
        return self._backends.get((namespace, name, port)) or self._backends.get((namespace, name, ""))

    def service_backends(self) -> list[dict[str, str]]:
        return [{"namespace": ns, "name": name, "port": port, "url": url}
                for (ns, name, port), url in sorted(self._backends.items())]

    def mark_spinapp_ready(self, namespace: str, name: str, ready_replicas: int | None = None) -> dict[str, Any]:
        """Set a SpinApp's status to ready (as spin-operator would); returns the object."""
        return self.cluster.mark_ready(namespace, name, ready_replicas)


def _self_signed_certificate(host: str) -> tuple[bytes, bytes]:
    """A throwaway self-signed certificate (PEM cert, PEM key) valid for ``host`` and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "faasops-kube-emulator")])
    now = datetime.now(timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        if host != "127.0.0.1":
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt_names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
