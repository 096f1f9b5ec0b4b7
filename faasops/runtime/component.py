"""Load Spin HTTP components and run one request per fresh instance.

Compiling a 37 MB componentize-py component takes seconds; the compiled artifact is cached on
disk (keyed by the wasm's sha256, the wasmtime version and the engine settings) and loads in
milliseconds. Engine, component and linker are shared by all threads; every request gets its own
Store and instance, so requests never see each other's state and a crashed guest costs nothing
to the next request.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import re
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as wc

from faasops.errors import FaasopsError
from faasops.runtime import filesystem, outgoing_http, spin, sqlite, wasi, wasi_http  # noqa: F401  (they register host functions)
from faasops.runtime.filesystem import MountedFiles
from faasops.runtime.host import RequestState, link, set_current_request
from faasops.runtime.http_trigger import NotUtf8Header, incoming_request
from faasops.runtime.messages import HttpRequest, HttpResponse, ResponseSink
from faasops.runtime.outbound_hosts import AllowedHosts, MalformedAllowedHost
from faasops.runtime.spin import DEFAULT_STORE, KeyValueDatabase, store_namespace
from faasops.runtime.sqlite import SqliteDatabases
from faasops.runtime.wasi_http import IncomingRequest, ResponseOutparam

WASMTIME_VERSION = importlib.metadata.version("wasmtime")
CACHE_ENV = "FAASOPS_RUNTIME_CACHE"
HANDLER_INTERFACE = "wasi:http/incoming-handler@0.2"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_CONCURRENCY = 32
DEFAULT_MEMORY_LIMIT = 256 << 20
"""Linear memory one instance may grow to, unless its function sets ``resources.limits.memory``."""
MAX_MEMORY_LIMIT = 4 << 30  # all a wasm32 memory can address; larger limits are capped to it
DEFAULT_QUEUE_WAIT_S = 1.0
"""How long a request waits for a free instance slot before it is refused as overloaded."""
# Epoch ticks bound a request's run time; coarse ticks keep the ticker thread nearly free.
EPOCH_TICK_S = 0.05
# Part of the cache key: artifacts compiled with other engine settings don't deserialize.
ENGINE_SETTINGS = "epoch1-pool1"
# Pool sizing per component instance. A componentize-py component has 14 core instances, one
# linear memory and a few tables; a component needing more is refused at load time. Each memory
# slot reserves ~4 GiB of address space (not RAM): ~140 GB virtual for 32 slots.
_CORE_INSTANCES_PER_COMPONENT = 24
_MEMORIES_PER_COMPONENT = 1
_TABLES_PER_COMPONENT = 16
# Reset this much of a reused memory slot in place instead of handing it back to the kernel:
# the next instance then starts without page faults on the Python heap. Measured on the hello
# component: ~1.6 ms instead of ~2.0 ms per request, and two threads scale (≈800 vs ≈400
# req/s) instead of fighting over the kernel's memory map. Costs RSS per warm slot.
_KEEP_RESIDENT = 64 << 20
_WARM_SLOTS = 8


class ComponentLoadError(FaasopsError):
    """The file is not a component this runtime can serve."""


class CapacityExceeded(Exception):
    """Every instance slot stayed busy for the whole queue wait; the request did not run."""


def _engine(max_instances: int, memory_limit: int) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    # wasmtime-py has no wrapper for the pooling allocator; its C API is in the bindings.
    pool = ffi.wasmtime_pooling_allocation_config_new()
    try:
        ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pool, max_instances)
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(
            pool, max_instances * _CORE_INSTANCES_PER_COMPONENT)
        ffi.wasmtime_pooling_allocation_config_max_core_instances_per_component_set(
            pool, _CORE_INSTANCES_PER_COMPONENT)
        ffi.wasmtime_pooling_allocation_config_total_memories_set(
            pool, max_instances * _MEMORIES_PER_COMPONENT)
        ffi.wasmtime_pooling_allocation_config_max_memories_per_component_set(
            pool, _MEMORIES_PER_COMPONENT)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(
            pool, max_instances * _TABLES_PER_COMPONENT)
        ffi.wasmtime_pooling_allocation_config_max_tables_per_component_set(
            pool, _TABLES_PER_COMPONENT)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, memory_limit)
        ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, _KEEP_RESIDENT)
        ffi.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pool, _WARM_SLOTS)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pool)
    return wasmtime.Engine(config)


def default_cache_dir(state_dir: Path) -> Path:
    """The compiled-component cache of a project whose state is in ``state_dir``:
    ``$FAASOPS_RUNTIME_CACHE``, else ``<state_dir>/runtime-cache``. Artifacts are keyed by
    content, so a cache shared between projects is safe."""
    return Path(os.environ.get(CACHE_ENV) or state_dir / "runtime-cache")


def cache_path(cache_dir: Path, digest: str) -> Path:
    """Where the compiled artifact of the wasm with sha256 ``digest`` is cached in ``cache_dir``."""
    return cache_dir / f"{digest}-wasmtime{WASMTIME_VERSION}-{ENGINE_SETTINGS}.cwasm"


def _compile_into(engine: wasmtime.Engine, wasm: bytes, wasm_path: Path, cached: Path) -> wc.Component:
    """Compile ``wasm`` and write its serialised artifact to ``cached``."""
    try:
        component = wc.Component(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise ComponentLoadError(f"cannot compile {wasm_path}: {exc}") from None
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half an artifact.
    fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(component.serialize())
        os.replace(tmp, cached)
    except BaseException:
        os.unlink(tmp)
        raise
    return component


# One compile at a time per process: wasmtime already spreads one compile over every core, and
# each holds hundreds of MB while it runs.
_PRECOMPILE_LOCK = threading.Lock()


def precompile(wasm_path: Path, cache_dir: Path) -> Path | None:
    """Compile the component at ``wasm_path`` into ``cache_dir`` unless its artifact is already
    there, so the runtime that serves it next (``faasops up``) only deserialises it; returns the
    artifact written, or None when there was one. Raises :class:`ComponentLoadError` for a file
    wasmtime can't compile."""
    wasm = Path(wasm_path).read_bytes()
    digest = hashlib.sha256(wasm).hexdigest()
    cached = cache_path(Path(cache_dir), digest)
    if cached.is_file():
        return None
    with _PRECOMPILE_LOCK:
        if cached.is_file():  # another thread compiled it while we waited
            return None
        # Same settings as a serving runtime's engine (the artifact's compatibility depends on
        # them, not on the pool's size), with the smallest pool.
        _compile_into(_engine(1, MAX_MEMORY_LIMIT), wasm, Path(wasm_path), cached)
    return cached


