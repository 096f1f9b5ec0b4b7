"""The ``faasops`` command line. Commands are thin: parse, call the engine, render, exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from faasops import __version__
from faasops.engine import Engine
from faasops.errors import Aborted, ApplyError, FaasopsError, ManifestError
from faasops.executor import ApplyResult
from faasops.plan import Plan, PlanOptions, Selection
from faasops.render import RENDERERS, render_text

EXIT_CHANGES = 2


class Context:
    def __init__(self, directory: Path, environment: str | None):
        self.directory = directory
        self.environment = environment

    def engine(self) -> Engine:
        return Engine.load(self.directory, self.environment)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "--directory", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Project directory (the one holding the root faas.yaml).")
@click.option("-e", "--env", "environment", metavar="NAME",
              help="Environment overlay: merge faas.NAME.yaml over each faas.yaml.")
@click.version_option(__version__, prog_name="faasops")
@click.pass_context
def cli(ctx: click.Context, directory: Path, environment: str | None) -> None:
    """GitOps for Spin (WebAssembly) functions.

    Declare workspaces and functions in faas.yaml, then `faasops plan` shows what would change
    and `faasops apply` makes it so: upload, build, push, render the SpinApp, deploy.

    \b
    Quick start:
      faasops init my-project && cd my-project
      faasops apply --auto-approve
      faasops get functions
    """
    ctx.obj = Context(directory.resolve(), environment)


# ---------------------------------------------------------------------------------- helpers


def selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("-t", "--target", "targets", multiple=True, metavar="WS[/FN]",
                      help="Only this workspace or function (repeatable).")(fn)
    fn = click.option("--exclude", "excludes", multiple=True, metavar="WS[/FN]",
                      help="Leave this workspace or function out (repeatable).")(fn)
    return fn


def _plan_options(targets: tuple[str, ...], excludes: tuple[str, ...], prune: bool = False,
                  destroy: bool = False, refresh: bool = True) -> PlanOptions:
    return PlanOptions(prune=prune, destroy=destroy, refresh=refresh,
                       selection=Selection(tuple(targets), tuple(excludes)))


def _confirm(plan: Plan, auto_approve: bool, verb: str) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise Aborted(f"refusing to {verb} without confirmation: stdin is not a terminal (use --auto-approve)")
    answer = click.prompt(f"Do you want to {verb}? Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise Aborted(f"{verb} cancelled")


def _report(result: ApplyResult, verb: str) -> None:
    added = len(result.applied)
    deleted = len(result.deleted)
    built = f"{result.builds} built, {result.cached_builds} reused from cache, {result.pushes} pushed"
    if result.ok:
        click.echo(f"{verb} complete! {added} applied, {deleted} destroyed ({built}).")
        return
    lines = [f"{verb} failed: {len(result.failed)} failed, {len(result.skipped)} not started, "
             f"{added} applied, {deleted} destroyed ({built})."]
    lines += [f"  {address}: {message}" for address, message in sorted(result.failed.items())]
    if result.skipped:
        lines.append("  not started: " + ", ".join(sorted(result.skipped)))
    lines.append("The state records what was done; run `faasops plan` to see what remains.")
    raise ApplyError("\n".join(lines))


def _run_apply(ctx: Context, options: PlanOptions, auto_approve: bool, parallelism: int,
               continue_on_error: bool, lock_timeout: float, verb: str) -> None:
    with ctx.engine() as engine:
        with engine.locked(f"faasops {verb.lower()}", lock_timeout):
            plan = engine.plan(options)
            click.echo(render_text(plan), nl=False)
            if not plan.has_changes:
                return
            _confirm(plan, auto_approve, "apply these changes" if verb == "Apply" else "destroy")
            result = engine.apply(plan, parallelism=parallelism, continue_on_error=continue_on_error)
        _report(result, verb)


# ---------------------------------------------------------------------------------- commands


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="Project name (default: the directory name).")
def init(directory: Path, name: str | None) -> None:
    """Create a new project with one hello-world function.

    \b
    Example:
      faasops init my-functions && cd my-functions && faasops apply --auto-approve
    """
    from faasops.scaffold_project import create_project

    created = create_project(directory, name)
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"\nNext: cd {directory} && faasops plan")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of faas.yaml (for editors: yaml-language-server, VS Code).

    \b
    Example:
      faasops schema > faas.yaml.schema
      # then, first line of faas.yaml:  # yaml-language-server: $schema=./faas.yaml.schema
    """
    from faasops.scaffold_project import schema_text

    click.echo(schema_text(), nl=False)


