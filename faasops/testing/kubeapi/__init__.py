"""A Kubernetes API server emulator for tests and benchmarks (see ``server.KubeEmulator``).

The official ``kubernetes`` python client and real ``kubectl`` work against it unmodified:
discovery (legacy and aggregated), OpenAPI v3, CRUD with real status codes, server-side apply
with managedFields and conflicts, label/field selectors, watch, status subresources, the
service proxy, plus test-only endpoints under ``/emulator/v1``.
"""

from .server import KubeEmulator

__all__ = ["KubeEmulator", "main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m faasops.testing.kubeapi --port N [--token T] [--kubeconfig PATH]``."""
    from .__main__ import main as run

    return run(argv)
