"""``faasops api …``: the Platform API's commands (registered by :mod:`faasops.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from faasops.errors import FaasopsError

if TYPE_CHECKING:  # faasops.cli imports this module to register the group
    from faasops.cli import Context

DEFAULT_TOKENS_FILE = Path(".faasops") / "api-tokens"


@click.group("api")
def api_group() -> None:
    """The Platform API: workspaces and functions over REST, every write a git commit plus an
    apply of exactly that change (OpenAPI docs at /docs)."""


@api_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help=f"Hashed API tokens (`faasops api token create`; default: DIR/{DEFAULT_TOKENS_FILE} when it "
                   "exists); FAASOPS_API_TOKEN adds one admin token.")
@click.option("--push", nargs=2, metavar="REMOTE BRANCH", help="Push every commit the API makes.")
@click.pass_obj
def serve_command(obj: Context, host: str, port: int, tokens_file: Path | None, push: tuple[str, str] | None) -> None:
    """Serve the Platform API for the project (-C DIR, a git work tree) until SIGINT or SIGTERM.

    On start it applies what API commits made before a crash left unapplied (see GET /api/status).

    \b
    Example:
      export FAASOPS_API_TOKEN=$(openssl rand -hex 32)
      faasops -C examples/hello api serve --port 8000
      curl -H "Authorization: Bearer $FAASOPS_API_TOKEN" http://127.0.0.1:8000/api/workspaces
    """
    try:
        import uvicorn  # noqa: F401  (checked here: the message names the extra to install)

        from faasops.api.app import create_app
        from faasops.builder_service.runner import listen_and_serve
    except ImportError as exc:
        raise FaasopsError(f"the API needs FastAPI, uvicorn and ruamel.yaml ({exc.name} is missing): "
                           "pip install 'faasops[api]'") from exc
    from faasops.api.context import ApiContext

    if tokens_file is None and (obj.directory / DEFAULT_TOKENS_FILE).is_file():
        tokens_file = obj.directory / DEFAULT_TOKENS_FILE
    ctx = ApiContext(project_dir=obj.directory, environment=obj.environment,
                     tokens_file=tokens_file.resolve() if tokens_file else None, push=tuple(push) if push else None)
    listen_and_serve(create_app(ctx), host, port, "faasops api")


@api_group.group("token")
def token_group() -> None:
    """API tokens: stored as SHA-256 hashes, each with a name and scopes."""


@token_group.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="SCOPE",
              help="admin, or ACTION:WORKSPACE with ACTION read|invoke|write and WORKSPACE a name or * (repeatable).")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help=f"The tokens file (default: DIR/{DEFAULT_TOKENS_FILE}).")
@click.pass_obj
def token_create(obj: Context, name: str, scopes: tuple[str, ...], tokens_file: Path | None) -> None:
    """Create a token NAME, print it once (only its hash is kept) and add it to the tokens file.

    The token's name is the author of the commits its writes make.

    \b
    Examples:
      faasops api token create ci --scope admin
      faasops api token create shop-team --scope write:shop --scope read:*
    """
    from faasops.api.access import create_token

    path = tokens_file or obj.directory / DEFAULT_TOKENS_FILE
    token = create_token(path, name, list(scopes))
    click.echo(token)
    click.echo(f"token {name!r} added to {path}; it is shown only this once", err=True)
