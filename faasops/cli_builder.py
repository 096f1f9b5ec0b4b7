"""``faasops builder …``: the Builder service's commands (registered by :mod:`faasops.cli`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("builder")
def builder_group() -> None:
    """The Builder service: builds, pushes and deploys for CI runners without the toolchain
    or registry credentials (clients select `builder: {type: remote, url: …}` in faas.yaml)."""


@builder_group.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="The service's config (see examples/builder/builder.yaml).")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port.")
def serve_command(config_path: Path, host: str, port: int) -> None:
    """Serve the Builder API (OpenAPI docs at /docs) until SIGINT or SIGTERM.

    \b
    Example:
      export FAASOPS_BUILDER_TOKEN=$(openssl rand -hex 32)
      faasops builder serve --config builder.yaml --port 8080
    """
    from faasops.builder_service.runner import serve

    serve(config_path, host, port)