def _tick(engine_ref: "weakref.ReferenceType[wasmtime.Engine]", stop: threading.Event) -> None:
    while not stop.wait(EPOCH_TICK_S):
        engine = engine_ref()
        if engine is None:
            return
        engine.increment_epoch()
        del engine


@dataclass
class _Compiled:
    """A component plus what every instance of it shares."""

    component: wc.Component
    linker: wc.Linker
    handle_index: wc.ExportIndex
    unsupported_imports: tuple[str, ...]


class ComponentRuntime:
    """Compiles (or loads from the cache) components and hands out :class:`LoadedApp` objects."""

    def __init__(self, cache_dir: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT,
                 queue_wait_s: float = DEFAULT_QUEUE_WAIT_S):
        """``timeout_s`` bounds each request and ``memory_limit`` (bytes) each instance's linear
        memory, unless :meth:`load` sets others for an app; at most ``max_concurrency``
        requests run at once, a request waits up to ``queue_wait_s`` for a slot, then
        :meth:`LoadedApp.handle` raises :class:`CapacityExceeded`."""
        self.cache_dir = Path(cache_dir)
        self.timeout_s = timeout_s
        self.memory_limit = min(memory_limit, MAX_MEMORY_LIMIT)
        self.queue_wait_s = queue_wait_s
        # The pool's per-memory cap is the wasm32 maximum; each Store gets its app's own limit.
        self.engine = _engine(max_concurrency, MAX_MEMORY_LIMIT)
        # The instance pool has max_concurrency slots; beyond that, instantiation would fail.
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.compile_count = 0
        """How many components this runtime compiled from wasm (cache misses)."""
        self._compiled: weakref.WeakValueDictionary[str, _Compiled] = (
            weakref.WeakValueDictionary())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=_tick, args=(weakref.ref(self.engine), self._stop),
                         name="faasops-epoch", daemon=True).start()

    def close(self) -> None:
        """Stop the epoch ticker; loaded apps must not be used afterwards."""
        self._stop.set()

    def load(self, wasm_path: Path, *, variables: Mapping[str, str] | None = None,
             env: Mapping[str, str] | None = None,
             kv_path: Path | None = None, kv_namespace: str = "",
             key_value_stores: Sequence[str] = (DEFAULT_STORE,),
             timeout_s: float | None = None, memory_limit: int | None = None,
             allowed_outbound_hosts: Sequence[str] = (),
             sqlite_databases: Sequence[str] = (), sqlite_dir: Path | None = None,
             files: Mapping[str, bytes | Path] | None = None) -> "LoadedApp":
        """Prepare ``wasm_path`` for serving.

        ``variables`` are the app's Spin variables; ``env`` the component's environment
        variables (what Spin takes from the locked app's component ``environment``); ``kv_path`` is the SQLite file backing the
        key-value stores ``key_value_stores`` (Spin's labels the component may open; a label not
        listed, or no ``kv_path``, is ``access-denied`` as in Spin), and ``kv_namespace`` keeps
        this app's keys apart from other apps' in that file.
        ``timeout_s`` and ``memory_limit`` (bytes) override the runtime's limits for this app.
        ``allowed_outbound_hosts`` are the Spin patterns outbound HTTP may reach (none: every
        outbound request is denied, as in Spin).
        ``sqlite_databases`` are the labels the component may open (Spin's ``sqlite_databases``),
        each the file ``<sqlite_dir>/<label>.db``; without ``sqlite_dir`` every open is denied.
        ``files`` (guest path relative to ``/`` → content or host file) are mounted read-only
        at ``/``.
        """
        try:
            allowed_hosts = AllowedHosts.parse(tuple(allowed_outbound_hosts))
        except MalformedAllowedHost as exc:
            raise ComponentLoadError(f"{wasm_path}: {exc}") from None
        wasm = Path(wasm_path).read_bytes()
        digest = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            compiled = self._compiled.get(digest)
            from_cache = True
            fresh = compiled is None
            if compiled is None:
                component, from_cache = self._component(wasm, digest, Path(wasm_path))
                compiled = self._prepare(component, wasm_path)
                self._compiled[digest] = compiled
        if fresh:
            self._warm(compiled)
        kv = {label: KeyValueDatabase(kv_path, store_namespace(kv_namespace, label))
              for label in dict.fromkeys(key_value_stores)} if kv_path is not None else {}
        app = LoadedApp(self, compiled, Path(wasm_path), digest, from_cache,
                        dict(variables or {}), kv, sorted((env or {}).items()))
        app.timeout_s = timeout_s or self.timeout_s
        app.memory_limit = min(memory_limit or self.memory_limit, MAX_MEMORY_LIMIT)
        app.allowed_hosts = allowed_hosts
        if sqlite_databases and sqlite_dir is not None:
            app.sqlite = SqliteDatabases(sqlite_databases, sqlite_dir)
        app.files = MountedFiles(files or {})
        return app

    def cache_path(self, digest: str) -> Path:
        """Where the compiled artifact of the wasm with sha256 ``digest`` is cached."""
        return cache_path(self.cache_dir, digest)

    def _component(self, wasm: bytes, digest: str, wasm_path: Path) -> tuple[wc.Component, bool]:
        cached = self.cache_path(digest)
        if cached.is_file():
            try:
                return wc.Component.deserialize_file(self.engine, str(cached)), True
            except wasmtime.WasmtimeError:
                pass  # stale or foreign artifact (other CPU features…): compile again
        component = _compile_into(self.engine, wasm, wasm_path, cached)
        self.compile_count += 1
        return component, False

    def _warm(self, compiled: _Compiled) -> None:
        """Instantiate the component once, without a request: wasmtime builds the component's
        initial memory image (CPython's pre-initialised heap, tens of MB) at its first
        instantiation, which would otherwise slow the first request down (by ~30–50 ms)."""
        if not self._slots.acquire(timeout=self.queue_wait_s):
            return  # every slot serves requests: the first one pays instead
        store = wasmtime.Store(self.engine)
        try:
            store.set_limits(memory_size=self.memory_limit)
            store.set_epoch_deadline(math.ceil(self.timeout_s / EPOCH_TICK_S) + 1)
            compiled.linker.instantiate(store, compiled.component)
        except wasmtime.WasmtimeError:
            pass  # the first request meets the same failure and reports it
        finally:
            store.close()
            self._slots.release()

    def _prepare(self, component: wc.Component, wasm_path: Path) -> _Compiled:
        exports = component.type.exports(self.engine)
        handler = next((name for name in exports if name.startswith(HANDLER_INTERFACE + ".")), None)
        handler_index = component.get_export_index(handler) if handler else None
        handle_index = (component.get_export_index("handle", handler_index)
                        if handler_index else None)
        if handle_index is None:
            raise ComponentLoadError(
                f"{wasm_path} does not export {HANDLER_INTERFACE}.x handle: not a Spin HTTP "
                f"component (exports: {', '.join(exports) or 'none'})")
        linker, report = link(self.engine, component)
        return _Compiled(component, linker, handle_index, report.unsupported)


