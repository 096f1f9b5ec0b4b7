"""``faasops render`` (alias ``faasops scaffold``): the objects faasops would apply, written as a
kustomize tree for Argo CD or Flux (registered by :mod:`faasops.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from faasops.cli import Context

_HELP = """Write every Namespace, SpinApp, SpinAppExecutor, HPA and ScaledObject faasops would
apply into DIR, for Argo CD or Flux, without deploying anything.

Uses the artifacts recorded by the last apply (functions never applied are listed and left out),
or with --build builds and pushes first (apply's steps up to the push; nothing is deployed or
recorded). Files are DIR/<namespace>/<kind>-<name>.yaml with sorted keys, a kustomization.yaml
per namespace and one at the root: a rerun with the same inputs rewrites nothing. Object files
faasops wrote earlier that are no longer rendered are removed; other files in DIR stay.

\b
Examples:
  faasops render --out deploy/ && kubectl kustomize deploy/
  faasops render --build --out clusters/prod/faasops
"""


@click.command("render", help=_HELP)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="The directory to write (created when missing).")
@click.option("--build", is_flag=True, help="Build and push every function first, instead of using recorded artifacts.")
@click.option("-p", "--parallelism", type=click.IntRange(1, 256), default=4, show_default=True,
              help="With --build: functions built at the same time.")
@click.pass_obj
def render_command(ctx: Context, out: Path, build: bool, parallelism: int) -> None:
    from faasops.handoff import render_project

    with ctx.engine() as engine:
        report = render_project(engine, out, build, progress=lambda line: click.echo(line, err=True),
                                parallelism=parallelism)
    for address in report.unbuilt:
        click.echo(f"warning: {address} has no recorded artifact (run `faasops apply`, or render --build); "
                   "left out", err=True)
    changed = f"{len(report.changed)} file(s) changed" if report.changed else "nothing changed"
    click.echo(f"Rendered {report.files} object(s) for {len(report.rendered)} function(s) into {out}: {changed}.")


#: ``faasops scaffold``: the Builder API's name for the same step.
scaffold_command = click.Command("scaffold", params=render_command.params, callback=render_command.callback,
                                 help="Alias of `faasops render`.\n\n" + _HELP)