@cli.command()
@pass_ctx
def validate(ctx: Context) -> None:
    """Check every faas.yaml and function source without changing anything.

    Checks the schema, names (DNS-1123), uniqueness, that source directories exist inside the
    project, Python syntax, and the Spin handler contract (a class IncomingHandler deriving
    from http.IncomingHandler with handle_request(self, request)). All problems are listed as
    file:line:col path: message; the exit code is 1 if there is any.

    \b
    Example:
      faasops -C examples/hello validate
    """
    engine = ctx.engine()
    project = engine.project
    count = len(project.functions())
    click.echo(f"{project.name}: {len(project.workspaces)} workspace(s), {count} function(s) — valid.")


@cli.command()
@selection_options
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True,
              help="text for people, json for tools (versioned, see README), markdown for PR comments.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--prune", is_flag=True, help="Also plan deleting what the manifests no longer declare.")
@click.option("--destroy", is_flag=True, help="Plan deleting everything (protected resources are kept).")
@click.option("--refresh/--no-refresh", default=True, show_default=True,
              help="Compare with what is live (drift detection).")
@pass_ctx
def plan(ctx: Context, targets: tuple[str, ...], excludes: tuple[str, ...], fmt: str,
         detailed_exitcode: bool, prune: bool, destroy: bool, refresh: bool) -> None:
    """Show what apply would change. Writes nothing.

    \b
    Examples:
      faasops plan
      faasops plan --format markdown > plan.md     # a pull-request comment
      faasops plan --detailed-exitcode || [ $? -eq 2 ] && echo "changes pending"
    """
    with ctx.engine() as engine:
        result = engine.plan(_plan_options(targets, excludes, prune, destroy, refresh))
    click.echo(RENDERERS[fmt](result), nl=False)
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES)


def apply_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--auto-approve", is_flag=True, help="Don't ask for confirmation.")(fn)
    fn = click.option("-p", "--parallelism", type=click.IntRange(1, 256), default=4, show_default=True,
                      help="Functions applied at the same time.")(fn)
    fn = click.option("--continue-on-error", is_flag=True,
                      help="Let independent functions finish after one fails (default: stop starting new ones).")(fn)
    fn = click.option("--lock-timeout", type=float, default=0.0, show_default=True, metavar="SECONDS",
                      help="Wait this long for the state lock held by another run.")(fn)
    return selection_options(fn)


@cli.command()
@apply_options
@click.option("--prune", is_flag=True, help="Delete what the manifests no longer declare (never protected ones).")
@pass_ctx
def apply(ctx: Context, targets: tuple[str, ...], excludes: tuple[str, ...], auto_approve: bool,
          parallelism: int, continue_on_error: bool, lock_timeout: float, prune: bool) -> None:
    """Make the deployed functions match the manifests.

    Takes the state lock, plans, shows the plan, asks for confirmation, then runs each function
    through upload → build → push → scaffold → deploy → record. Unchanged sources are not
    rebuilt; a function is recorded only after its deploy succeeded.

    \b
    Examples:
      faasops apply
      faasops apply --auto-approve -t demo/hello
      faasops -e prod apply --auto-approve --prune
    """
    _run_apply(ctx, _plan_options(targets, excludes, prune=prune), auto_approve, parallelism,
               continue_on_error, lock_timeout, "Apply")


