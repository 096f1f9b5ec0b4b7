"""Serving what the local backend deployed: ``faasops up`` and ``faasops invoke``.

The local deployer writes SpinApp manifests to ``.faasops/deploy/<namespace>/<fn>.yaml``; this
module runs them the way SpinKube would run them in a cluster: it reads each SpinApp, loads its
image's component from the local OCI layout with the local runtime, and routes
``/<workspace>/<function>/…`` to it. When a new apply rewrites a manifest, the next request gets
the new version while requests in flight finish on the old one.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from faasops.errors import FaasopsError
from faasops.invocation_log import InvocationLog
from faasops.model import Project
from faasops.runtime import ComponentRuntime, HttpRequest, HttpResponse, LoadedApp
from faasops.runtime.server import InvocationRecord, RuntimeServer

UP_FILE = "up.json"


@dataclass(frozen=True)
class Deployed:
    """One SpinApp the local deployer wrote."""

    workspace: str
    function: str
    image: str
    variables: dict[str, str]
    manifest_path: Path
    mtime_ns: int


def _spinapps(deploy_root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(deploy_root.glob("*/*.yaml")):
        if path.name.startswith("_"):
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except FileNotFoundError:  # removed by a concurrent apply
            continue
        for doc in docs:
            if doc and doc.get("kind") == "SpinApp":
                yield path, doc


def read_deployed(deploy_root: Path) -> dict[str, Deployed]:
    """Every deployed function by address, from the SpinApp manifests."""
    found: dict[str, Deployed] = {}
    for path, app in _spinapps(deploy_root):
        labels = app["metadata"].get("labels", {})
        workspace = labels.get("workspace_id") or app["metadata"]["namespace"]
        variables = {
            v["name"]: v["value"] for v in app["spec"].get("variables", []) if "value" in v
        }
        item = Deployed(workspace, app["metadata"]["name"], app["spec"]["image"], variables, path, path.stat().st_mtime_ns)
        found[f"{item.workspace}/{item.function}"] = item
    return found


class LocalFunctions:
    """The routing table: deployed functions loaded into the runtime, refreshed on demand."""

    def __init__(self, project: Project, registry: Any, deploy_root: Path, runtime: ComponentRuntime):
        self.project = project
        self.registry = registry
        self.deploy_root = deploy_root
        self.runtime = runtime
        self._apps: dict[str, tuple[Deployed, LoadedApp]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> list[str]:
        """Load new and changed deployments, drop removed ones; returns the changed addresses."""
        deployed = read_deployed(self.deploy_root)
        changed = []
        for address, item in deployed.items():
            current = self._apps.get(address)
            if current and (current[0].image, current[0].variables) == (item.image, item.variables):
                continue
            app = self.runtime.load(
                self.registry.component_path(item.image),
                variables=item.variables,
                env=self.registry.component_env(item.image),
                kv_path=self.project.state_dir / "kv.db",
                kv_namespace=address,
            )
            with self._lock:
                self._apps[address] = (item, app)
            changed.append(address)
        for address in set(self._apps) - set(deployed):
            with self._lock:
                del self._apps[address]
            changed.append(address)
        return changed

    def resolve(self, workspace: str, function: str) -> LoadedApp | None:
        entry = self._apps.get(f"{workspace}/{function}")
        return entry[1] if entry else None

    def addresses(self) -> list[str]:
        return sorted(self._apps)


def invoke_in_process(functions: LocalFunctions, log: InvocationLog, workspace: str, function: str,
                      request: HttpRequest) -> HttpResponse:
    """Run one request without a server (``faasops invoke`` when ``faasops up`` isn't running)."""
    app = functions.resolve(workspace, function)
    if app is None:
        known = ", ".join(functions.addresses()) or "none"
        raise FaasopsError(f"function {workspace}/{function} is not deployed (deployed: {known}); run `faasops apply`")
    started = time.time()
    response = app.handle(request)
    log.record(InvocationRecord(
        time=started, workspace=workspace, function=function, method=request.method,
        path=request.path, status=response.status, duration_s=response.duration_s,
        cpu_s=response.cpu_s, stdout=response.stdout, stderr=response.stderr, error=response.error,
    ))
    return response


def write_up_file(project: Project, url: str) -> Path:
    path = project.state_dir / UP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    return path


def running_server_url(project: Project) -> str | None:
    """The URL of a live ``faasops up`` for this project, if one is running."""
    path = project.state_dir / UP_FILE
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, PermissionError):
        return None
    return str(info["url"])


