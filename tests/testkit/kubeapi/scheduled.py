"""Work a controller does some time after an event, as a real controller acts after its watch
fires: one worker thread takes the items in the order they fall due. Shared by
:class:`~.operators.SpinOperator` (reconcile a SpinApp) and
:class:`~.namespaces.NamespaceTerminator` (purge a terminating namespace)."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class ScheduledWork(Generic[Item]):
    """Calls ``handle(item)`` for each scheduled item once its delay is up, on one worker thread
    named ``thread_name`` (started by the first :meth:`schedule`). Items due at the same time
    are handled in the order they were scheduled."""

    def __init__(self, handle: Callable[[Item], None], thread_name: str) -> None:
        self._handle = handle
        self._thread_name = thread_name
        self._due: list[tuple[float, int, Item]] = []  # heap of (when, sequence, item)
        self._sequence = 0
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False

    def schedule(self, item: Item, delay: float) -> None:
        """Handle ``item`` in ``delay`` seconds (dropped while :meth:`stop` runs)."""
        with self._changed:
            if self._stopping:
                return
            self._sequence += 1
            heapq.heappush(self._due, (time.monotonic() + delay, self._sequence, item))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=self._thread_name, daemon=True)
                self._worker.start()
            self._changed.notify()

    def clear(self) -> None:
        """Forget everything scheduled (the worker keeps running)."""
        with self._changed:
            self._due.clear()
            self._changed.notify()

    def stop(self) -> None:
        """Drop what is scheduled and end the worker; a later :meth:`schedule` starts a new one."""
        with self._changed:
            self._stopping = True
            self._due.clear()
            worker, self._worker = self._worker, None
            self._changed.notify()
        if worker is not None and worker is not threading.current_thread():
            worker.join(5)
        with self._changed:
            self._stopping = False

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._changed:
                while self._worker is me and (not self._due or self._due[0][0] > time.monotonic()):
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._worker is not me:
                    return
                _, _, item = heapq.heappop(self._due)
            self._handle(item)
