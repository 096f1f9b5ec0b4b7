"""Send SIGTERM/SIGINT to ``faasops apply``/``destroy`` at chosen steps, with a second run racing
it for the lock, and check that the lock was never free while the signalled run could write.

A test plugin (:data:`PLUGIN_SOURCE`, loaded through ``FAASOPS_PLUGINS`` like the crash sweep's)
makes the signal points deterministic: at the start of the chosen step it writes a marker file,
then holds the step until the test creates the ``go`` file (or forever, to test the abort of a
step that won't end). On every step start and finish it also checks that the state lock row is
still this process's: a step that runs after the lock was released (or taken over) is written to
the ``violations`` file, which the tests assert empty.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml
from crash_sweep_support import PROJECT, WORKSPACE, state_rows

PLUGIN_MODULE = "faasops_signal_points"
SIGNAL_ENV = "FAASOPS_SIGNAL_AT"

PLUGIN_SOURCE = textwrap.dedent('''\
    """Test plugin: hold the apply step named by $FAASOPS_SIGNAL_AT, a JSON object
    {"address", "step" (or "pre-apply"), "marker", "go", "violations", "delay"}: write the marker
    when it starts, then wait until the go file exists. Every step also sleeps "delay" seconds
    and checks that this process still holds the state lock."""

    import json
    import os
    import sqlite3
    import threading
    import time

    from faasops.hookspecs import hookimpl

    _SPEC = json.loads(os.environ.get("FAASOPS_SIGNAL_AT") or "null") or {}
    _LOCK = threading.Lock()


    def _check_lock(project, what):
        db = sqlite3.connect(project.state_dir / "state.db", timeout=30)
        try:
            row = db.execute("SELECT pid FROM locks WHERE name = 'state'").fetchone()
        finally:
            db.close()
        if row is None or row[0] != os.getpid():
            with _LOCK, open(_SPEC["violations"], "a") as out:
                out.write(f"{what} while the lock is {row}\\n")


    def _hold(reason):
        with open(_SPEC["marker"] + ".part", "w") as out:
            json.dump({"reason": reason, "pid": os.getpid()}, out)
        os.replace(_SPEC["marker"] + ".part", _SPEC["marker"])
        while not os.path.exists(_SPEC["go"]):
            time.sleep(0.02)


    @hookimpl
    def faasops_pre_apply(plan, project):
        if _SPEC.get("step") == "pre-apply":
            _hold("pre-apply")


    @hookimpl
    def faasops_step_started(project, address, step):
        if not _SPEC:
            return
        _check_lock(project, f"{address} {step} started")
        time.sleep(float(_SPEC.get("delay") or 0))
        if _SPEC.get("address") == address and _SPEC.get("step") == step:
            _hold(f"{address} {step}")


    @hookimpl
    def faasops_step_finished(project, address, step, status, message):
        if _SPEC:
            _check_lock(project, f"{address} {step} {status}")
''')


def write_plugin(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    return directory


def make_project(root: Path, count: int, greeting: str, unique: str | None = None) -> Path:
    """``count`` functions ``f00``… in workspace ``demo``, all with the hello example's handler as
    one shared source directory (one cached build serves them all), and env GREETING=greeting.
    ``unique`` adds a function with a source of its own (a real componentize-py build)."""
    from crash_sweep_support import REPO

    root.mkdir(parents=True, exist_ok=True)
    handler = (REPO / "examples" / "hello" / "functions" / "hello" / "app.py").read_text()
    (root / "functions" / "shared").mkdir(parents=True, exist_ok=True)
    (root / "functions" / "shared" / "app.py").write_text(handler)
    entries: list[dict[str, Any]] = [
        {"name": f"f{i:02d}", "source": "functions/shared", "env": {"GREETING": greeting}} for i in range(count)
    ]
    if unique:
        (root / "functions" / unique).mkdir(parents=True, exist_ok=True)
        (root / "functions" / unique / "app.py").write_text(f"# build {unique} {time.time_ns()}\n" + handler)
        entries.append({"name": unique, "source": f"functions/{unique}", "env": {"GREETING": greeting}})
    manifest = {"apiVersion": "faasops/v1", "project": PROJECT, "backend": "local",
                "workspaces": [{"name": WORKSPACE, "functions": entries}]}
    (root / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def set_greeting(project: Path, greeting: str) -> None:
    manifest = yaml.safe_load((project / "faas.yaml").read_text())
    for function in manifest["workspaces"][0]["functions"]:
        function["env"]["GREETING"] = greeting
    (project / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


class SignalPoint:
    """Files of one signal point under ``workdir``: the marker, the go file, the violations."""

    def __init__(self, workdir: Path, address: str, step: str, delay: float = 0.0):
        self.marker = workdir / "signal-marker.json"
        self.go = workdir / "signal-go"
        self.violations = workdir / "signal-violations.txt"
        self.spec = {"address": address, "step": step, "marker": str(self.marker), "go": str(self.go),
                     "violations": str(self.violations), "delay": delay}
        for path in (self.marker, self.go, self.violations):
            path.unlink(missing_ok=True)

    def env(self, plugin_dir: Path) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(plugin_dir), os.environ.get("PYTHONPATH", "")) if p)
        return {"FAASOPS_PLUGINS": PLUGIN_MODULE, "PYTHONPATH": path, SIGNAL_ENV: json.dumps(self.spec)}

    def wait_reached(self, run: "Running", timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if run.poll() is not None:
                raise AssertionError(f"the run ended (exit {run.poll()}) before reaching {self.spec}:\n"
                                     + run.output()[-3000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.spec} not reached within {timeout:g} s")
            time.sleep(0.02)

    def release(self) -> None:
        self.go.write_text("go")

    def violations_found(self) -> str:
        return self.violations.read_text() if self.violations.exists() else ""


class Running:
    """The real CLI as a child process, its output going to a file the test can watch."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None):
        self.log = project.parent / f"run-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            # SIGINT and SIGTERM at their defaults: pytest may run with SIGINT ignored, which a
            # child would inherit.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "faasops.cli", "-C", str(project), *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                env={**os.environ, **(env or {})}, preexec_fn=_default_signals,
            )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def poll(self) -> int | None:
        return self.process.poll()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_output(self, text: str, timeout: float = 120) -> None:
        """Until ``text`` is in the output (e.g. the handler's answer to a first signal: a
        second one sent before it could be merged into the first by the interpreter)."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the output:\n{self.output()[-3000:]}")
            time.sleep(0.02)

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        self.process.wait(timeout=timeout)
        return self.process.returncode, self.output()

    def stop(self) -> None:
        """Teardown: a run still going is killed (it was started by the test)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def start_faasops(project: Path, *args: str, env: dict[str, str] | None = None) -> Running:
    return Running(project, *args, env=env)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def finish(run: Running, timeout: float = 300) -> tuple[int, str]:
    return run.finish(timeout)


def stop(run: Running) -> None:
    run.stop()


def child_pids(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(pid):
                found.append(int(entry.name))
    return found


def recorded_greetings(project: Path) -> dict[str, str]:
    """Function name → GREETING of its state record."""
    rows = state_rows(project, "SELECT name, spec FROM functions WHERE workspace = ?", (WORKSPACE,))
    return {name: json.loads(spec)["env"]["GREETING"] for name, spec in rows}


def open_tasks(project: Path) -> list[tuple[Any, ...]]:
    return state_rows(project, "SELECT workspace, function, kind, status FROM tasks WHERE status IN ('running', 'pending')")