class LoadedApp:
    """A component ready to serve requests; :meth:`handle` may be called from many threads."""

    def __init__(self, runtime: ComponentRuntime, compiled: _Compiled, wasm_path: Path,
                 sha256: str, compiled_from_cache: bool, variables: dict[str, str],
                 key_value: dict[str, KeyValueDatabase], environment: list[tuple[str, str]] | None = None):
        self.wasm_path = wasm_path
        self.sha256 = sha256
        self.compiled_from_cache = compiled_from_cache
        """False when loading this app compiled the wasm (no cached artifact was usable)."""
        self.unsupported_imports = compiled.unsupported_imports
        """Imported functions without a host implementation: calling one returns the error
        Spin gives a component not allowed to use it, or fails the request where the interface
        has no error result (see :mod:`faasops.runtime.unsupported`)."""
        self._runtime = runtime
        self._compiled = compiled
        self._variables = variables
        self._key_value = key_value
        self._environment = environment or []
        self.timeout_s = runtime.timeout_s
        """Wall-clock limit of one request, in seconds."""
        self.memory_limit = runtime.memory_limit
        """Bytes one instance's linear memory may grow to."""
        self.allowed_hosts = AllowedHosts()
        """Where outbound HTTP may go (Spin's ``allowed_outbound_hosts``); empty: nowhere."""
        self.sqlite: SqliteDatabases | None = None
        """The SQLite databases the component may open; None: none."""
        self.files = MountedFiles({})
        """The component's files, mounted read-only at ``/``."""

    def handle(self, request: HttpRequest, sink: ResponseSink | None = None) -> HttpResponse:
        """Run ``request`` through a fresh instance of the component and return its response.

        Raises :class:`CapacityExceeded` when no instance slot frees up within the runtime's
        queue wait. A guest that runs out of time or memory gets a 500 naming the limit.

        With a ``sink``, the response is offered to it as soon as the guest sets it and, once
        the sink took the head, every body write goes to it as the guest makes it; the result
        is then ``streamed`` (its ``incomplete`` says whether the body ended properly)."""
        runtime = self._runtime
        compiled = self._compiled
        timeout_s = self.timeout_s
        trap: str | None = None
        started = time.perf_counter()
        cpu_started = time.thread_time()
        try:
            guest_request = incoming_request(request)
        except NotUtf8Header as exc:
            # Spin's trigger fails such a request before any guest runs.
            reason = f"{exc}: Spin refuses the request before the function runs"
            return HttpResponse(500, [("content-type", "text/plain; charset=utf-8")],
                                (reason + "\n").encode("utf-8"), error=reason)
        if not runtime._slots.acquire(timeout=runtime.queue_wait_s):
            raise CapacityExceeded(
                f"all instance slots stayed busy for {runtime.queue_wait_s:g} s")
        state = RequestState(variables=self._variables, environment=self._environment,
                             key_value=self._key_value,
                             deadline=time.monotonic() + timeout_s,
                             allowed_hosts=self.allowed_hosts, sqlite=self.sqlite,
                             files=self.files, sink=sink)
        set_current_request(state)
        store = wasmtime.Store(runtime.engine)
        try:
            # A failed memory.grow is the guest's MemoryError: the host stays within its budget.
            store.set_limits(memory_size=self.memory_limit)
            store.set_epoch_deadline(math.ceil(timeout_s / EPOCH_TICK_S) + 1)
            instance = compiled.linker.instantiate(store, compiled.component)
            handle = instance.get_func(store, compiled.handle_index)
            assert handle is not None
            request_rep = state.add_resource(guest_request)
            outparam_rep = state.add_resource(ResponseOutparam())
            handle(store,
                   wc.ResourceHost.own(request_rep, IncomingRequest.type_id),
                   wc.ResourceHost.own(outparam_rep, ResponseOutparam.type_id))
            handle.post_return(store)
        except wasmtime.WasmtimeError as exc:
            trap = str(exc)
        finally:
            set_current_request(None)
            store.close()
            runtime._slots.release()
        return _response(state, trap, timeout_s, self.memory_limit,
                         time.perf_counter() - started, time.thread_time() - cpu_started)


