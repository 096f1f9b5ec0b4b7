"""Fixtures for `faasops reconcile`: the Kubernetes API emulator with real kubectl, a local bare
git repository as the remote, and reconcilers started as real subprocesses (every one of them
killed in teardown).

No ``__init__.py`` here, as in tests/kubernetes: the directory must not shadow a package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kube_fixtures import clean_cluster, kube, kubeconfig, kubectl  # noqa: F401
from reconcile_support import DeployRepository, Reconciler


@pytest.fixture()
def repo(tmp_path: Path) -> DeployRepository:
    """A bare repository (the remote) and a clone people push from."""
    return DeployRepository.create(tmp_path / "git")


@pytest.fixture()
def start_reconciler(tmp_path: Path) -> Iterator[Callable[..., Reconciler]]:
    """``start_reconciler(*args, directory=…, env=…)``: `faasops -C directory reconcile *args`
    in the background, once it serves /healthz. Every one started is killed at teardown."""
    started: list[Reconciler] = []

    def start(*args: str, directory: Path | None = None, env: dict[str, str] | None = None) -> Reconciler:
        reconciler = Reconciler.start(directory or tmp_path / "checkout", args, tmp_path / f"reconcile-{len(started)}.log",
                                      env or {})
        started.append(reconciler)
        return reconciler

    yield start
    for reconciler in started:
        reconciler.kill()
