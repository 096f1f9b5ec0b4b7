"""Local runtime for Spin Python HTTP components, on the ``wasmtime`` package.

``ComponentRuntime(cache_dir).load(wasm)`` gives a :class:`LoadedApp` whose ``handle`` runs one
:class:`HttpRequest` in a fresh instance; :mod:`faasops.runtime.server` serves loaded apps over
HTTP at ``/<workspace>/<function>/…``.
"""

from faasops.runtime.component import CapacityExceeded, ComponentLoadError, ComponentRuntime, LoadedApp
from faasops.runtime.messages import HttpRequest, HttpResponse

__all__ = ["CapacityExceeded", "ComponentLoadError", "ComponentRuntime", "HttpRequest", "HttpResponse", "LoadedApp"]
