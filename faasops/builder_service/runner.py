"""Running the Builder API: ``faasops builder serve`` calls :func:`serve`."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

from faasops.builder_service.config import load_config
from faasops.errors import FaasopsError


def serve(config_path: Path, host: str = "0.0.0.0", port: int = 8080, stream: TextIO | None = None) -> None:
    """Load the config, create the providers, listen, and serve until SIGINT/SIGTERM.

    ``port=0`` works: the line ``faasops builder listening on http://HOST:PORT`` names the port
    actually bound (see :func:`listen_and_serve`).
    """
    try:
        import uvicorn  # noqa: F401  (checked here: the message names the extra to install)

        from faasops.builder_service.app import create_app
    except ImportError as exc:
        raise FaasopsError(
            f"the builder service needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'faasops[builder]'"
        ) from exc
    config = load_config(config_path)
    listen_and_serve(create_app(config), host, port, "faasops builder", stream)


def listen_and_serve(app: Any, host: str, port: int, name: str, stream: TextIO | None = None) -> None:
    """Serve the ASGI ``app`` with uvicorn until SIGINT/SIGTERM (the Builder and the Platform
    API alike). The socket is bound first, so ``port=0`` works: the line
    ``NAME listening on http://HOST:PORT`` names the port actually bound."""
    import uvicorn

    stream = stream or sys.stderr
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FaasopsError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound = sock.getsockname()[1]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=True, timeout_graceful_shutdown=10))
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"{name} listening on http://{shown}:{bound} (API docs at /docs)", file=stream, flush=True)
    server.run(sockets=[sock])
