"""Concurrent writes through the Platform API: every one ends committed and applied, none lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api_support import HELLO_SOURCE, ApiServer, b64, faasops_json, git, wait_for_task

WRITERS = 20


@pytest.mark.slow
def test_twenty_concurrent_writes_from_different_clients_are_all_committed_and_applied(api_server: ApiServer) -> None:
    project = api_server.project
    clients = [api_server.client() for _ in range(WRITERS)]

    def create(index: int) -> httpx.Response:
        # Half of them wait for their apply, half poll their task: both paths at once.
        return clients[index].post("/api/workspaces/demo/functions", params={"wait": str(index % 2 == 0).lower()},
                                   json={"name": f"fn-{index:02d}", "code": b64(HELLO_SOURCE),
                                         "env": {"INDEX": str(index)}})

    with ThreadPoolExecutor(WRITERS) as pool:
        answers = list(pool.map(create, range(WRITERS)))

    assert [a.status_code for a in answers] == [201 if i % 2 == 0 else 202 for i in range(WRITERS)], \
        [a.text for a in answers if a.status_code >= 400]
    tasks = [wait_for_task(project, a.json()["task_id"]) for a in answers]
    assert [t["status"] for t in tasks] == ["completed"] * WRITERS, [t["message"] for t in tasks]
    names = {f"fn-{i:02d}" for i in range(WRITERS)}
    subjects = git(project, "log", "--format=%s").splitlines()
    assert sorted(subjects[:WRITERS]) == sorted(f"Create function demo/{n}" for n in names)
    assert len({a.json()["commit"] for a in answers}) == WRITERS
    manifest = (project / "faas.yaml").read_text()
    assert all(f"- name: {n}\n" in manifest for n in names)
    assert {f["name"] for f in faasops_json(project, "get", "functions")} == names
    assert git(project, "status", "--porcelain") == ""
    status = api_server.client().get("/api/status").json()
    assert status["applied"] == status["head"] and status["unapplied_commits"] == []
