"""Serving what the local backend deployed: ``faasops up`` and ``faasops invoke``.

The local deployer writes SpinApp manifests to ``.faasops/deploy/<namespace>/<fn>.yaml``; this
module runs them the way SpinKube would run them in a cluster: it reads each SpinApp, loads its
image's component from the local OCI layout with the local runtime, and routes
``/<workspace>/<function>/…`` to it; the function sees the path below that mount, as on the
cluster where it is an app of its own (:mod:`faasops.runtime.http_trigger`). When a new apply
rewrites a manifest, the next request gets the new version while requests in flight finish on
the old one.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from faasops import names
from faasops.errors import FaasopsError
from faasops.invocation_log import InvocationLog
from faasops.model import Project
from faasops.oci import ALLOWED_HOSTS_METADATA, DATABASES_METADATA, KEY_VALUE_STORES_METADATA, TIMEOUT_METADATA
from faasops.runtime import ComponentRuntime, HttpRequest, HttpResponse, LoadedApp
from faasops.runtime.component import DEFAULT_MEMORY_LIMIT, default_cache_dir
from faasops.runtime.http_syntax import is_field_value, is_token
from faasops.runtime.server import InvocationRecord, RuntimeServer, ServerLimits

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
    memory_limit: str | None = None  # the SpinApp's resources.limits.memory, as written


@dataclass(frozen=True)
class Swap:
    """One change to what ``faasops up`` serves: a function's new version (or settings), a new
    function, or a removed one."""

    address: str
    before: str | None
    """The image (``…@sha256:…``) served until now; None for a new function."""
    after: str | None
    """The image served from now on; None for a removed function."""
    load_s: float = 0.0
    """How long loading the new version took."""
    compiled: bool = False
    """Whether loading it compiled the component (no precompiled artifact in the cache)."""

    def line(self) -> str:
        """``Swapped demo/hello sha256:0a1b2c3d4e5f → sha256:6a7b8c9d0e1f (ready in 40 ms)``."""
        before, after = short_digest(self.before), short_digest(self.after)
        if self.after is None:
            return f"Removed {self.address} {before}"
        ready = (f"compiled in {self.load_s:.1f} s: no precompiled artifact" if self.compiled
                 else f"ready in {self.load_s * 1000:.0f} ms")
        if self.before is None:
            return f"Added {self.address} → {after} ({ready})"
        return f"Swapped {self.address} {before} → {after} ({ready})"


def short_digest(image: str | None) -> str:
    """``local/p-demo-hello@sha256:0a1b…`` → ``sha256:0a1b2c3d4e5f`` (12 hex digits, as docker)."""
    if image is None:
        return "-"
    digest = image.rpartition("@")[2]
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]


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
        limits = (app["spec"].get("resources") or {}).get("limits") or {}
        memory = limits.get("memory")
        item = Deployed(workspace, app["metadata"]["name"], app["spec"]["image"], variables, path,
                        path.stat().st_mtime_ns, str(memory) if memory is not None else None)
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

    def refresh(self) -> list[Swap]:
        """Load new and changed deployments, drop removed ones; returns what changed."""
        deployed = read_deployed(self.deploy_root)
        changed = []
        for address, item in deployed.items():
            current = self._apps.get(address)
            if current and _same_version(current[0], item):
                continue
            started = time.perf_counter()
            component = self.registry.locked_component(item.image)
            metadata = component.get("metadata") or {}
            timeout = metadata.get(TIMEOUT_METADATA)
            app = self.runtime.load(
                self.registry.component_path(item.image),
                variables=item.variables,
                env=dict(component.get("env") or {}),
                kv_path=self.project.state_dir / "kv.db",
                kv_namespace=address,
                key_value_stores=metadata.get(KEY_VALUE_STORES_METADATA) or (),
                timeout_s=float(timeout) if isinstance(timeout, (int, float)) else None,
                memory_limit=memory_bytes(item.memory_limit),
                allowed_outbound_hosts=metadata.get(ALLOWED_HOSTS_METADATA) or (),
                sqlite_databases=metadata.get(DATABASES_METADATA) or (),
                sqlite_dir=sqlite_directory(self.project.state_dir, item.workspace, item.function),
                files=self.registry.component_files(item.image),
            )
            with self._lock:
                self._apps[address] = (item, app)
            changed.append(Swap(address, current[0].image if current else None, item.image,
                                time.perf_counter() - started, not app.compiled_from_cache))
        for address in sorted(set(self._apps) - set(deployed)):
            with self._lock:
                removed, _ = self._apps.pop(address)
            changed.append(Swap(address, removed.image, None))
        return changed

    def resolve(self, workspace: str, function: str) -> LoadedApp | None:
        entry = self._apps.get(f"{workspace}/{function}")
        return entry[1] if entry else None

    def addresses(self) -> list[str]:
        return sorted(self._apps)


def sqlite_directory(state_dir: Path, workspace: str, function: str) -> Path:
    """Where ``faasops up`` keeps a function's SQLite databases, one ``<label>.db`` each: per
    function, as on the cluster, where every function is a Spin app of its own."""
    return state_dir / "sqlite" / workspace / function


def _same_version(a: Deployed, b: Deployed) -> bool:
    return (a.image, a.variables, a.memory_limit) == (b.image, b.variables, b.memory_limit)


def memory_bytes(quantity: str | None) -> int | None:
    """A memory quantity (``128Mi``, ``1G``) in whole bytes; None for none or a non-quantity."""
    amount = names.quantity_amount(quantity) if quantity is not None else None
    return int(amount) if amount is not None and amount >= 1 else None


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


def remove_up_file(path: Path) -> None:
    """Remove ``up.json`` unless another ``faasops up`` has replaced it with its own."""
    try:
        if json.loads(path.read_text()).get("pid") != os.getpid():
            return
    except (OSError, ValueError, AttributeError):
        pass
    path.unlink(missing_ok=True)


def restore_interrupt() -> None:
    """Let Ctrl-C (SIGINT) stop this process even when it was started with SIGINT ignored,
    as shells start background jobs (``faasops up &`` in a script) and ``nohup`` does."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
                 port: int = 0, poll_s: float = 0.5, limits: ServerLimits = ServerLimits(),
                 on_swap: Callable[[Swap], None] | None = None):
        """``on_swap`` hears of every change the watcher serves once it serves it (default:
        its :meth:`Swap.line` on stdout)."""
        self.functions = functions
        self.log = log
        self.poll_s = poll_s
        self.on_swap = on_swap or (lambda swap: print(swap.line(), flush=True))
        functions.refresh()
        self.server = RuntimeServer(host, port, functions.resolve, log.record, limits)
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
                    swaps = self.functions.refresh()
                except Exception as exc:  # keep serving the versions we have
                    print(f"faasops up: could not load a new deployment: {exc}", file=sys.stderr, flush=True)
                    continue
                for swap in swaps:
                    self.on_swap(swap)

    def wait_for_stop_signal(self) -> str:
        """Serve until SIGINT, SIGTERM or SIGHUP arrives (or :meth:`stop`); return the signal's
        name. Call it on the main thread: it installs the handlers, and restores the previous
        ones before it returns, so a second signal acts as it did before."""
        received: list[str] = []

        def stop(signum: int, frame: object) -> None:
            received.append(signal.Signals(signum).name)
            self._stop.set()

        previous = {}
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if number == signal.SIGHUP and signal.getsignal(number) == signal.SIG_IGN:
                continue  # started with nohup: outlive the terminal, as asked
            previous[number] = signal.signal(number, stop)
        try:
            self._stop.wait()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        return received[0] if received else ""

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        if self._up_file is not None:
            remove_up_file(self._up_file)
            self._up_file = None

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
def open_local(engine: Any, memory_limit: int | None = None) -> Iterator[tuple[LocalFunctions, InvocationLog]]:
    """The local backend's deployed functions, loaded into a runtime, and its invocation log.

    ``memory_limit`` (bytes) caps the instances of functions without ``resources.limits.memory``.
    """
    registry, deployer = _local_providers(engine)
    state_dir = engine.project.state_dir
    runtime = ComponentRuntime(default_cache_dir(state_dir), memory_limit=memory_limit or DEFAULT_MEMORY_LIMIT)
    log = InvocationLog(state_dir / "invocations.db")
    try:
        yield LocalFunctions(engine.project, registry, deployer.root, runtime), log
    finally:
        log.close()
        runtime.close()


