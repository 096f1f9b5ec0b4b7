"""The ``remote`` builder and registry: a client of the Builder API (``faasops builder serve``).

For CI runners without the WebAssembly toolchain, registry credentials, or both::

    providers:
      builder: {type: remote, url: https://builder.example.com, token_env: FAASOPS_BUILDER_TOKEN}
      registry: {type: remote}      # optional: the builder pushes too (no registry credentials here)

How it fits apply's build → push steps
    The build key is computed here, exactly as the built-in componentize-py builder computes it,
    from the toolchain the service reports (``GET /api/v1/info``), so remote and local builds of
    one source share keys and a plan never sees a difference between them.

    - ``registry: {type: remote}`` — the build step uploads the source snapshot to
      ``POST /api/v1/build-and-push`` with the pinned creation time (``SOURCE_DATE_EPOCH`` / the
      source's last commit, as apply pins it), and the service builds *and* pushes with its own
      credentials (IRSA in-cluster). The push step then only hands on the artifact the service
      pushed. The component is never downloaded (``BuildResult.wasm_path`` names where it would be
      cached). Given a build that did not come from the service, it asks the service to push it
      by key (``POST /api/v1/push``), which works for builds the service made earlier.
    - any other registry (``ecr``, ``oci``, ``local``) — ``POST /api/v1/build``, then the
      component is downloaded (``GET /api/v1/builds/{key}/component``, digest-checked) into the
      same content-addressed cache the componentize-py builder uses, and pushed from here as
      usual. A component already in that cache is not built or downloaded again.

    Each remote step is a task on the service, polled every ``poll_interval_seconds`` seconds until it
    is ``completed`` (or ``done``, what older Builder servers answer) or ``failed`` — whose log
    excerpt becomes the error — or ``timeout_seconds`` pass. Progress (queued, running, still
    running, finished) goes to stderr. Connection errors, 429 and 5xx answers are retried with
    exponential backoff and jitter; 401/403 name the token's environment variable, never the
    token.

Options of ``providers.builder`` (the registry takes the same network options and defaults
them from the builder's):

=====================  ==========================================================================
``url``                the service's base URL (required; the registry defaults to the builder's)
``token_env``          environment variable holding the bearer token (default
                       ``FAASOPS_BUILDER_TOKEN``); a token is never read from faas.yaml
``poll_interval_seconds``  seconds between task polls (default 5)
``timeout_seconds``    seconds a task may take before the step fails (default 600)
``request_timeout_seconds``  per-request read timeout (default 60; 300 for uploads and
                       downloads); ``connect_timeout_seconds`` (default 10)
``retries``            attempts per request on connection errors, 429 and 5xx (default 5)
``backoff_seconds``    first retry delay, doubled per attempt (default 1, at most
                       ``max_backoff_seconds``, default 30), with jitter
``cache_dir``          where downloaded components go (default ``$FAASOPS_BUILD_CACHE``, else
                       ``<project>/.faasops/builds``)
``insecure``           allow plain ``http://`` to hosts other than localhost (the token travels in
                       clear text; meant for in-cluster Service URLs); ``ca_bundle`` for HTTPS
``progress``           progress lines on stderr (default true)
=====================  ==========================================================================

The durations' names without ``_seconds`` still work, with a deprecation warning
(:data:`OPTIONS_SCHEMA` lists them as aliases).
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import urllib3
from faasops.plugins.componentize import CACHE_ENV, ComponentizePyBuilder

from faasops.builder_service.build_cache import cached_build, entry_paths, write_sidecar
from faasops.builder_service.wire import (
    API_PREFIX,
    FAILURE_STATUSES,
    FIELD_SOURCE,
    FIELD_SPEC,
    OPEN_STATUSES,
    SUCCESS_STATUSES,
    function_to_wire,
)
from faasops.errors import ProviderError
from faasops.executor import source_date
from faasops.hookspecs import hookimpl
from faasops.model import Function, Project, ProviderConfig
from faasops.oci import file_lock, write_atomic
from faasops.options import OptionsSchema, seconds_option
from faasops.progress import report_activity
from faasops.providers import Artifact, BuildResult, SourceSnapshot

log = logging.getLogger(__name__)

TYPE = "remote"
DEFAULT_TOKEN_ENV = "FAASOPS_BUILDER_TOKEN"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TRANSFER_TIMEOUT_S = 300.0
HEARTBEAT_S = 30.0

_TEXT = {"type": "string", "minLength": 1}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {**_TEXT, "description": "the Builder service's base URL"},
        "token_env": {**_TEXT, "writeOnly": True, "default": DEFAULT_TOKEN_ENV,
                      "description": "environment variable holding the bearer token"},
        "poll_interval_seconds": seconds_option("seconds between task polls", 5.0, aliases=["poll_interval"]),
        "timeout_seconds": seconds_option("seconds a task may take", 600.0, aliases=["timeout"]),
        "request_timeout_seconds": seconds_option("per-request read timeout", 60.0, aliases=["request_timeout"]),
        "connect_timeout_seconds": seconds_option("connect timeout", 10.0, aliases=["connect_timeout"]),
        "retries": {"type": "integer", "minimum": 1, "default": 5,
                    "description": "attempts per request on connection errors, 429 and 5xx"},
        "backoff_seconds": {"type": "number", "minimum": 0, "default": 1.0, "aliases": ["backoff"],
                            "description": "first retry delay, doubled per attempt, with jitter"},
        "max_backoff_seconds": seconds_option("longest retry delay", 30.0, aliases=["max_backoff"]),
        "cache_dir": {**_TEXT, "description": "where downloaded components go (default $FAASOPS_BUILD_CACHE, "
                      "else .faasops/builds)"},
        "insecure": {"type": "boolean", "default": False,
                     "description": "allow plain http:// to hosts other than localhost"},
        "ca_bundle": {**_TEXT, "description": "CA bundle for HTTPS"},
        "progress": {"type": "boolean", "default": True, "description": "progress lines on stderr"},
    },
    "required": ["url"],
}
# The registry takes the same options and defaults them from the builder's: no defaults of its own.
REGISTRY_OPTIONS_SCHEMA: dict[str, Any] = {
    **OPTIONS_SCHEMA,
    "properties": {name: {k: v for k, v in prop.items() if k != "default"}
                   for name, prop in OPTIONS_SCHEMA["properties"].items()},
    "required": [],
}
# Option name → RemoteOptions field, where they differ.
_FIELDS = {"poll_interval_seconds": "poll_interval", "timeout_seconds": "timeout",
           "request_timeout_seconds": "request_timeout", "connect_timeout_seconds": "connect_timeout",
           "backoff_seconds": "backoff", "max_backoff_seconds": "max_backoff"}


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteOptions:
    url: str
    token_env: str = DEFAULT_TOKEN_ENV
    poll_interval: float = 5.0
    timeout: float = 600.0
    request_timeout: float = 60.0
    connect_timeout: float = 10.0
    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    cache_dir: str | None = None
    insecure: bool = False
    ca_bundle: str | None = None
    progress: bool = True

    @classmethod
    def parse(cls, config: ProviderConfig, inherited: dict[str, Any] | None = None) -> RemoteOptions:
        """``config.options`` (over ``inherited``, the builder slot's for the registry), as checked
        against OPTIONS_SCHEMA by the plugin manager, and what a schema can't say."""
        where = f"providers.{config.slot} ({config.type})"
        options = {**(inherited or {}), **config.options}
        if not options.get("url"):
            raise ProviderError(f"{where}: option `url` is required (the Builder service, e.g. https://builder.example.com)")
        parsed = cls(**{_FIELDS.get(k, k): v for k, v in options.items() if v is not None})
        url = urlsplit(parsed.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ProviderError(f"{where}: `url` must be an http(s) URL, not {parsed.url!r}")
        if url.scheme == "http" and url.hostname not in LOOPBACK_HOSTS and not parsed.insecure:
            raise ProviderError(f"{where}: refusing to send the builder token over plain http to {url.hostname}; "
                                "use https, or set `insecure: true` (e.g. for an in-cluster Service URL)")
        for name in ("poll_interval", "timeout", "request_timeout", "connect_timeout", "max_backoff"):
            if getattr(parsed, name) <= 0:
                raise ProviderError(f"{where}: `{name}` must be positive")
        if parsed.retries < 1 or parsed.backoff < 0:
            raise ProviderError(f"{where}: `retries` must be at least 1 and `backoff` not negative")
        return parsed


# --------------------------------------------------------------------------------------------
# The HTTP client
# --------------------------------------------------------------------------------------------


class BuilderClient:
    """Requests to one Builder service: auth, retries with backoff, task polling. Thread-safe."""

    def __init__(self, options: RemoteOptions, sleep: Callable[[float], None] = time.sleep):
        self.options = options
        self.base_url = options.url.rstrip("/")
        self._sleep = sleep
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=8, retries=False, ca_certs=options.ca_bundle,
            timeout=urllib3.Timeout(connect=options.connect_timeout, read=options.request_timeout),
        )
        self._info: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------- requests

    def _token(self) -> str:
        token = os.environ.get(self.options.token_env, "").strip()
        if not token:
            raise ProviderError(f"the builder at {self.base_url} needs a token: set the environment variable "
                                f"{self.options.token_env} (providers.builder `token_env`)")
        return token

    def request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                read_timeout: float | None = None, stream: bool = False, what: str = "") -> urllib3.BaseHTTPResponse:
        """One API request, retried on connection errors, 429 and 5xx with exponential backoff
        and jitter; any other non-2xx answer is a :class:`ProviderError` saying what to do."""
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        timeout = urllib3.Timeout(connect=self.options.connect_timeout, read=read_timeout or self.options.request_timeout)
        url = self.base_url + path
        what = what or f"{method} {path}"
        problem = ""
        for attempt in range(self.options.retries):
            if attempt:
                delay = min(self.options.max_backoff, self.options.backoff * 2 ** (attempt - 1))
                delay = delay / 2 + random.uniform(0, delay / 2)
                log.info("%s: %s; retrying in %.1f s", what, problem, delay)
                self._sleep(delay)
            try:
                response = self._pool.request(method, url, body=body, headers=headers, timeout=timeout,
                                              preload_content=not stream, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                problem = f"cannot reach the builder at {self.base_url} ({_reason(exc)})"
                continue
            if response.status in RETRY_STATUSES:
                problem = f"the builder answered HTTP {response.status}{_detail(response)}"
                response.release_conn()
                continue
            if response.status >= 400:
                raise self._failure(response, what)
            return response
        raise ProviderError(f"{what}: {problem} (gave up after {self.options.retries} attempts)")

    def _failure(self, response: urllib3.BaseHTTPResponse, what: str) -> ProviderError:
        detail = _detail(response)
        response.release_conn()
        if response.status in (401, 403):
            return ProviderError(
                f"the builder at {self.base_url} rejected the token in ${self.options.token_env} "
                f"(HTTP {response.status}{detail}); set it to the token the Builder service expects"
            )
        return ProviderError(f"{what}: the builder at {self.base_url} answered HTTP {response.status}{detail}")

    def json(self, method: str, path: str, payload: Any | None = None, **kwargs: Any) -> dict[str, Any]:
        body = json.dumps(payload).encode() if payload is not None else None
        response = self.request(method, path, body=body, content_type="application/json" if body else None, **kwargs)
        try:
            value = json.loads(response.data)
        except ValueError as exc:
            raise ProviderError(f"the builder at {self.base_url} answered {path} with something that is not JSON") from exc
        if not isinstance(value, dict):
            raise ProviderError(f"the builder at {self.base_url} answered {path} with unexpected JSON")
        return value

    # ----------------------------------------------------------------------- API

    def info(self) -> dict[str, Any]:
        """``GET /api/v1/info``, once per client."""
        with self._lock:
            if self._info is None:
                info = self.json("GET", f"{API_PREFIX}/info", what="reading the builder's toolchain")
                if not isinstance(info.get("toolchain"), str):
                    raise ProviderError(f"the builder at {self.base_url} reports no toolchain in {API_PREFIX}/info")
                self._info = info
            return self._info

    def upload(self, path: str, archive: bytes, spec: dict[str, Any], what: str) -> dict[str, Any]:
        limit = self.info().get("max_upload_bytes")
        if isinstance(limit, int) and len(archive) > limit:
            raise ProviderError(f"{what}: the source archive is {len(archive)} bytes; the builder accepts at most {limit}")
        body, content_type = urllib3.encode_multipart_formdata({
            FIELD_SPEC: json.dumps(spec),
            FIELD_SOURCE: ("source.tar.gz", archive, "application/gzip"),
        })
        response = self.request("POST", path, body=body, content_type=content_type,
                                read_timeout=TRANSFER_TIMEOUT_S, what=what)
        return json.loads(response.data)

    def wait(self, accepted: dict[str, Any], address: str, what: str) -> dict[str, Any]:
        """Poll the task ``accepted`` names until it finishes; its result, or a
        :class:`ProviderError` with the server's log excerpt, or one saying it timed out."""
        task_id = str(accepted.get("task_id") or "")
        if not task_id:
            raise ProviderError(f"{address}: the builder accepted the {what} without a task id")
        started = time.monotonic()
        deadline = started + self.options.timeout
        self._progress(address, f"{what} task {task_id[:12]} queued on {self.base_url}")
        last_status, last_said = "pending", started
        while True:
            task = self.json("GET", f"{API_PREFIX}/tasks/{task_id}", what=f"polling {what} task {task_id[:12]}")
            status = str(task.get("status", ""))
            report_activity(address, f"remote {what} task {task_id[:12]} {status}")
            elapsed = time.monotonic() - started
            if status in SUCCESS_STATUSES:
                self._progress(address, f"{what} task {task_id[:12]} {status} in {elapsed:.0f} s")
                result = task.get("result")
                return result if isinstance(result, dict) else {}
            if status in FAILURE_STATUSES:
                excerpt = str(task.get("log") or task.get("message") or "(the builder sent no log)").rstrip()
                raise ProviderError(f"{address}: the remote {what} failed (task {task_id}):\n"
                                    + "\n".join("  " + line for line in excerpt.splitlines()))
            if status not in OPEN_STATUSES:
                raise ProviderError(f"{address}: the builder reports task {task_id} in an unknown status {status!r}")
            now = time.monotonic()
            if status != last_status or now - last_said >= HEARTBEAT_S:
                self._progress(address, f"{what} task {task_id[:12]} {status} ({elapsed:.0f} s)")
                last_status, last_said = status, now
            if now + self.options.poll_interval > deadline:
                raise ProviderError(
                    f"{address}: the remote {what} did not finish within {self.options.timeout:g} s "
                    f"(task {task_id} is still {status}); see {self.base_url}{API_PREFIX}/tasks/{task_id} "
                    "or raise providers.builder `timeout_seconds`"
                )
            self._sleep(self.options.poll_interval)

    def download(self, build_key: str, dest: Path, expected_digest: str, what: str) -> None:
        """The component of ``build_key`` into ``dest``, checked against ``expected_digest``."""
        response = self.request("GET", f"{API_PREFIX}/builds/{build_key}/component", stream=True,
                                read_timeout=TRANSFER_TIMEOUT_S, what=what)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".download")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in response.stream(1 << 20):
                    out.write(chunk)
            write_atomic(dest, Path(tmp), expected_digest)
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderError(f"{what}: the download broke off ({_reason(exc)})") from exc
        finally:
            response.release_conn()
            Path(tmp).unlink(missing_ok=True)

    def _progress(self, address: str, message: str) -> None:
        log.info("%s: %s", address, message)
        if self.options.progress:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            lead = "\r\033[K" if sys.stderr.isatty() else ""
            sys.stderr.write(f"{lead}{stamp} {address}: {message}\n")
            sys.stderr.flush()

    def close(self) -> None:
        self._pool.clear()


