"""The services the scale benchmark starts: moto (DynamoDB, S3, ECR API; one request at a
time, without two emulation costs real DynamoDB doesn't have, see :mod:`scale_moto`), Debian's
docker-registry (pushes authenticated with moto's ECR token) and the Kubernetes API emulator.

moto and the registry run as their own processes. The emulator runs in a thread of the
benchmark's driver process, which only waits on its measurement subprocesses meanwhile, so the
emulator has that process to itself. With injected latency (:meth:`BenchServices.start_latency`)
the fault proxies of :mod:`scale_latency` run in one more process, in front of all three.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test services (testkit)

from testkit.kubeapi import KubeEmulator  # noqa: E402
from testkit.moto import MotoServer, aws_env  # noqa: E402
from testkit.registry import OciRegistry  # noqa: E402

REGION = "eu-west-1"
MOTO_LAUNCHER = Path(__file__).resolve().parent / "scale_moto.py"
LATENCY_PROXIES = Path(__file__).resolve().parent / "scale_latency.py"


class BenchServices:
    """moto + docker-registry + Kubernetes emulator, started together and stopped together."""

    def __init__(self, workdir: Path, *, stock_moto: bool = False):
        self.workdir = workdir
        self.stock_moto = stock_moto
        self.moto: MotoServer | None = None
        self.registry: OciRegistry | None = None
        self.kube: KubeEmulator | None = None
        self.kubeconfig = workdir / "kubeconfig"
        self.direct_kubeconfig = self.kubeconfig
        self._proxies: subprocess.Popen[str] | None = None
        self.proxy_urls: dict[str, str] = {}

    def start(self) -> "BenchServices":
        os.environ.update(aws_env(REGION))
        try:
            self.moto = MotoServer(executable=str(self._moto_launcher())).start()
            token = self.moto.client("ecr", REGION).get_authorization_token()["authorizationData"][0]
            password = base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]
            self.registry = OciRegistry({"AWS": password})
            self.kube = KubeEmulator(port=0).start()
            self.kube.write_kubeconfig(self.kubeconfig)
        except BaseException:
            self.stop()
            raise
        return self

    def start_latency(self, latency_ms: str) -> None:
        """Put the latency proxies in front of the services (``latency_ms`` as
        :meth:`scale_latency.Latency.parse` reads it): :attr:`moto_url`, :attr:`registry_url`
        and :attr:`kubeconfig` name the proxies until :meth:`stop_latency`."""
        assert self.moto is not None and self.registry is not None and self.kube is not None
        self._proxies = subprocess.Popen(
            [sys.executable, str(LATENCY_PROXIES), "--moto", self.moto.url, "--registry", self.registry.url,
             "--kube", self.kube.url, "--ms", latency_ms],
            stdout=subprocess.PIPE, text=True, env=self.env)
        assert self._proxies.stdout is not None
        line = self._proxies.stdout.readline()
        if not line:
            self.stop_latency()
            raise RuntimeError("the latency proxies did not start")
        self.proxy_urls = json.loads(line)
        config = yaml.safe_load(self.direct_kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = self.proxy_urls["kube"]
        self.kubeconfig = self.workdir / "kubeconfig-latency"
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    def stop_latency(self) -> None:
        if self._proxies is not None:
            self._proxies.terminate()
            try:
                self._proxies.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proxies.kill()
                self._proxies.wait()
            self._proxies = None
        self.proxy_urls = {}
        self.kubeconfig = self.direct_kubeconfig

    @property
    def moto_url(self) -> str:
        assert self.moto is not None
        return self.proxy_urls.get("moto", self.moto.url)

    @property
    def registry_url(self) -> str:
        assert self.registry is not None
        return self.proxy_urls.get("registry", self.registry.url)

    def moto_busy(self, reset: bool = False) -> dict[str, Any]:
        """moto's own busy time since the last reset (see :class:`scale_moto.Serialized`)."""
        assert self.moto is not None
        request = urllib.request.Request(self.moto.url + "/__bench/busy", method="POST" if reset else "GET",
                                         data=b"" if reset else None)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def _moto_launcher(self) -> Path:
        """An executable that starts scale_moto.py with this interpreter (MotoServer runs
        ``EXECUTABLE -H HOST -p PORT``)."""
        launcher = self.workdir / "moto_server"
        flags = " --stock" if self.stock_moto else ""
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{MOTO_LAUNCHER}"{flags} "$@"\n')
        launcher.chmod(0o755)
        return launcher

    @property
    def env(self) -> dict[str, str]:
        """What a faasops or kubectl subprocess needs to reach the services."""
        return {**os.environ, **aws_env(REGION), "KUBECONFIG": str(self.kubeconfig)}

    def reset(self) -> None:
        """Wipe DynamoDB, S3, ECR and the cluster (the registry keeps its blobs: projects of
        different sizes push to different repositories)."""
        assert self.moto is not None and self.kube is not None
        self.moto.reset()
        self.kube.reset()
        self.kube.reset_stats()

    def kube_stats(self) -> dict[str, Any]:
        assert self.kube is not None
        return self.kube.stats()

    def stop(self) -> None:
        self.stop_latency()
        if self.kube is not None:
            self.kube.stop()
            self.kube = None
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> "BenchServices":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
