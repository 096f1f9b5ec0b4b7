"""``faasops gc``: remove the artifacts no recorded function keeps (registered by :mod:`faasops.cli`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from faasops.cli import Context

DEFAULT_KEEP = 3  # earlier artifacts kept per function: `rollback --steps 1..3` keeps working


@click.command("gc")
@click.option("--keep", type=click.IntRange(0, 10_000), default=DEFAULT_KEEP, show_default=True, metavar="N",
              help="Earlier artifacts kept per function besides the running one (what `rollback --steps` up to N reaches).")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed; removes nothing, takes no lock.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--lock-timeout", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="Wait this long for the state lock held by another run.")
@click.pass_obj
def gc_command(ctx: Context, keep: int, dry_run: bool, fmt: str, lock_timeout: float) -> None:
    """Remove source archives, builds, images, blobs and compiled components that no recorded
    function runs or may roll back to.

    Per recorded function the running artifact and the N deployed before it stay; functions the
    state no longer records (destroyed, pruned) keep nothing. Only this project's own artifacts
    are considered: its S3 prefix, its repositories, caches inside its .faasops. gc holds the
    state lock throughout, so it never races an apply.

    \b
    Examples:
      faasops gc --dry-run
      faasops gc --keep 1
      faasops gc --format json
    """
    _run_gc(ctx, keep, dry_run, fmt, lock_timeout)


def _run_gc(ctx: Context, keep: int | None, dry_run: bool, fmt: str, lock_timeout: float, purge: bool = False) -> None:
    """Collect (under the state lock unless ``dry_run``) and print the report."""
    from faasops.garbage import collect_garbage, render_text

    with ctx.engine() as engine:
        if dry_run:
            report = collect_garbage(engine, keep, dry_run=True, purge=purge)
        else:
            with engine.locked("faasops destroy --purge" if purge else "faasops gc", lock_timeout):
                report = collect_garbage(engine, keep, purge=purge)
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        click.echo(render_text(report), nl=False)


def purge_after_destroy(ctx: Context, lock_timeout: float) -> None:
    """``destroy --purge``: remove what the destroyed functions left behind (their images,
    repositories, sources, builds); functions still recorded keep their whole history."""
    _run_gc(ctx, None, False, "text", lock_timeout, purge=True)
