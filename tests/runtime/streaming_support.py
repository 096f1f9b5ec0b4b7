"""A gate server for streaming tests: lets a guest's outbound request through only when the
test says so, which orders "the client got the first chunk" before "the guest finished"."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

HANDLERS = Path(__file__).parent / "handlers"
# spin-sdk 3.4.1's own streaming example, vendored unchanged with the public-app corpus.
STREAMING_EXAMPLE = Path(__file__).parents[1] / "corpus" / "apps" / "sdk-streaming" / "src"


def handler_source(name: str) -> Path:
    """The source directory of test handler ``name`` (``streaming``: spin-sdk's example)."""
    return STREAMING_EXAMPLE if name == "streaming" else HANDLERS / name


GATE_WAIT_S = 60
"""How long the gate holds a request the test never releases (a failing test, not a pass)."""


class Gate:
    """An HTTP server on 127.0.0.1 whose ``/gate`` answers ``released`` once :meth:`release`
    was called (or ``timedout`` after :data:`GATE_WAIT_S`); other paths answer their own path
    at once."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.asked = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/gate":
                    gate.asked.set()
                    body = b"released" if gate.released.wait(GATE_WAIT_S) else b"timedout"
                else:
                    body = self.path.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    gate.thread.start()
    try:
        yield gate
    finally:
        gate.release()
        gate.server.shutdown()
        gate.server.server_close()
        gate.thread.join()