def parse_size(text: str, option: str) -> int:
    """A size option (``10Mi``, ``512Ki``, ``1000000``) in bytes, at least 1."""
    size = memory_bytes(text)
    if size is None:
        raise FaasopsError(f"{option}: {text!r} is not a size: use bytes or a quantity such as 512Ki or 10Mi")
    return size


def parse_headers(headers: tuple[str, ...]) -> list[tuple[str, str]]:
    """``-H 'Name: value'`` options as (lower-cased name, value) pairs.

    A value is sent as its UTF-8 bytes, as curl sends what the shell gave it; it is returned as
    the latin-1 text of those bytes (one char per byte, see
    :func:`faasops.runtime.http_syntax.wire_bytes`), the form every invoker's HTTP client
    (http.client, urllib, urllib3) puts on the wire unchanged.
    """
    parsed = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise FaasopsError(f"header {header!r} is not 'Name: value'")
        if not is_token(name.strip()):
            raise FaasopsError(f"header {header!r}: {name.strip()!r} is not a valid header name")
        # surrogateescape: bytes the shell passed that aren't UTF-8 go out unchanged.
        raw = value.strip().encode("utf-8", "surrogateescape")
        if not is_field_value(raw):
            raise FaasopsError(f"header {name.strip()!r}: the value has CR, LF, NUL or another control character")
        parsed.append((name.strip().lower(), raw.decode("latin-1")))
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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the function's answer, shown as such (as curl without -L, and as the
    cluster invokers do), not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _http_call(url: str, method: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
    joined: dict[str, str] = {}
    for name, value in headers:  # repeated headers as one list-valued field (RFC 9110 5.3)
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    request = urllib.request.Request(url, data=body if body or method not in ("GET", "HEAD") else None,
                                     method=method, headers=joined)
    try:
        # The longest request time limit a function may set is 1 h.
        with _OPENER.open(request, timeout=3660) as response:
            try:
                data = response.read()
            except (http.client.IncompleteRead, ConnectionError) as exc:
                # `faasops up` streams: a function failing after its head went out cuts the body.
                raise FaasopsError(f"the response of {url} was cut short (HTTP {response.status} sent, then "
                                   f"{exc!r}): the function failed while it streamed its body; see `faasops "
                                   f"logs` for why") from None
            return HttpResponse(response.status, list(response.headers.items()), data)
    except urllib.error.HTTPError as exc:
        # As for an in-process call: only a 5xx means the function failed.
        return HttpResponse(exc.code, list(exc.headers.items()), exc.read(),
                            error=f"HTTP {exc.code}" if exc.code >= 500 else None)
    except urllib.error.URLError as exc:
        raise FaasopsError(f"cannot reach `faasops up` at {url}: {exc.reason}") from exc
