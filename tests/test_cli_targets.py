"""Bare function ids on the command line: `WS.FN` (the function_id label, as Loki and Grafana
show it) means the same as `WS/FN` wherever a target is accepted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cli_support import copy_example, run_faasops
from faasops.invocation_log import InvocationLog
from faasops.names import canonical_address, split_address
from faasops.runtime.messages import InvocationRecord


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example("hello", tmp_path)


def faasops(project: Path, *args: str) -> tuple[int, str, str]:
    result = run_faasops("-C", str(project), *args)
    return result.code, result.out, result.err


@pytest.mark.parametrize(("text", "expected"), [
    ("demo", ("demo", None)), ("demo/hello", ("demo", "hello")), ("demo.hello", ("demo", "hello")),
    ("demo/", ("demo", None)), ("demo.", ("demo", None)),
])
def test_targets_split_on_a_slash_or_the_function_ids_dot(text: str, expected: tuple[str, str | None]) -> None:
    assert split_address(text) == expected
    assert canonical_address(text) == (f"{expected[0]}/{expected[1]}" if expected[1] else expected[0])


def test_logs_of_a_bare_function_id_are_the_logs_of_ws_slash_fn(project: Path) -> None:
    log = InvocationLog(project / ".faasops" / "invocations.db")
    for i in range(3):
        log.record(InvocationRecord(time=time.time() - 3 + i, workspace="demo", function="hello", method="GET",
                                    path=f"/{i}", status=200, duration_s=0.01, cpu_s=0.0, stdout=f"call {i}\n",
                                    stderr="", error=None))
    log.close()

    dotted = faasops(project, "logs", "demo.hello", "--format", "json")
    slashed = faasops(project, "logs", "demo/hello", "--format", "json")

    assert dotted == slashed
    assert dotted[0] == 0
    assert [json.loads(line)["function_id"] for line in dotted[1].splitlines()] == ["demo.hello"] * 3


@pytest.mark.parametrize("option", ["-t", "--exclude"])
def test_plan_targets_and_excludes_take_bare_function_ids(project: Path, option: str) -> None:
    dotted = faasops(project, "plan", option, "demo.hello", "--format", "json")
    slashed = faasops(project, "plan", option, "demo/hello", "--format", "json")
    assert dotted[0] == slashed[0] == 0, dotted
    plan_dotted, plan_slashed = json.loads(dotted[1]), json.loads(slashed[1])
    assert plan_dotted["options"]["selection"] == plan_slashed["options"]["selection"]
    assert plan_dotted["options"]["selection"]["targets" if option == "-t" else "excludes"] == ["demo/hello"]
    assert plan_dotted["changes"] == plan_slashed["changes"]
    addresses = {c["address"] for c in plan_dotted["changes"]}
    assert ("demo/hello" in addresses) == (option == "-t")


def test_metrics_and_invoke_accept_bare_function_ids(project: Path) -> None:
    code, out, _ = faasops(project, "metrics", "demo.hello", "--since", "5m", "--format", "json")
    assert code == 0 and json.loads(out)["function"] == "demo/hello"
    # Not deployed yet: the same refusal for both spellings.
    dotted, slashed = faasops(project, "invoke", "demo.hello"), faasops(project, "invoke", "demo/hello")
    assert dotted == slashed and dotted[0] == 1 and "demo/hello is not deployed" in dotted[2]


@pytest.mark.slow
def test_apply_tasks_and_invoke_with_a_bare_function_id(project: Path) -> None:
    code, out, err = faasops(project, "apply", "--auto-approve", "-t", "demo.hello")
    assert code == 0, out + err
    assert "Apply complete! 2 applied" in out  # the workspace, then its function

    code, out, err = faasops(project, "tasks", "demo.hello", "--format", "json")
    assert code == 0, err
    tasks = json.loads(out)
    assert tasks and {(t["workspace"], t["function"]) for t in tasks} == {("demo", "hello")}
    code, out, _ = faasops(project, "tasks", "demo/nobody", "--format", "json")
    assert code == 0 and json.loads(out) == []

    code, out, err = faasops(project, "invoke", "demo.hello")
    assert code == 0, err
    assert out.strip() == "Hello from Blue FaaS!"
