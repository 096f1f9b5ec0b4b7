"""Helpers the reconcile tests import: a deploy repository (bare remote + a clone to push from),
and a `faasops reconcile` subprocess with its log, /metrics and health endpoints."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from cli_support import EXAMPLES
from testkit.faultproxy import FaultProxy
from testkit.kubeapi import KubeEmulator
from testkit.kubectl import KubectlRunner

T = TypeVar("T")
DEADLINE_S = 180.0  # generous: the machine is shared; nothing here asserts on time
GIT_ENV = {"GIT_AUTHOR_NAME": "Someone", "GIT_AUTHOR_EMAIL": "someone@example.test",
           "GIT_COMMITTER_NAME": "Someone", "GIT_COMMITTER_EMAIL": "someone@example.test",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                            env={**os.environ, **GIT_ENV})
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def manifest(workspaces: str, project: str = "rc") -> str:
    """A faas.yaml on the local backend with the kubernetes deployer (KUBECONFIG from the
    environment) and these workspaces (a YAML list; functions may use functions/hello)."""
    return (f"apiVersion: faasops/v1\nproject: {project}\nbackend: local\n"
            "providers:\n  deployer: {type: kubernetes}\n"
            "workspaces:\n" + textwrap.indent(textwrap.dedent(workspaces), "  "))


@dataclass
class DeployRepository:
    """``bare`` is the remote a reconciler fetches; ``work`` is a clone people push from."""

    bare: Path
    work: Path

    @classmethod
    def create(cls, root: Path) -> DeployRepository:
        root.mkdir(parents=True, exist_ok=True)
        bare, work = root / "remote.git", root / "work"
        git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        git(root, "clone", "--quiet", str(bare), str(work))
        git(work, "checkout", "--quiet", "-B", "main")
        shutil.copytree(EXAMPLES / "hello" / "functions", work / "functions",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (work / ".gitignore").write_text(".faasops/\n")
        return cls(bare, work)

    def push(self, faas_yaml: str, message: str = "change") -> str:
        """Commit this faas.yaml and push it to main; returns the commit."""
        (self.work / "faas.yaml").write_text(faas_yaml)
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        return git(self.work, "rev-parse", "HEAD").strip()


def wait_until(check: Callable[[], T], what: str, describe: Callable[[], str] = lambda: "",
               deadline_s: float = DEADLINE_S) -> T:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` did not happen."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: still not so after {deadline_s:g}s\n{describe()}")
        time.sleep(0.2)


@dataclass
class Reconciler:
    """A running `faasops reconcile` (its own process group: git children die with it)."""

    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    @classmethod
    def start(cls, directory: Path, args: tuple[str, ...], log_path: Path, env: dict[str, str]) -> Reconciler:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "faasops.cli", "-C", str(directory), "reconcile", "--listen", "127.0.0.1:0", *args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
        reconciler = cls(process, log_path)
        line = wait_until(lambda: reconciler._serving_line(), "the reconciler serves /metrics", reconciler.log, 60)
        reconciler.url = line.rsplit(" on ", 1)[1].strip()
        return reconciler

    def _serving_line(self) -> str | None:
        if self.process.poll() is not None:
            raise AssertionError(f"reconcile exited {self.process.returncode}\n{self.log()}")
        return next((line for line in self.log().splitlines() if "serving /metrics" in line), None)

    # ------------------------------------------------------------------ observing

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rounds(self) -> list[dict[str, str]]:
        """Every round's log line as ``key → value``."""
        found = []
        for line in self.log().splitlines():
            if " reconcile: round=" in line:
                found.append(dict(part.split("=", 1) for part in shlex.split(line.split(" reconcile: ", 1)[1])))
        return found

    def wait_for_round(self, what: str, check: Callable[[dict[str, str]], bool], after: int = 0) -> dict[str, str]:
        """The first round numbered above ``after`` that ``check`` accepts."""
        def found() -> dict[str, str] | None:
            self.alive()
            return next((r for r in self.rounds() if int(r["round"]) > after and check(r)), None)

        return wait_until(found, what, self.log)

    def get(self, path: str, accept: str = "") -> tuple[int, str, str]:
        """(status, body, content type) of GET ``path``."""
        request = urllib.request.Request(self.url + path, headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.headers.get("Content-Type", "")

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The samples of /metrics, parsed by prometheus_client's own parser: name → [(labels, value)]."""
        from prometheus_client.parser import text_string_to_metric_families

        status, body, _ = self.get("/metrics")
        assert status == 200, body
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return samples

    def metric(self, name: str, **labels: str) -> float | None:
        for found, value in self.metrics().get(name, []):
            if all(found.get(k) == v for k, v in labels.items()):
                return value
        return None

    def labels(self, name: str) -> dict[str, str]:
        (found, _), = self.metrics()[name]
        return found

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"reconcile exited {self.process.returncode}\n{self.log()}")

    # ------------------------------------------------------------------ stopping

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group (git, builds), even when the leader is gone."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A Python child with stdin/stdout pipes (for helpers that hold something until told)."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)


def namespace_exists(kubectl: KubectlRunner, name: str) -> bool:
    return kubectl("get", "namespace", name, check=False).returncode == 0


def slow_kube(kube: KubeEmulator, tmp_path: Path) -> tuple[FaultProxy, Path]:
    """A fault proxy in front of the emulator and a kubeconfig that goes through it."""
    proxy = FaultProxy(kube.url).start()
    config_path = kube.write_kubeconfig(tmp_path / "proxied-kubeconfig")
    config = yaml.safe_load(config_path.read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return proxy, config_path
