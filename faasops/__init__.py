"""faasops: GitOps for Spin (WebAssembly) functions on Kubernetes."""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    """``__version__`` and ``hookimpl`` (the one import a plugin needs), resolved on first use:
    importlib.metadata and pluggy cost every ``faasops`` start-up that needs neither
    (``faasops --help``)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("faasops")
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0.0.0+unknown"
    elif name == "hookimpl":
        from faasops.hookspecs import hookimpl as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
