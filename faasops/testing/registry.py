"""A real OCI registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8).

:class:`OciRegistry` starts ``docker-registry serve config.yml`` on ``127.0.0.1`` and a free
port, with filesystem storage in a temporary directory and htpasswd (bcrypt) basic auth, and is
ready in a few tens of milliseconds::

    with OciRegistry(users={"AWS": token_password}) as registry:
        push to registry.url …

The registry re-reads its htpasswd file whenever the file's mtime changes (distribution checks
it on every request), so :meth:`OciRegistry.set_password` takes effect at once, without a
restart. Passwords are hashed by ``htpasswd -B`` (``apache2-utils``), read from its stdin so they
never appear on a command line.

On CI (``CI=true``) a missing ``docker-registry`` or ``htpasswd`` binary is an error
(:class:`RegistryUnavailable` with the apt packages to install); elsewhere tests may skip on it.
Debian packages: ``docker-registry apache2-utils``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

APT_PACKAGES = ("docker-registry", "apache2-utils")
REGISTRY_BINARY = "docker-registry"
HTPASSWD_BINARY = "htpasswd"
READY_TIMEOUT_S = 10.0
# bcrypt's cheapest cost: the registry checks the hash on every request.
BCRYPT_COST = 4


class RegistryUnavailable(RuntimeError):
    """``docker-registry`` or ``htpasswd`` is not installed."""


def registry_binaries() -> tuple[str, str] | None:
    """``(docker-registry, htpasswd)`` paths, or None when either is missing."""
    registry = os.environ.get("FAASOPS_DOCKER_REGISTRY") or shutil.which(REGISTRY_BINARY)
    htpasswd = shutil.which(HTPASSWD_BINARY)
    if registry and htpasswd:
        return registry, htpasswd
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OciRegistry:
    """A ``docker-registry`` process serving the OCI Distribution API on ``127.0.0.1``.

    ``users`` maps user names to passwords for htpasswd basic auth; ``auth=False`` serves
    anonymously. ``url`` is ``http://127.0.0.1:<port>``; ``root`` the temporary directory holding
    ``config.yml``, ``htpasswd``, the storage and ``registry.log``.
    """

    def __init__(self, users: dict[str, str] | None = None, *, auth: bool = True):
        binaries = registry_binaries()
        if binaries is None:
            raise RegistryUnavailable(
                f"{REGISTRY_BINARY} and {HTPASSWD_BINARY} are needed for the registry tests: "
                f"apt-get install -y {' '.join(APT_PACKAGES)}"
            )
        self._binary, self._htpasswd_binary = binaries
        self.auth = auth
        self.root = Path(tempfile.mkdtemp(prefix="faasops-registry-"))
        self.htpasswd = self.root / "htpasswd"
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        try:
            for user, password in (users or {}).items():
                self._hashes[user] = self._hash(user, password)
            self._write_htpasswd()
            self._start()
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as image references name the registry."""
        return f"127.0.0.1:{self.port}"

    def _config(self, port: int) -> str:
        storage = self.root / "storage"
        auth = (
            f"auth:\n  htpasswd:\n    realm: faasops-test\n    path: {self.htpasswd}\n" if self.auth else ""
        )
        return (
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {storage}\n"
            "  delete:\n    enabled: true\n"
            "  maintenance:\n    uploadpurging:\n      enabled: false\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            "health:\n  storagedriver:\n    enabled: false\n"
            + auth
        )

    def _start(self) -> None:
        # A free port can be taken between probing and binding: try a few.
        for _ in range(5):
            port = _free_port()
            config = self.root / "config.yml"
            config.write_text(self._config(port))
            log = (self.root / "registry.log").open("ab")
            try:
                self._process = subprocess.Popen(
                    [self._binary, "serve", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                log.close()
            self.port = port
            if self._wait_ready():
                return
            self._terminate()
            if "address already in use" not in self.log_tail():
                break
        raise RuntimeError(f"docker-registry did not start:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                conn.close()
                return True
            except OSError:
                time.sleep(0.01)
        return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.root / "registry.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        """Stop the registry and delete its storage."""
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> OciRegistry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------- users

    def _hash(self, user: str, password: str) -> str:
        if ":" in user:
            raise ValueError(f"htpasswd user names cannot contain ':': {user!r}")
        result = subprocess.run(
            [self._htpasswd_binary, "-i", "-B", "-C", str(BCRYPT_COST), "-n", user],
            input=password.encode(),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"htpasswd failed for user {user!r}: {result.stderr.decode(errors='replace').strip()}")
        line = result.stdout.decode().strip().splitlines()[0]
        return line.split(":", 1)[1]

    def _write_htpasswd(self) -> None:
        text = "".join(f"{user}:{digest}\n" for user, digest in sorted(self._hashes.items()))
        previous = self.htpasswd.stat().st_mtime_ns if self.htpasswd.exists() else 0
        tmp = self.htpasswd.with_name(".htpasswd.tmp")
        tmp.write_text(text)
        # The registry reloads the file when its mtime differs from the one it last read: make
        # sure a rewrite within the same clock tick still counts as a change.
        stamp = max(time.time_ns(), previous + 1_000)
        os.utime(tmp, ns=(stamp, stamp))
        os.replace(tmp, self.htpasswd)

    def set_password(self, user: str, password: str) -> None:
        """Add ``user`` or change their password; effective for the next request."""
        digest = self._hash(user, password)
        with self._lock:
            self._hashes[user] = digest
            self._write_htpasswd()

    def remove_user(self, user: str) -> None:
        with self._lock:
            self._hashes.pop(user, None)
            self._write_htpasswd()
