"""Host side of the component imports: the registry of Python implementations and the linker.

Every host function goes through one ctypes trampoline (instead of wasmtime-py's generic
``LinkerInstance.add_func``) so that

* arguments and results use per-function :class:`~faasops.runtime.values.Codec` objects with a
  fast path for byte lists;
* a failing host function never leaks through wasmtime-py's process-global "last exception"
  slot (not thread-safe): the failure is stored on the request's :class:`RequestState` and turned
  into a trap that ends only that request;
* an import the runtime does not implement still links: as a function returning Spin's "not
  allowed" error where the interface has one (:mod:`faasops.runtime.unsupported`), else as one
  that fails the request with ``function called unsupported host API <interface> (<function>)``.

Host functions find their request through a thread-local: a guest runs on the thread that called
it, so every host call made by one request happens on that request's thread.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from wasmtime import Engine, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime import component as wc

from faasops.runtime.values import Codec, codec_for

HostImpl = Callable[..., Any]
"""A host function ``impl(state, *args)``: the request's :class:`RequestState`, then the lifted
arguments; it returns the Python shape (see :mod:`faasops.runtime.values`) of the WIT result."""


WitResult = tuple[str, Any]
"""A WIT ``result`` as host functions return it: ``("ok", value)`` or ``("err", value)``."""


class HostTrap(Exception):
    """Raised by a host function to abort the guest; the message becomes the request's error."""


# Resources that WIT re-exports under another name (``type headers = fields``) must get the same
# host type everywhere, or the linker's type check rejects the component.
_RESOURCE_ALIASES = {"headers": "fields", "trailers": "fields", "io-error": "error"}
_resource_ids: dict[str, int] = {}
_resource_ids_lock = threading.Lock()


def resource_type_id(name: str) -> int:
    """Stable host type id of the WIT resource called ``name`` (aliases share their target's)."""
    name = _RESOURCE_ALIASES.get(name, name)
    with _resource_ids_lock:
        return _resource_ids.setdefault(name, len(_resource_ids) + 1)


class Resource:
    """Base of host objects the guest holds as resource handles.

    Subclasses set ``resource`` to the WIT resource name; returning an instance from a host
    function whose WIT result is ``own<that-resource>`` hands the guest a new handle to it.
    """

    resource: ClassVar[str] = ""
    type_id: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.resource:
            cls.type_id = resource_type_id(cls.resource)


@dataclass
class RequestState:
    """Everything one request's host calls share: handles, captured output, the response."""

    variables: dict[str, str]
    environment: list[tuple[str, str]] = field(default_factory=list)  # the component's env
    key_value: Any = None  # label → faasops.runtime.spin.KeyValueDatabase; none: every store denied
    sqlite: Any = None  # faasops.runtime.sqlite.SqliteDatabases | None: no database allowed
    files: Any = None  # faasops.runtime.filesystem.MountedFiles | None: no preopened directory
    deadline: float = float("inf")  # time.monotonic() value after which blocking calls give up
    allowed_hosts: Any = None  # faasops.runtime.outbound_hosts.AllowedHosts | None: none allowed
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    response: Any = None  # faasops.runtime.wasi_http.OutgoingResponse once the guest set it
    sink: Any = None  # faasops.runtime.messages.ResponseSink | None: stream the response there
    streamed: bool = False  # the sink took the head: the body goes to it as it is written
    stream_failure: str | None = None  # why the sink stopped taking the body
    response_error: str | None = None  # the guest answered with an error-code instead
    failure: str | None = None  # first host-side failure; it is why the guest trapped
    resources: dict[int, Any] = field(default_factory=dict)
    _next_rep: int = 1

    def note(self, message: str) -> None:
        """Log a host-side event of this request (a denied or unsupported host call) with the
        guest's stderr, where ``faasops logs`` and the server's log show it."""
        self.stderr += f"[faasops] {message}\n".encode("utf-8", "replace")

    def add_resource(self, obj: Any) -> int:
        """Give ``obj`` a handle number (a "rep") for this request."""
        rep = self._next_rep
        self._next_rep += 1
        self.resources[rep] = obj
        return rep

    def resource(self, rep: int) -> Any:
        """The host object behind handle ``rep``."""
        try:
            return self.resources[rep]
        except KeyError:
            raise HostTrap(f"guest used unknown or dropped resource handle {rep}") from None

    def drop(self, rep: int) -> None:
        """The guest dropped its handle; forget the object."""
        self.resources.pop(rep, None)


_current = threading.local()


def current_request() -> RequestState | None:
    """The request state of the guest running on this thread, if any."""
    return getattr(_current, "state", None)


def set_current_request(state: RequestState | None) -> None:
    """Bind (or unbind, with None) the request state of the guest that runs on this thread."""
    _current.state = state


# -- registry --------------------------------------------------------------------------------

def interface_key(import_name: str) -> str:
    """Version-insensitive key of an interface import, following semver compatibility.

    ``wasi:io/streams@0.2.3`` → ``wasi:io/streams@0.2``; ``fermyon:spin/key-value@2.0.0`` →
    ``fermyon:spin/key-value@2``; a pre-release (``…@0.2.0-draft-2024-09-27``) is kept whole
    because drafts promise no compatibility.
    """
    name, _, version = import_name.partition("@")
    if not version or "-" in version:
        return import_name
    parts = version.split(".")
    keep = 2 if parts[0] == "0" else 1
    return f"{name}@{'.'.join(parts[:keep])}"


