"""The namespace controller's part of a namespace's deletion: on a real cluster a deleted
namespace stays ``Terminating`` (``status.phase``, ``metadata.deletionTimestamp``) while the
controller deletes its contents and then removes the ``kubernetes`` finalizer; only then is it
gone. Meanwhile the NamespaceLifecycle admission plugin refuses new objects in it (403,
``NamespaceTerminating``) and a second DELETE answers 409.

:class:`NamespaceTerminator` purges each terminating namespace ``delay`` seconds after its
DELETE, on one worker thread (as :class:`~.operators.SpinOperator` reconciles SpinApps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .scheduled import ScheduledWork

if TYPE_CHECKING:
    from .cluster import Cluster


class NamespaceTerminator:
    """Purges terminating namespaces when their time is up."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._work: ScheduledWork[tuple[str, str]] = ScheduledWork(
            lambda due: cluster.purge_namespace(*due), "kube-emulator-namespaces")

    def terminating(self, namespace: str, uid: str, delay: float) -> None:
        """Schedule the purge of ``namespace`` (the one with ``uid``) in ``delay`` seconds."""
        self._work.schedule((namespace, uid), delay)

    def clear(self) -> None:
        """Forget every scheduled purge (the cluster was reset)."""
        self._work.clear()

    def stop(self) -> None:
        """Drop what is scheduled and end the worker (a later DELETE starts a new one)."""
        self._work.stop()