def _detail(response: urllib3.BaseHTTPResponse) -> str:
    try:
        detail = json.loads(response.data).get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {detail}" if isinstance(detail, str) and detail else ""


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).split(": ", 1)[-1] if isinstance(reason, Exception) else str(reason)


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteBuildResult(BuildResult):
    """A build the service also pushed (``registry: remote``): the artifact, and the creation
    time it was pushed with."""

    artifact: Artifact | None = None
    created: str = ""


class RemoteBuilder:
    """A :class:`faasops.providers.Builder` that builds on a Builder service."""

    def __init__(self, project: Project, options: RemoteOptions, push_remotely: bool):
        self.project = project
        self.options = options
        self.push_remotely = push_remotely
        self.client = BuilderClient(options)
        cache_dir = options.cache_dir or os.environ.get(CACHE_ENV)
        path = Path(cache_dir) if cache_dir else project.state_dir / "builds"
        self.cache_dir = path if path.is_absolute() else project.root / path

    @property
    def toolchain(self) -> str:
        """The service's toolchain (read once): part of the build key, so remote and local builds
        with the same toolchain share keys."""
        return str(self.client.info()["toolchain"])

    # Same formula as the built-in builder, so the keys — and plans — match a local build's.
    build_key = ComponentizePyBuilder.build_key
    # The local cache has the built-in builder's layout: gc cleans it the same way. What the
    # service keeps on its side (its sources, its caches) is the service's to clean.
    garbage = ComponentizePyBuilder.garbage
    collect = ComponentizePyBuilder.collect

    def build(self, function: Function, snapshot: SourceSnapshot) -> BuildResult:
        key = self.build_key(function, snapshot)
        spec = {"project": self.project.name, "function": function_to_wire(function), "source_digest": snapshot.digest}
        if self.push_remotely:
            created = source_date(function.source_dir)
            report_activity(function.address, "uploading the source to the builder")
            accepted = self.client.upload(f"{API_PREFIX}/build-and-push", snapshot.archive, {**spec, "created": created},
                                          what=f"{function.address}: uploading the source")
            result = self.client.wait(accepted, function.address, "build-and-push")
            self._check_key(function, key, result)
            artifact = result.get("artifact") or {}
            if not artifact.get("reference"):
                raise ProviderError(f"{function.address}: the builder finished build-and-push without an artifact")
            return RemoteBuildResult(
                build_key=key, wasm_path=self._wasm_path(key), wasm_digest=str(result.get("wasm_digest", "")),
                cached=bool(result.get("cached")), created=created,
                artifact=Artifact(reference=artifact["reference"], digest=artifact["digest"], pushed=bool(artifact.get("pushed"))),
            )
        return self._build_and_download(function, snapshot, key, spec)

    def _wasm_path(self, key: str) -> Path:
        return entry_paths(self.cache_dir, key)[0]

    def _build_and_download(self, function: Function, snapshot: SourceSnapshot, key: str, spec: dict[str, Any]) -> BuildResult:
        wasm, sidecar = entry_paths(self.cache_dir, key)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Not the builders' own `<key>.lock`: a service sharing this cache (same host) takes
        # that one while it builds, and we hold ours until its build is downloaded.
        with file_lock(self.cache_dir / "locks" / f"{key.removeprefix('sha256:')}.download.lock"):
            cached = cached_build(self.cache_dir, key)
            if cached:
                return cached
            report_activity(function.address, "uploading the source to the builder")
            accepted = self.client.upload(f"{API_PREFIX}/build", snapshot.archive, spec,
                                          what=f"{function.address}: uploading the source")
            result = self.client.wait(accepted, function.address, "build")
            self._check_key(function, key, result)
            shared = cached_build(self.cache_dir, key)  # the service wrote it into this very cache
            if shared:
                return BuildResult(key, shared.wasm_path, shared.wasm_digest, cached=bool(result.get("cached")))
            digest = str(result.get("wasm_digest", ""))
            sidecar.unlink(missing_ok=True)  # an entry is valid only once its wasm is complete
            report_activity(function.address, "downloading the component")
            self.client.download(key, wasm, digest, what=f"{function.address}: downloading the component")
            write_sidecar(self.cache_dir, key, digest, function.handler, snapshot.digest, self.toolchain)
        return BuildResult(build_key=key, wasm_path=wasm, wasm_digest=digest, cached=bool(result.get("cached")))

    def _check_key(self, function: Function, key: str, result: dict[str, Any]) -> None:
        if result.get("build_key") != key:
            raise ProviderError(
                f"{function.address}: the builder built key {result.get('build_key')}, expected {key}: its toolchain "
                f"({result.get('toolchain')}) is not the one it reported ({self.toolchain}); retry once it is redeployed"
            )


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


