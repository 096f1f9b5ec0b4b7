"""Object storage with one global resourceVersion counter and a watch event log.

Stored objects are never mutated after they are written (every write stores a new dict), so a
reader may serialise an object it got from the store without holding the lock. Objects are
indexed by group/resource, then namespace, then name, so a namespaced LIST touches only that
namespace's objects.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Any, Iterator

Key = tuple[str, str]  # (group, plural)

EVENT_HISTORY = 200_000  # events kept per resource for watches that resume from a version


@dataclass(frozen=True)
class Event:
    """A committed change: ``type`` is ADDED, MODIFIED or DELETED; ``old`` is the prior object."""

    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class _EventLog:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rvs: list[int] = []
        self.oldest_rv = 0  # events at or below this version may have been dropped

    def append(self, event: Event) -> None:
        self.events.append(event)
        self.rvs.append(event.rv)
        if len(self.events) > 2 * EVENT_HISTORY:
            drop = len(self.events) - EVENT_HISTORY
            self.oldest_rv = self.rvs[drop - 1]
            del self.events[:drop]
            del self.rvs[:drop]

    def since(self, rv: int) -> list[Event]:
        return self.events[bisect.bisect_right(self.rvs, rv):]


class Store:
    """All objects of the emulated cluster."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[Key, dict[str, dict[str, dict[str, Any]]]] = {}
        self._logs: dict[Key, _EventLog] = {}
        self._rv = 0
        self.reset_count = 0  # watchers end when the store is wiped under them

    @property
    def resource_version(self) -> int:
        return self._rv

    def next_rv(self) -> int:
        with self.lock:
            self._rv += 1
            return self._rv

    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def list(self, key: Key, namespace: str | None) -> list[dict[str, Any]]:
        """Objects sorted by namespace then name (the order the real server lists in)."""
        with self.lock:
            by_namespace = self._objects.get(key, {})
            if namespace is not None:
                items = by_namespace.get(namespace, {})
                return [items[n] for n in sorted(items)]
            out: list[dict[str, Any]] = []
            for ns in sorted(by_namespace):
                items = by_namespace[ns]
                out.extend(items[n] for n in sorted(items))
            return out

    def count(self, key: Key) -> int:
        return sum(len(v) for v in self._objects.get(key, {}).values())

    def put(self, key: Key, namespace: str, name: str, obj: dict[str, Any], event_type: str,
            old: dict[str, Any] | None, rv: int) -> None:
        """Store ``obj`` (already carrying resourceVersion ``rv``) and record the event."""
        with self.lock:
            self._objects.setdefault(key, {}).setdefault(namespace, {})[name] = obj
            self._log(key).append(Event(rv, event_type, obj, old))
            self.changed.notify_all()

    def delete(self, key: Key, namespace: str, name: str, final: dict[str, Any], rv: int) -> None:
        """Remove an object; ``final`` is its last state with the deletion's resourceVersion."""
        with self.lock:
            by_namespace = self._objects.get(key, {})
            items = by_namespace.get(namespace, {})
            old = items.pop(name, None)
            if not items:
                by_namespace.pop(namespace, None)
            self._log(key).append(Event(rv, "DELETED", final, old))
            self.changed.notify_all()

    def keys(self) -> list[Key]:
        with self.lock:
            return list(self._objects)

    def namespaces_of(self, key: Key) -> list[str]:
        with self.lock:
            return list(self._objects.get(key, {}))

    def drop_resource(self, key: Key) -> None:
        """Forget a whole resource (its CRD was deleted); watchers of it are ended."""
        with self.lock:
            self._objects.pop(key, None)
            self._logs.pop(key, None)
            self.changed.notify_all()

    def wipe(self) -> None:
        with self.lock:
            self._objects.clear()
            self._logs.clear()
            self.reset_count += 1
            self.changed.notify_all()

    def _log(self, key: Key) -> _EventLog:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _EventLog()
            # A new log knows nothing before now: resuming from an older version is fine
            # because nothing of this resource changed before the log existed.
        return log

    def events_since(self, key: Key, rv: int) -> tuple[list[Event], bool]:
        """Events after ``rv``, and whether ``rv`` is too old to resume from (410 Gone)."""
        with self.lock:
            log = self._logs.get(key)
            if log is None:
                return [], False
            if rv < log.oldest_rv:
                return [], True
            return log.since(rv), False

    def iter_all(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        with self.lock:
            snapshot = [(key, obj) for key, by_ns in self._objects.items()
                        for items in by_ns.values() for obj in items.values()]
        yield from snapshot
