"""A real OCI registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8).

:class:`OciRegistry` starts ``docker-registry serve config.yml`` on ``127.0.0.1`` and a free
port, with filesystem storage in a temporary directory and htpasswd (bcrypt) basic auth, and is
ready in a few tens of milliseconds::

    with OciRegistry(users={"AWS": token_password}) as registry:
        push to registry.url …

``auth="token"`` serves the distribution token flow instead (``WWW-Authenticate: Bearer
realm=…``): a small in-process token service checks the users' passwords and issues RS256 JWTs
(``x5c`` header, a throw-away self-signed certificate the registry trusts), granting what the
scopes ask for. ``auth="none"`` serves anonymously.

The registry re-reads its htpasswd file whenever the file's mtime changes (distribution checks
it on every request), so :meth:`OciRegistry.set_password` takes effect at once, without a
restart. Passwords are hashed by ``htpasswd -B`` (``apache2-utils``), read from its stdin so they
never appear on a command line.

On CI (``CI=true``) a missing ``docker-registry`` or ``htpasswd`` binary is an error
(:class:`RegistryUnavailable` with the apt packages to install); elsewhere tests may skip on it.
Debian packages: ``docker-registry apache2-utils``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from testkit.process import log_tail, terminate

APT_PACKAGES = ("docker-registry", "apache2-utils")
REGISTRY_BINARY = "docker-registry"
HTPASSWD_BINARY = "htpasswd"
READY_TIMEOUT_S = 10.0
# bcrypt's cheapest cost: the registry checks the hash on every request.
BCRYPT_COST = 4
AUTH_MODES = ("htpasswd", "token", "none")
TOKEN_SERVICE = "faasops-test-registry"
TOKEN_ISSUER = "faasops-test-token-issuer"
TOKEN_TTL_S = 300


class RegistryUnavailable(RuntimeError):
    """``docker-registry`` or ``htpasswd`` is not installed."""


def registry_binaries() -> tuple[str, str] | None:
    """``(docker-registry, htpasswd)`` paths, or None when either is missing."""
    registry = shutil.which(REGISTRY_BINARY)
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

    ``users`` maps user names to passwords; ``auth`` is ``htpasswd`` (basic auth, the default),
    ``token`` (bearer tokens from :attr:`token_service`) or ``none``. ``url`` is
    ``http://127.0.0.1:<port>``; ``root`` the temporary directory holding ``config.yml``,
    ``htpasswd``, the storage and ``registry.log``.
    """

    def __init__(self, users: dict[str, str] | None = None, *, auth: str = "htpasswd"):
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
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
        self.token_service: TokenService | None = None
        try:
            if auth == "token":
                self.token_service = TokenService(self.root, dict(users or {}))
            else:
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
        if self.token_service is not None:
            auth = (
                "auth:\n  token:\n"
                f"    realm: {self.token_service.url}/token\n"
                f"    service: {TOKEN_SERVICE}\n"
                f"    issuer: {TOKEN_ISSUER}\n"
                f"    rootcertbundle: {self.token_service.certificate}\n"
            )
        elif self.auth == "htpasswd":
            auth = f"auth:\n  htpasswd:\n    realm: faasops-test\n    path: {self.htpasswd}\n"
        else:
            auth = ""
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
        return log_tail(self.root / "registry.log", lines)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        terminate(process)

    def stop(self) -> None:
        """Stop the registry (and token service) and delete its storage."""
        self._terminate()
        if self.token_service is not None:
            self.token_service.stop()
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
        if self.token_service is not None:
            self.token_service.users[user] = password
            return
        digest = self._hash(user, password)
        with self._lock:
            self._hashes[user] = digest
            self._write_htpasswd()

    def remove_user(self, user: str) -> None:
        if self.token_service is not None:
            self.token_service.users.pop(user, None)
            return
        with self._lock:
            self._hashes.pop(user, None)
            self._write_htpasswd()


# --------------------------------------------------------------------------------------------
# Token service (distribution's token authentication)
# --------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """An in-process Docker token service for ``auth="token"``: ``GET /token?service=…&scope=…``
    with basic credentials returns ``{"token": <JWT>, "expires_in": 300}`` granting the requested
    repository actions (anonymous requests get a token granting nothing; a wrong password gets 401).

    Tokens are RS256 JWTs whose ``x5c`` header carries a self-signed certificate written to
    :attr:`certificate`, which the registry trusts as its ``rootcertbundle``. ``requests`` records
    ``(user, scopes)`` of every token request.
    """

    def __init__(self, root: Path, users: dict[str, str]):
        # cryptography comes with moto[server] (the test extra); only this mode needs it.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = users
        self.requests: list[tuple[str | None, tuple[str, ...]]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.now(timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.certificate = root / "token-root.pem"
        self.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="faasops-token-service", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, user: str | None, scopes: list[str], service: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if user is not None and kind == "repository" and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": TOKEN_ISSUER, "sub": user or "", "aud": service, "exp": now + TOKEN_TTL_S,
            "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                if parts.path != "/token":
                    self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                    return
                query = parse_qs(parts.query)
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                user: str | None = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    try:
                        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    except ValueError:
                        user, password = "", ""
                    if service.users.get(user) != password or not password:
                        service.requests.append((None, tuple(scopes)))
                        self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication failed"}]})
                        return
                service.requests.append((user, tuple(scopes)))
                token = service.issue(user, scopes, (query.get("service") or [TOKEN_SERVICE])[0])
                self._reply(200, {"token": token, "access_token": token, "expires_in": TOKEN_TTL_S})

        return Handler