class RemoteRegistry:
    """A :class:`faasops.providers.Registry` whose pushes the Builder service makes."""

    def __init__(self, project: Project, options: RemoteOptions):
        self.project = project
        self.client = BuilderClient(options)

    def push(self, function: Function, build: BuildResult, created: str) -> Artifact:
        if isinstance(build, RemoteBuildResult) and build.artifact is not None and build.created == created:
            return build.artifact  # pushed by the build step's build-and-push
        accepted = self.client.json("POST", f"{API_PREFIX}/push", {
            "project": self.project.name, "function": function_to_wire(function),
            "build_key": build.build_key, "created": created,
        }, what=f"{function.address}: asking the builder to push {build.build_key}")
        result = self.client.wait(accepted, function.address, "push")
        artifact = result.get("artifact") or {}
        if not artifact.get("reference"):
            raise ProviderError(f"{function.address}: the builder finished the push without an artifact")
        return Artifact(reference=artifact["reference"], digest=artifact["digest"], pushed=bool(artifact.get("pushed")))

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------------------------
# Hook implementations
# --------------------------------------------------------------------------------------------


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("builder", TYPE, OPTIONS_SCHEMA), ("registry", TYPE, REGISTRY_OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [
        ("builder", TYPE, "builds on a faasops Builder service (`faasops builder serve`)"),
        ("registry", TYPE, "the Builder service pushes (with `builder: remote`; no registry credentials needed here)"),
    ]


@hookimpl
def faasops_builder(config: ProviderConfig, project: Project) -> RemoteBuilder | None:
    if config.type != TYPE:
        return None
    registry = project.providers.get("registry")
    return RemoteBuilder(project, RemoteOptions.parse(config), push_remotely=registry is not None and registry.type == TYPE)


@hookimpl
def faasops_registry(config: ProviderConfig, project: Project) -> RemoteRegistry | None:
    if config.type != TYPE:
        return None
    builder = project.providers.get("builder")
    # The builder slot's options as written: old names renamed, no defaults (the registry's own win).
    aliases = OptionsSchema("builder", TYPE, OPTIONS_SCHEMA).aliases()
    inherited = {aliases.get(k, k): v for k, v in builder.options.items()} \
        if builder is not None and builder.type == TYPE else {}
    inherited.pop("cache_dir", None)
    return RemoteRegistry(project, RemoteOptions.parse(config, inherited))
