"""Crash safety of the Platform API's write path: a SIGKILL between a write's commit and the end
of its apply loses nothing, and the restarted API applies that commit exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from api_support import HELLO_SOURCE, ApiServer, b64, faasops_json, git


def _recovered(api: httpx.Client) -> dict[str, Any]:
    """``GET /api/status`` once the start-up recovery (on the writer thread) has finished."""
    deadline = time.monotonic() + 600
    while True:
        status = api.get("/api/status").json()
        if status["recovery"]["status"] not in ("pending", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.mark.slow
def test_a_commit_whose_apply_was_killed_is_applied_once_on_restart(
        api_project: Path, tmp_path: Path, start_api: Callable[..., ApiServer]) -> None:
    # A build cache of its own: the build is real and takes seconds, so the kill lands while
    # the apply runs, after the commit.
    cold_cache = {"FAASOPS_BUILD_CACHE": str(tmp_path / "cold-build-cache")}
    server = start_api(api_project, env=cold_cache)
    answer = server.client().post("/api/workspaces/demo/functions", json={"name": "survivor", "code": b64(HELLO_SOURCE)})
    assert answer.status_code == 202, answer.text
    commit, task_id = answer.json()["commit"], answer.json()["task_id"]

    server.kill()

    assert git(api_project, "rev-parse", "HEAD").strip() == commit
    assert faasops_json(api_project, "get", "functions") == []  # killed before its apply finished
    restarted = start_api(api_project, env=cold_cache)
    api = restarted.client()
    status = _recovered(api)

    assert status["recovery"]["status"] == "completed", status
    assert status["recovery"]["commits"] == [commit] and status["recovery"]["targets"] == ["demo/survivor"]
    assert status["applied"] == status["head"] == commit and status["unapplied_commits"] == []
    assert [f["name"] for f in faasops_json(api_project, "get", "functions")] == ["survivor"]
    tasks = faasops_json(api_project, "tasks", "demo", "--limit", "1000")
    write = next(t for t in tasks if t["id"] == task_id)
    assert write["status"] == "completed" and "applied after a restart" in write["message"]
    deploys = [t for t in tasks if t["function"] == "survivor" and t["kind"] == "deploy" and t["status"] == "completed"]
    assert len(deploys) == 1  # applied once
    assert git(api_project, "log", "--format=%s").splitlines() == ["Create function demo/survivor", "initial project"]

    # Another restart finds nothing left to do.
    restarted.stop()
    again = _recovered(start_api(api_project, env=cold_cache).client())
    assert again["recovery"]["status"] == "none" and again["unapplied_commits"] == []