_TRACEBACK = "Traceback (most recent call last):"


def format_bytes(size: int) -> str:
    """``268435456`` → ``256 MiB`` (exact binary units where they fit)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


def _out_of_memory(trap: str | None, stderr: str) -> bool:
    """Whether a failed request ran out of linear memory: CPython turns a refused
    ``memory.grow`` into MemoryError, or aborts with "out of memory" when it can't even raise."""
    text = (trap or "") + stderr
    return "MemoryError" in stderr or "out of memory" in text.lower()


# componentize-py's runtime panics (then traps) when the guest breaks the bindings' contract;
# Rust prints "thread '…' panicked at FILE:LINE:COL:" and the message on the next line.
_PANIC = re.compile(r"^thread '[^']*' panicked at [^\n]*:\n(?P<message>[^\n]+)", re.MULTILINE)


def _crash_reason(trap: str, stderr: str) -> str:
    """One line saying why the guest trapped: the panic message when there is one (the wasm
    backtrace says nothing to a Python author and stays in the logs), else the trap itself."""
    panic = _PANIC.search(stderr)
    if panic is not None:
        message = panic["message"].strip()
        if "blocking-write-and-flush" in trap and "to: \"PyList\"" in message:
            return ("the response body is not bytes (spin-sdk 3.4.1 writes the body as bytes: "
                    "return Response(status, headers, text.encode()))")
        return f"panicked: {message[:300]}"
    causes = [line.strip() for line in trap.strip().splitlines() if line.strip()]
    return causes[-1][:300] if causes else "trap"


