"""Long work as tasks: queued, run on worker threads, recorded in the state backend.

A task moves ``pending`` → ``running`` → ``completed`` | ``failed`` and every move is a
``put_task`` on the configured state backend, so ``GET /api/v1/tasks/{id}`` answers from the
state — from any replica sharing it, and after a restart. A completed task's ``message`` is its
result as a JSON object; a failed task's ``message`` is a log excerpt (the error, its first line
and its end). When the service stops, tasks still queued or running are marked failed
("interrupted"), never left open; the worker threads are daemons, so a hung build cannot keep a
stopping pod alive.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from dataclasses import replace
from typing import Any, Callable

from faasops.builder_service.wire import COMPLETED, FAILED, PENDING, RUNNING
from faasops.errors import FaasopsError
from faasops.executor import utcnow
from faasops.providers import StateBackend, Task

log = logging.getLogger(__name__)

RUN_ID = "builder-api"
INTERRUPTED = "interrupted: the builder service stopped before this task finished"

Work = Callable[[], dict[str, Any]]


def log_excerpt(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: its first line (what failed) and its end
    (where the tool's output says why)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text.splitlines()[0][: limit // 4]
    return f"{head}\n[… {len(text) - limit} characters cut …]\n{text[-(limit - len(head)):]}"


def task_result(task: Task) -> dict[str, Any] | None:
    """The result a completed task recorded, else None."""
    if task.status != COMPLETED or not task.message.startswith("{"):
        return None
    try:
        value = json.loads(task.message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class TaskRunner:
    """Runs submitted work on ``workers`` daemon threads, one task per submission."""

    def __init__(self, state: StateBackend, workers: int, log_chars: int):
        self.state = state
        self.log_chars = log_chars
        self._queue: queue.Queue[tuple[Task, Work] | None] = queue.Queue()
        self._open: dict[str, Task] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"faasops-builder-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, workspace: str, function: str | None, kind: str, work: Work) -> Task:
        """Record a ``pending`` task and queue ``work`` (returning the task's result) for it."""
        now = utcnow()
        task = Task(id=uuid.uuid4().hex, workspace=workspace, function=function, kind=kind, status=PENDING,
                    created_at=now, updated_at=now, run_id=RUN_ID)
        with self._lock:
            if self._closed:
                raise FaasopsError("the builder service is stopping")
            self.state.put_task(task)
            self._open[task.id] = task
        self._queue.put((task, work))
        return task

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            task, work = item
            running = self._move(task, RUNNING, "")
            if running is None:
                continue  # interrupted while queued
            try:
                result = work()
            except FaasopsError as exc:
                self._finish(running, FAILED, log_excerpt(str(exc), self.log_chars))
            except Exception as exc:  # a bug: the service log keeps the traceback
                log.exception("task %s (%s) failed", task.id, task.kind)
                self._finish(running, FAILED, log_excerpt(f"{type(exc).__name__}: {exc}", self.log_chars))
            else:
                self._finish(running, COMPLETED, json.dumps(result, sort_keys=True))

    def _move(self, task: Task, status: str, message: str) -> Task | None:
        with self._lock:
            if task.id not in self._open:
                return None
            moved = replace(task, status=status, updated_at=utcnow(), message=message)
            self._open[task.id] = moved
        self._put(moved)
        return moved

    def _finish(self, task: Task, status: str, message: str) -> None:
        with self._lock:
            if self._open.pop(task.id, None) is None:
                return  # already marked interrupted
        self._put(replace(task, status=status, updated_at=utcnow(), message=message))

    def _put(self, task: Task) -> None:
        try:
            self.state.put_task(task)
        except Exception:  # the state backend is down: keep the worker alive, the client times out
            log.exception("could not record task %s as %s", task.id, task.status)

    def close(self) -> None:
        """Stop taking work; mark what is queued or running as failed (interrupted)."""
        with self._lock:
            self._closed = True
            unfinished, self._open = list(self._open.values()), {}
        for task in unfinished:
            self._put(replace(task, status=FAILED, updated_at=utcnow(), message=INTERRUPTED))
        for _ in self._threads:
            self._queue.put(None)
