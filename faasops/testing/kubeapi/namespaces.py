"""The namespace controller's part of a namespace's deletion: on a real cluster a deleted
namespace stays ``Terminating`` (``status.phase``, ``metadata.deletionTimestamp``) while the
controller deletes its contents and then removes the ``kubernetes`` finalizer; only then is it
gone. Meanwhile the NamespaceLifecycle admission plugin refuses new objects in it (403,
``NamespaceTerminating``) and a second DELETE answers 409.

:class:`NamespaceTerminator` purges each terminating namespace ``delay`` seconds after its
DELETE, on one worker thread (as :class:`~.operators.SpinOperator` reconciles SpinApps).
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cluster import Cluster


class NamespaceTerminator:
    """Purges terminating namespaces when their time is up."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._due: list[tuple[float, str, str]] = []  # heap of (when, namespace, uid)
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None

    def terminating(self, namespace: str, uid: str, delay: float) -> None:
        """Schedule the purge of ``namespace`` (the one with ``uid``) in ``delay`` seconds."""
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, namespace, uid))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="kube-emulator-namespaces", daemon=True)
                self._worker.start()
            self._changed.notify()

    def clear(self) -> None:
        """Forget every scheduled purge (the cluster was reset)."""
        with self._changed:
            self._due.clear()
            self._changed.notify()

    def stop(self) -> None:
        """Drop what is scheduled and end the worker (a later DELETE starts a new one)."""
        with self._changed:
            self._due.clear()
            worker, self._worker = self._worker, None
            self._changed.notify()
        if worker is not None and worker is not threading.current_thread():
            worker.join(5)

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._changed:
                while self._worker is me and (not self._due or self._due[0][0] > time.monotonic()):
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._worker is not me:
                    return
                _, namespace, uid = heapq.heappop(self._due)
            self.cluster.purge_namespace(namespace, uid)