class HostApi:
    """Implementations of host functions, keyed by interface and function name."""

    def __init__(self) -> None:
        self._impls: dict[str, dict[str, HostImpl]] = {}

    def func(self, interface: str, name: str) -> Callable[[HostImpl], HostImpl]:
        """Decorator registering ``impl`` as ``interface#name`` (interface as in interface_key)."""
        def register(impl: HostImpl) -> HostImpl:
            self._impls.setdefault(interface, {})[name] = impl
            return impl
        return register

    def lookup(self, import_name: str, name: str) -> HostImpl | None:
        """The implementation for function ``name`` of interface import ``import_name``."""
        return self._impls.get(interface_key(import_name), {}).get(name)


HOST_API = HostApi()
"""The registry the wasi, wasi-http and Spin modules add their implementations to."""


# -- trampoline ------------------------------------------------------------------------------

@dataclass
class _Binding:
    qualname: str
    impl: HostImpl | None  # None: unsupported import
    codec: Codec | None = None


_bindings: dict[int, _Binding] = {}
_binding_ids = itertools.count(1)


def _error_pointer(message: str) -> int:
    return ctypes.cast(ffi.wasmtime_error_new(message.encode("utf-8")), ctypes.c_void_p).value or 0


@ffi.wasmtime_component_func_callback_t  # type: ignore[misc]
def _call_host(data, ctx, ty, args, nargs, results, nresults):  # type: ignore[no-untyped-def]
    binding = _bindings.get(data) or _Binding(f"host function #{data}", None)
    state = current_request()
    try:
        if binding.impl is None:
            raise HostTrap(f"function called unsupported host API {binding.qualname}")
        if state is None:
            raise HostTrap(f"{binding.qualname} called outside a request")
        codec = binding.codec
        if codec is None:
            # The function type is the same on every call; read it once.
            codec = binding.codec = codec_for(wc.FuncType._from_ptr(ty, owner=binding))
        lifts = codec.params
        out = binding.impl(state, *[lifts[i](args[i], state, ctx) for i in range(nargs)])
        if codec.result is not None:
            codec.result(out, results[0], state, ctx)
        return 0
    except HostTrap as exc:
        message = str(exc)
    except BaseException:  # a host bug must fail the request, never unwind through wasm
        message = f"host function {binding.qualname} failed:\n{traceback.format_exc()}"
    if state is not None and state.failure is None:
        state.failure = message
    return _error_pointer(message)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _forget_binding(data):  # type: ignore[no-untyped-def]
    if _bindings is not None:  # None during interpreter shutdown
        _bindings.pop(data, None)


def _drop_resource(_store: Any, rep: int) -> None:
    state = current_request()
    if state is not None:
        state.drop(rep)


def _add_func(instance: wc.LinkerInstance, qualname: str, name: str, impl: HostImpl | None) -> None:
    binding_id = next(_binding_ids)
    _bindings[binding_id] = _Binding(qualname, impl)
    encoded = name.encode("utf-8")
    err = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded),
        _call_host, binding_id, _forget_binding)
    if err:
        raise WasmtimeError._from_ptr(err)


@dataclass(frozen=True)
class LinkReport:
    """What linking found: which imported functions have no host implementation."""

    unsupported: tuple[str, ...]


def link(engine: Engine, component: wc.Component,
         api: HostApi = HOST_API) -> tuple[wc.Linker, LinkReport]:
    """Build a linker defining every import of ``component``.

    Imports with an implementation in ``api`` get it; every other function returns the error
    Spin gives a component not allowed to use it where its interface has one (see
    :mod:`faasops.runtime.unsupported`), else fails the request naming the interface. Every
    resource gets a host type, so any component of the Spin HTTP world instantiates.
    """
    # unsupported builds on this module's registry; importing it at the top would be circular.
    from faasops.runtime.unsupported import denial

    linker = wc.Linker(engine)
    unsupported: list[str] = []
    with linker.root() as root:
        for import_name, extern in component.type.imports(engine).items():
            ty = extern.ty
            if isinstance(ty, wc.ComponentInstanceType):
                with root.add_instance(import_name) as instance:
                    for name, item in ty.exports(engine).items():
                        item_ty = item.ty
                        if isinstance(item_ty, wc.ResourceType):
                            instance.add_resource(
                                name, wc.ResourceType.host(resource_type_id(name)), _drop_resource)
                        elif isinstance(item_ty, wc.FuncType):
                            impl = api.lookup(import_name, name)
                            if impl is None:
                                unsupported.append(f"{import_name}#{name}")
                                impl = denial(import_name, name, item_ty)
                            _add_func(instance, f"{import_name} ({name})", name, impl)
            elif isinstance(ty, wc.FuncType):
                _add_func(root, import_name, import_name, None)
                unsupported.append(import_name)
    return linker, LinkReport(tuple(unsupported))
