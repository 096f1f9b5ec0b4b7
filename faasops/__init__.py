"""faasops: GitOps for Spin (WebAssembly) functions on Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("faasops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from faasops.hookspecs import hookimpl  # noqa: E402  (the one import a plugin needs)

__all__ = ["__version__", "hookimpl"]