class LocalServer:
    """``faasops up``: the HTTP server plus a watcher that hot-swaps new deployments."""

    def __init__(self, functions: LocalFunctions, log: InvocationLog, host: str = "127.0.0.1",
                 port: int = 0, poll_s: float = 0.5):
        self.functions = functions
        self.log = log
        self.poll_s = poll_s
        functions.refresh()
        self.server = RuntimeServer(host, port, functions.resolve, log.record)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="faasops-deploy-watcher", daemon=True)
        self._up_file: Path | None = None
        self._signature: tuple[tuple[str, int], ...] = self._deploy_signature()

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> "LocalServer":
        self.server.start()
        self._up_file = write_up_file(self.functions.project, self.url)
        self._watcher.start()
        return self

    def _deploy_signature(self) -> tuple[tuple[str, int], ...]:
        root = self.functions.deploy_root
        return tuple((str(p), p.stat().st_mtime_ns) for p in sorted(root.glob("*/*.yaml")) if p.exists())

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                signature = self._deploy_signature()
            except FileNotFoundError:  # a manifest replaced while we listed
                continue
            if signature != self._signature:
                self._signature = signature
                try:
                    self.functions.refresh()
                except Exception as exc:  # keep serving the versions we have
                    print(f"faasops up: could not load a new deployment: {exc}", file=sys.stderr, flush=True)

    def wait(self) -> None:
        self._stop.wait()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        if self._up_file is not None:
            self._up_file.unlink(missing_ok=True)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -------------------------------------------------------------------------------- CLI support


def _local_providers(engine: Any) -> tuple[Any, Any]:
    registry, deployer = engine.providers.registry, engine.providers.deployer
    if not hasattr(registry, "component_path") or not hasattr(deployer, "root"):
        raise FaasopsError(
            "`faasops up` and in-process `invoke` run functions on the local backend; this project "
            f"deploys with {engine.project.provider('deployer').type!r} (use `faasops invoke` against the cluster)"
        )
    return registry, deployer


@contextmanager
def open_local(engine: Any) -> Iterator[tuple[LocalFunctions, InvocationLog]]:
    """The local backend's deployed functions, loaded into a runtime, and its invocation log."""
    registry, deployer = _local_providers(engine)
    state_dir = engine.project.state_dir
    # Compiled components are keyed by content, so a cache shared between projects is safe.
    runtime = ComponentRuntime(Path(os.environ.get("FAASOPS_RUNTIME_CACHE") or state_dir / "runtime-cache"))
    log = InvocationLog(state_dir / "invocations.db")
    try:
        yield LocalFunctions(engine.project, registry, deployer.root, runtime), log
    finally:
        log.close()
        runtime.close()


def parse_headers(headers: tuple[str, ...]) -> list[tuple[str, str]]:
    parsed = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise FaasopsError(f"header {header!r} is not 'Name: value'")
        parsed.append((name.strip().lower(), value.strip()))
    return parsed


def read_body(data: str | None) -> bytes:
    if data is None:
        return b""
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            return Path(data[1:]).read_bytes()
        except OSError as exc:
            raise FaasopsError(f"cannot read request body from {data[1:]}: {exc.strerror}") from exc
    return data.encode()


def invoke_function(engine: Any, workspace: str, function: str, method: str, path: str,
                    headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
    """Call a function: through a running ``faasops up`` if there is one, else in-process."""
    if not path.startswith("/"):
        path = "/" + path
    target = f"/{workspace}/{function}{path}"
    url = running_server_url(engine.project)
    if url is not None:
        return _http_call(url + target, method, headers, body)
    with open_local(engine) as (functions, log):
        functions.refresh()
        request = HttpRequest(method=method, path=target, headers=[("host", "localhost"), *headers],
                              body=body, base_path=f"/{workspace}/{function}")
        return invoke_in_process(functions, log, workspace, function, request)


def _http_call(url: str, method: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
    request = urllib.request.Request(url, data=body if body or method not in ("GET", "HEAD") else None,
                                     method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return HttpResponse(response.status, list(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return HttpResponse(exc.code, list(exc.headers.items()), exc.read(), error=f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        raise FaasopsError(f"cannot reach `faasops up` at {url}: {exc.reason}") from exc
