"""A real moto server for tests of AWS providers (DynamoDB, S3, ECR …).

moto's ``moto_server`` speaks the AWS wire protocols over HTTP, so providers under test use the
same boto3 code paths as in production, only with ``endpoint_url`` pointing at the server::

    from testkit.moto import MotoServer, aws_env

    with MotoServer() as moto:                   # a free port on 127.0.0.1
        os.environ.update(aws_env())             # fake credentials, us-east-1
        ecr = moto.client("ecr")                 # or boto3.client("ecr", endpoint_url=moto.url)
        ...
        moto.reset()                             # wipe every service's data between tests

One server serves every AWS service moto emulates. It is found next to ``sys.executable`` first
(a venv's ``bin/`` is often not on PATH), then on PATH; when it is missing, :class:`MotoServer`
raises :class:`MotoServerNotFound` — test fixtures turn that into a skip outside CI and a
failure under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_REGION = "us-east-1"


class MotoServerNotFound(RuntimeError):
    """``moto_server`` is not installed (``pip install 'moto[server]'``)."""


class MotoServerError(RuntimeError):
    """``moto_server`` did not start (its log is in the message)."""


def aws_env(region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment variables that give boto3 fake credentials and a region, and keep it away
    from the developer's own AWS config files. Merge into ``os.environ`` or a subprocess env
    (and drop ``AWS_PROFILE``, which would point boto3 at a profile these files don't have)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def use_fake_aws(monkeypatch: Any) -> None:
    """For a pytest test: fake credentials in the environment (CLI subprocesses inherit them)
    and none of the developer's AWS profile or endpoint settings."""
    for name, value in aws_env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def find_moto_server() -> str | None:
    """The ``moto_server`` console script: beside the running Python first, then on PATH."""
    beside_python = Path(sys.executable).parent / "moto_server"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("moto_server")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MotoServer:
    """A ``moto_server`` subprocess on ``host``:``port`` (0 picks a free port).

    ``start()`` (or ``with``) returns once the server answers HTTP; ``url`` is its base URL,
    ``reset()`` wipes all emulated data, ``stop()`` terminates it. The server's log goes to a
    temporary file, quoted in :class:`MotoServerError` when it fails to start.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, executable: str | None = None,
                 startup_timeout_s: float = 30.0):
        self.host = host
        self.port = port
        self.executable = executable or find_moto_server()
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def url(self) -> str:
        if self._proc is None:
            raise MotoServerError("the moto server is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MotoServer":
        if self.executable is None or not Path(self.executable).exists():
            where = self.executable or "not beside the Python interpreter nor on PATH"
            raise MotoServerNotFound(f"moto_server not found ({where}); pip install 'moto[server]'")
        # A free port can be taken between choosing it and moto binding it: try a few.
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            port = self.port or _free_port(self.host)
            if self._launch(port, last_attempt=attempt == attempts - 1):
                self.port = port
                return self
        raise AssertionError("unreachable")

    def _launch(self, port: int, last_attempt: bool) -> bool:
        self._log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [self.executable, "-H", self.host, "-p", str(port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **aws_env()},
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if last_attempt:
                    raise MotoServerError(f"moto_server exited with code {proc.returncode}:\n{self._log_text()}")
                return False
            if _answers(f"http://{self.host}:{port}/moto-api/"):
                self._proc = proc
                return True
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        raise MotoServerError(f"moto_server did not answer within {self.startup_timeout_s:.0f} s:\n{self._log_text()}")

    def _log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def reset(self) -> None:
        """Wipe the data of every emulated service (tables, buckets, repositories …)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str, region: str = DEFAULT_REGION, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` talking to this server with fake credentials."""
        import boto3

        return boto3.client(
            service, endpoint_url=self.url, region_name=region,
            aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs,
        )

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            response.read()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
