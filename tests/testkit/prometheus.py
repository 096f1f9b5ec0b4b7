"""A real Prometheus for tests: Debian's ``prometheus`` (2.42) on ``127.0.0.1`` and a free port.

:class:`PrometheusServer` starts ``prometheus`` with a temporary configuration and TSDB, the
remote-write receiver on (``--web.enable-remote-write-receiver``) and, for ``scrape_targets``, a
scrape job with a short interval (1 s). It is ready in about a tenth of a second::

    with PrometheusServer() as prometheus:
        prometheus.remote_write(load.history(now - 900, now, 5))     # exact history, at once
        prometheus.query('sum(container_memory_working_set_bytes)')

    with MetricsExporter([load]) as exporter, PrometheusServer(scrape_targets=[exporter.target]) as p:
        p.wait_for('up{job="exporter"} == 1')                          # scraped every second

Remote write speaks the protocol's wire format itself — a protobuf ``WriteRequest`` in snappy's
block format — with a few lines of encoding rather than the ``protobuf`` and ``python-snappy``
packages: a block made of literals is valid snappy, just not smaller.

On CI (``CI=true``) a missing ``prometheus`` binary is an error (:class:`PrometheusUnavailable`
names the apt package); elsewhere tests may skip on it. Debian package: ``prometheus``
(``apt-get install -y --no-install-recommends prometheus``; the service it installs is not
needed, and is not started in containers).
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Sequence

from testkit.process import log_tail, terminate

APT_PACKAGES = ("prometheus",)
BINARY = "prometheus"
READY_TIMEOUT_S = 10.0
SCRAPE_JOB = "exporter"

Series = tuple[dict[str, str], Sequence[tuple[float, float]]]


class PrometheusUnavailable(RuntimeError):
    """The ``prometheus`` binary is not installed."""


class PrometheusServer:
    """A ``prometheus`` process; ``url`` is ``http://127.0.0.1:<port>``, ``root`` the temporary
    directory holding ``prometheus.yml``, the TSDB and ``prometheus.log``."""

    def __init__(self, scrape_targets: Sequence[str] = (), scrape_interval_s: float = 1.0):
        # /usr/sbin and /usr/bin may be off PATH (a service account's environment).
        binary = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/bin:/usr/sbin")
        if binary is None:
            raise PrometheusUnavailable(
                f"{BINARY} is needed for the metrics tests: apt-get install -y --no-install-recommends "
                f"{' '.join(APT_PACKAGES)}"
            )
        self._binary = binary
        self.scrape_targets = list(scrape_targets)
        self.scrape_interval_s = scrape_interval_s
        self.root = Path(tempfile.mkdtemp(prefix="faasops-prometheus-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------------------ lifecycle

    def _config(self) -> str:
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        config: dict[str, Any] = {"global": {"scrape_interval": interval, "evaluation_interval": interval}}
        if self.scrape_targets:
            config["scrape_configs"] = [{
                "job_name": SCRAPE_JOB, "scrape_interval": interval, "scrape_timeout": interval,
                # The exporter's namespace/pod labels are the series' own, as on the kubelet job.
                "honor_labels": True,
                "static_configs": [{"targets": self.scrape_targets}],
            }]
        return json.dumps(config, indent=2)  # JSON is YAML

    def _start(self) -> None:
        config = self.root / "prometheus.yml"
        config.write_text(self._config())
        # A free port can be taken between probing and binding: try a few.
        for _ in range(5):
            self.port = _free_port()
            log = (self.root / "prometheus.log").open("ab")
            try:
                self._process = subprocess.Popen(
                    [self._binary, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
                     "--log.level=warn"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            finally:
                log.close()
            if self._wait_ready():
                return
            self._terminate()
            if "address already in use" not in self.log_tail():
                break
        raise RuntimeError(f"prometheus did not start:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.02)
        return False

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.root / "prometheus.log", lines)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        terminate(process)

    def stop(self) -> None:
        """Stop Prometheus and delete its configuration and TSDB."""
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ data

    def remote_write(self, series: Iterable[Series]) -> None:
        """Append samples through the remote-write receiver. Each series' samples must be newer
        than what Prometheus already holds for it, and within the hour before the newest."""
        request = b"".join(_field(1, _timeseries(labels, samples)) for labels, samples in series)
        http_request = urllib.request.Request(
            f"{self.url}/api/v1/write", data=_snappy_block(request), method="POST",
            headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                     "X-Prometheus-Remote-Write-Version": "0.1.0"},
        )
        try:
            with urllib.request.urlopen(http_request, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"remote write answered {exc.code}: {exc.read().decode(errors='replace').strip()}") from None

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's ``result`` (``[{"metric": {…}, "value": [t, "v"]}, …]``)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=30) as response:
            return json.loads(response.read())["data"]["result"]

    def wait_for(self, promql: str, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns something (a scrape has landed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result for {promql} within {timeout_s:g}s:\n{self.log_tail()}")
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ wire format


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _timeseries(labels: dict[str, str], samples: Sequence[tuple[float, float]]) -> bytes:
    """``prometheus.TimeSeries``: labels (1: name, 2: value) sorted by name, then samples
    (1: double value, 2: int64 timestamp in ms)."""
    encoded = b"".join(_field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in sorted(labels.items()))
    for stamp, value in samples:
        encoded += _field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(round(stamp * 1000)))
    return encoded


def _snappy_block(data: bytes) -> bytes:
    """``data`` in snappy's block format as literals only (valid, uncompressed)."""
    out = bytearray(_varint(len(data)))
    for offset in range(0, len(data), 65536):
        chunk = data[offset:offset + 65536]
        size = len(chunk) - 1
        if size < 60:
            out.append(size << 2)
        elif size < 256:
            out += bytes([60 << 2, size])
        else:
            out += bytes([61 << 2]) + size.to_bytes(2, "little")
        out += chunk
    return bytes(out)
