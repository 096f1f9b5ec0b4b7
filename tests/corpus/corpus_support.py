"""The corpus of public Spin Python apps (tests/corpus/apps, provenance in tests/corpus/CORPUS.md):
projects made of them, the HTTP server on 127.0.0.1 they call, and raw requests to ``faasops up``.

Each app is ``apps/<name>/src`` (the upstream files, byte for byte) and ``apps/<name>/function.yaml``:
``spin`` is what the app's spin.toml declares for its component, ``faas`` the faas.yaml function
fields that say the same to faasops (``${UPSTREAM}`` stands for the test server's base URL).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import string
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from cli_support import Result, run_faasops
from up_support import UpProcess

CORPUS = Path(__file__).resolve().parent
APPS = CORPUS / "apps"
WORKSPACE = "corpus"
#: A cold build of ~25 components takes minutes, and so does compiling them at the first start.
APPLY_TIMEOUT_S = 1800
UP_START_TIMEOUT_S = 1200


@dataclass(frozen=True)
class CorpusApp:
    """One vendored app: its function name, upstream source directory and faas.yaml fields."""

    name: str
    source: Path
    spin: dict[str, Any]
    faas: dict[str, Any]


def load_app(name: str, substitutions: dict[str, str] | None = None) -> CorpusApp:
    """The app ``apps/<name>``, with ``${…}`` placeholders of its function.yaml filled in."""
    text = (APPS / name / "function.yaml").read_text()
    data = yaml.safe_load(string.Template(text).substitute(substitutions or {}))
    return CorpusApp(name, APPS / name / "src", data.get("spin") or {}, data.get("faas") or {})


def write_project(root: Path, names: Sequence[str], substitutions: dict[str, str] | None = None) -> Path:
    """A faasops project at ``root`` with one function per app in workspace ``corpus``."""
    functions = []
    for name in names:
        app = load_app(name, substitutions)
        shutil.copytree(app.source, root / "functions" / name)
        functions.append({"name": name, "source": f"functions/{name}", **app.faas})
    manifest = {"apiVersion": "faasops/v1", "project": "corpus", "backend": "local",
                "workspaces": [{"name": WORKSPACE, "functions": functions}]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def apply(root: Path) -> Result:
    """``faasops apply --auto-approve`` of the project (real componentize-py builds, shared cache)."""
    return run_faasops("-C", str(root), "apply", "--auto-approve", timeout=APPLY_TIMEOUT_S)


def applied_project(root: Path, names: Sequence[str], upstream: Upstream) -> Path:
    """:func:`write_project` at ``root``, applied; fails the caller when the apply fails."""
    write_project(root, names, {"UPSTREAM": upstream.url})
    applied = apply(root)
    assert applied.code == 0, applied.output
    return root


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def request(up: UpProcess, app: str, target: str = "/", method: str = "GET", body: bytes | None = None,
            headers: Sequence[tuple[str, str]] = ()) -> Answer:
    """One request to function ``corpus/<app>`` through ``faasops up``; ``target`` is the path
    and query the app sees (its route is ``/...``)."""
    host, port = up.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.putrequest(method, f"/{WORKSPACE}/{app}{target}", skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        seen: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            seen.setdefault(name.lower(), []).append(value)
        return Answer(response.status, seen, response.read())
    finally:
        conn.close()


def last_log(project: Path, app: str) -> str:
    """The newest invocation log entry of ``corpus/<app>`` (request line, stdout and stderr)."""
    logs = run_faasops("-C", str(project), "logs", f"{WORKSPACE}/{app}", "--limit", "1")
    assert logs.code == 0, logs.output
    return logs.out


@dataclass
class Upstream:
    """What the corpus apps call: ``/fact`` (201, JSON, ``x-upstream``), ``/v1`` (records the
    ``Authorization`` it got) and ``/blob`` (fixed bytes, for hashing)."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


FACT = json.dumps({"fact": "Octopuses have three hearts."}).encode()
BLOB = bytes(range(256)) * 64
BLOB_SHA256 = hashlib.sha256(BLOB).hexdigest()


def serve_upstream() -> Iterator[Upstream]:
    """Run the upstream server on 127.0.0.1 for the caller's block (a generator fixture body)."""
    state = Upstream(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.seen.append({"path": self.path, "authorization": self.headers.get("authorization", "")})
            if self.path == "/fact":
                self.answer(201, FACT, [("content-type", "application/json"), ("x-upstream", "yes")])
            elif self.path == "/blob":
                self.answer(200, BLOB, [("content-type", "application/octet-stream")])
            else:
                self.answer(200, b"ok", [("content-type", "text/plain")])

        def answer(self, status: int, body: bytes, headers: Sequence[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="corpus-upstream", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
