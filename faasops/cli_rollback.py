"""``faasops rollback WS/FN``: redeploy an earlier artifact without rebuilding (registered by
:mod:`faasops.cli`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from faasops.cli import Context


@click.command("rollback")
@click.argument("address", metavar="WS/FN")
@click.option("--to", "to", metavar="DIGEST", help="The recorded artifact to run (its sha256 digest, or a unique prefix).")
@click.option("--steps", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="How many recorded deploys to go back from the running one.")
@click.option("--lock-timeout", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="Wait this long for the state lock held by another run.")
@click.pass_obj
def rollback_command(ctx: Context, address: str, to: str | None, steps: int, lock_timeout: float) -> None:
    """Redeploy an earlier artifact of WS/FN from the recorded history, without rebuilding.

    The history is what earlier applies built, pushed and deployed (`faasops tasks`). Until the
    function's source in the manifests is the rolled-back one again (revert it in git), `faasops
    plan` shows the function to update, saying it was rolled back, and `faasops apply` deploys
    the manifests' version again.

    \b
    Examples:
      faasops rollback demo/hello                 # the previous artifact
      faasops rollback demo/hello --steps 2
      faasops rollback demo/hello --to sha256:4f1c
    """
    from faasops.errors import FaasopsError
    from faasops.rollback import rollback

    if "/" not in address:
        raise FaasopsError(f"rollback needs WS/FN, got {address!r}")
    with ctx.engine() as engine:
        with engine.locked(f"faasops rollback {address}", lock_timeout):
            result = rollback(engine, address, to, steps)
    if result.before == result.after:
        click.echo(f"{address} already runs {result.after}.")
        return
    click.echo(f"Rolled back {address}: {result.before} → {result.after}.")
    click.echo("Revert its source in the manifests to keep it; `faasops apply` deploys the manifests' version again.")