def _failure(state: RequestState, trap: str, timeout_s: float, memory_limit: int,
             stderr: str) -> tuple[str, str, str | None]:
    """Why a trapped guest failed: (reason for the client, error for the logs, the limit it
    crossed if any)."""
    if state.failure is not None:
        return state.failure, trap, None
    if "interrupt" in trap:
        reason = f"request exceeded the time limit of {timeout_s:g} s"
        return reason, f"{reason}\n{trap}", reason
    if _out_of_memory(trap, stderr):
        reason = f"request exceeded the memory limit of {format_bytes(memory_limit)}"
        return reason, f"{reason}\n{trap}", reason
    return "guest crashed: " + _crash_reason(trap, stderr), trap, None


def _response(state: RequestState, trap: str | None, timeout_s: float, memory_limit: int,
              duration: float, cpu: float) -> HttpResponse:
    stdout = state.stdout.decode("utf-8", "replace")
    stderr = state.stderr.decode("utf-8", "replace")

    def failed(reason: str, error: str, limit: str | None = None) -> HttpResponse:
        return HttpResponse(500, [("content-type", "text/plain; charset=utf-8")],
                            (reason + "\n").encode("utf-8"), stdout, stderr, duration, cpu, error,
                            limit)

    memory_reason = f"request exceeded the memory limit of {format_bytes(memory_limit)}"
    if state.streamed:
        return _streamed_response(state, trap, timeout_s, memory_limit, stdout, stderr,
                                  duration, cpu)
    if trap is not None:
        return failed(*_failure(state, trap, timeout_s, memory_limit, stderr))
    if state.response is None:
        reason = state.response_error or "guest returned without sending a response"
        return failed(reason, reason)
    response = state.response
    headers = [(name, value.decode("latin-1")) for name, value in response.headers.entries]
    body = bytes(response.body.data) if response.body is not None else b""
    error = _handler_traceback(response.status, stderr)
    if error is not None and _out_of_memory(None, error):
        return failed(memory_reason, f"{memory_reason}\n{error}", memory_reason)
    return HttpResponse(response.status, headers, body, stdout, stderr, duration, cpu, error)


def _handler_traceback(status: int, stderr: str) -> str | None:
    """The handler's traceback when the SDK caught its exception, printed it and answered 500."""
    if status >= 500 and _TRACEBACK in stderr:
        return stderr[stderr.rindex(_TRACEBACK):]
    return None


def _streamed_response(state: RequestState, trap: str | None, timeout_s: float,
                       memory_limit: int, stdout: str, stderr: str, duration: float,
                       cpu: float) -> HttpResponse:
    """The result of a request whose head (and maybe part of its body) already went out: the
    status the client got, and whether the body ended properly."""
    response = state.response
    headers = [(name, value.decode("latin-1")) for name, value in response.headers.entries]
    limit = None
    if state.stream_failure is not None:
        # The client stopped taking the body; a guest trapping on the failed write is the echo.
        incomplete: str | None = state.stream_failure
        error: str | None = incomplete
    elif trap is not None:
        incomplete, error, limit = _failure(state, trap, timeout_s, memory_limit, stderr)
        if not error.startswith(incomplete):
            # The client only saw a cut connection: the logs say why before the trap.
            error = f"{incomplete}\n{error}"
    elif response.body is not None and not response.body.finished:
        # wasi-http: a body dropped without outgoing-body.finish is aborted, not complete.
        incomplete = error = "guest returned without finishing the response body (outgoing-body.finish)"
    else:
        incomplete, error = None, _handler_traceback(response.status, stderr)
    return HttpResponse(response.status, headers, b"", stdout, stderr, duration, cpu, error,
                        limit, streamed=True, incomplete=incomplete)
