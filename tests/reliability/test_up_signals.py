"""`faasops up` stops cleanly on SIGINT and SIGTERM, even when started as a shell script's
background job (SIGINT ignored), and never leaves `.faasops/up.json` behind."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from cli_support import run_faasops
from up_support import running_up, start_up, up_file

from testkit.process import terminate


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `faasops up &` in a script gets


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cli_support import copy_example

    project = copy_example("hello", tmp_path_factory.mktemp("up-signals"))
    result = run_faasops("-C", str(project), "apply", "--auto-approve")
    assert result.code == 0, result.output
    return project


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_started_with_sigint_ignored_stops_on_the_signal_and_removes_up_json(
        applied: Path, signum: signal.Signals) -> None:
    up = start_up(applied, "--no-apply", preexec_fn=_ignore_sigint)
    try:
        up.process.send_signal(signum)
        code = up.process.wait(timeout=30)
    finally:
        terminate(up.process)
    assert code == 0, up.log()
    assert f"Stopping ({signum.name})." in up.log()
    assert not up_file(applied).exists()
    assert "Traceback" not in up.log()


def test_invoke_after_up_stopped_runs_in_process_instead_of_calling_a_dead_server(applied: Path) -> None:
    with running_up(applied, "--no-apply") as up:
        served = run_faasops("-C", str(applied), "invoke", "demo/hello")
        assert served.out == "Hello from Blue FaaS!"
        up.process.terminate()
        up.process.wait(timeout=30)
    assert not up_file(applied).exists()
    local = run_faasops("-C", str(applied), "invoke", "demo/hello")
    assert (local.code, local.out) == (0, "Hello from Blue FaaS!")