@cli.command()
@apply_options
@pass_ctx
def destroy(ctx: Context, targets: tuple[str, ...], excludes: tuple[str, ...], auto_approve: bool,
            parallelism: int, continue_on_error: bool, lock_timeout: float) -> None:
    """Delete every deployed function and workspace of the project (protected ones are kept).

    \b
    Example:
      faasops destroy --auto-approve -t demo
    """
    _run_apply(ctx, _plan_options(targets, excludes, destroy=True), auto_approve, parallelism,
               continue_on_error, lock_timeout, "Destroy")


@cli.command()
@click.argument("kind", type=click.Choice(["workspaces", "functions"]))
@click.argument("workspace", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_ctx
def get(ctx: Context, kind: str, workspace: str | None, fmt: str) -> None:
    """List what is deployed, from the state.

    \b
    Examples:
      faasops get workspaces
      faasops get functions demo --format json
    """
    with ctx.engine() as engine:
        actual = engine.state.read([workspace] if workspace else None)
    if kind == "workspaces":
        rows = [
            {"name": name, "namespace": rec.spec.get("namespace", name),
             "functions": sum(1 for f in actual.functions.values() if f.workspace == name),
             "protect": bool(rec.spec.get("protect"))}
            for name, rec in sorted(actual.workspaces.items())
        ]
    else:
        rows = [
            {"workspace": rec.workspace, "name": rec.name, "artifact": rec.artifact,
             "source_hash": rec.spec.get("source_hash", ""), "applied_at": rec.applied_at}
            for _, rec in sorted(actual.functions.items())
        ]
    _print_rows(rows, fmt)


@cli.command()
@click.argument("workspace", required=False)
@click.option("--id", "task_id", help="Show one task (a unique prefix is enough).")
@click.option("-n", "--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_ctx
def tasks(ctx: Context, workspace: str | None, task_id: str | None, limit: int, fmt: str) -> None:
    """Build and deploy task history, newest first (pending, running, completed, failed).

    \b
    Examples:
      faasops tasks demo --limit 20
      faasops tasks --id 3f2a
    """
    with ctx.engine() as engine:
        found = engine.state.list_tasks(workspace=workspace, task_id=task_id, limit=limit)
    if task_id and not found:
        raise FaasopsError(f"no task with id {task_id!r}")
    rows = [
        {"id": t.id[:12], "updated": t.updated_at[:19], "target": t.workspace + (f"/{t.function}" if t.function else ""),
         "step": t.kind, "status": t.status, "message": t.message}
        for t in found
    ]
    if fmt == "json":
        rows = [t.__dict__ for t in found]
    _print_rows(rows, fmt)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def plugins(fmt: str) -> None:
    """List the installed plugins, their versions, hooks and provider types.

    Built-in providers are plugins too, loaded from the same `faasops` entry-point group as
    third-party packages.
    """
    from faasops.plugin_manager import create_plugin_manager, describe_plugins, provider_types

    pm = create_plugin_manager()
    infos = describe_plugins(pm)
    types = provider_types(pm)
    if fmt == "json":
        click.echo(json.dumps({"plugins": [i.__dict__ for i in infos], "provider_types": types}, indent=2))
        return
    for info in infos:
        click.echo(f"{info.name}  ({info.distribution} {info.version})")
        for hook in info.hooks:
            click.echo(f"    {hook}")
    click.echo("\nprovider types:")
    for slot, entries in types.items():
        for type_, description in sorted(entries):
            click.echo(f"  {slot:<10} {type_:<16} {description}")


@cli.command("force-unlock")
@click.argument("lock_id")
@pass_ctx
def force_unlock(ctx: Context, lock_id: str) -> None:
    """Remove a state lock left by a run that is gone (its id is in the lock error message).

    \b
    Example:
      faasops force-unlock 3f2a9c1b0d4e5f60
    """
    with ctx.engine() as engine:
        engine.state.force_unlock(lock_id)
    click.echo(f"lock {lock_id} removed")


def _print_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


def main() -> None:
    """Entry point: user errors print one clear message and exit 1; bugs keep their traceback."""
    try:
        code = cli.main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except ManifestError as exc:
        click.echo(f"Error: {len(exc.problems)} problem(s) in the manifests:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    except FaasopsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
