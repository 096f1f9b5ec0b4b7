"""The ``faasops`` command line. Commands are thin: parse, call the engine, render, exit.

Start-up is paid by every CI step, so this module and the ``cli_*`` modules it registers import
only click and faasops' small modules (errors, interruption): the engine, the plan and what they
pull in are imported inside the commands that use them (``bench/cli_startup_bench.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import click

from faasops.cli_api import api_group
from faasops.cli_builder import builder_group
from faasops.cli_gc import gc_command, purge_after_destroy
from faasops.cli_reconcile import reconcile_command
from faasops.cli_render import render_command, scaffold_command
from faasops.cli_rollback import rollback_command
from faasops.errors import Aborted, ApplyError, FaasopsError, ManifestError
from faasops.gc_tuning import relax_for_process
from faasops.interruption import ABORT_GRACE_S, RunAbandoned, RunInterrupted, exit_code, signal_name

if TYPE_CHECKING:
    from faasops.engine import Engine
    from faasops.executor import ApplyResult
    from faasops.plan import Plan, PlanOptions
    from faasops.providers import LockInfo

EXIT_CHANGES = 2
EXIT_HTTP_ERROR = 22  # `faasops invoke` on a 5xx (or 4xx with --fail): curl -f's code
TASK_SCAN_LIMIT = 10_000  # `faasops tasks WS/FN`: the newest tasks of WS searched for FN's
# The keys of faasops.plan_render.RENDERERS, spelled out so `--help` needs no plan import
# (tests/test_cli_startup.py checks they agree).
PLAN_FORMATS = ("json", "markdown", "text")


class Context:
    def __init__(self, directory: Path, environment: str | None):
        self.directory = directory
        self.environment = environment

    def engine(self) -> Engine:
        from faasops.engine import Engine

        engine = Engine.load(self.directory, self.environment)
        for warning in engine.warnings:
            click.echo(f"warning: {warning}", err=True)
        return engine


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "--directory", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Project directory (the one holding the root faas.yaml).")
@click.option("-e", "--env", "environment", metavar="NAME",
              help="Environment overlay: merge faas.NAME.yaml over each faas.yaml.")
@click.version_option(package_name="faasops", prog_name="faasops")
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
                      help="Only this workspace or function, WS/FN or WS.FN (repeatable).")(fn)
    fn = click.option("--exclude", "excludes", multiple=True, metavar="WS[/FN]",
                      help="Leave this workspace or function out, WS/FN or WS.FN (repeatable).")(fn)
    fn = click.option("--changed-since", metavar="GITREF",
                      help="Only functions whose source or manifest entry changed since GITREF.")(fn)
    return fn


def _plan_options(engine: Engine, targets: tuple[str, ...], excludes: tuple[str, ...],
                  changed_since: str | None, prune: bool = False, destroy: bool = False,
                  refresh: bool = True) -> PlanOptions:
    from faasops.names import canonical_address
    from faasops.plan import PlanOptions, Selection

    changed = None
    if changed_since:
        from faasops.git_changes import changed_functions

        changed = changed_functions(engine.project, changed_since)
    return PlanOptions(prune=prune, destroy=destroy, refresh=refresh,
                       selection=Selection(tuple(map(canonical_address, targets)),
                                           tuple(map(canonical_address, excludes)), changed))


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
             + (f"{len(result.interrupted)} interrupted, " if result.interrupted else "")
             + f"{added} applied, {deleted} destroyed ({built})."]
    lines += _unfinished(result)
    lines.append("The state records what was done; run `faasops plan` to see what remains.")
    raise ApplyError("\n".join(lines))


def _unfinished(result: ApplyResult) -> list[str]:
    """One line per failed address, then the ones stopped between steps and not started. The
    progress output already showed each failure in full: a message's first line recalls it."""
    lines = [f"  {address}: {_first_line(message)}" for address, message in sorted(result.failed.items())]
    if result.interrupted:
        lines.append("  stopped between steps: " + ", ".join(sorted(result.interrupted)))
    if result.skipped:
        lines.append("  not started: " + ", ".join(sorted(result.skipped)))
    return lines


def _first_line(message: str) -> str:
    first, _, rest = message.partition("\n")
    return f"{first} (in full above)" if rest.strip() else first


def _run_apply(ctx: Context, make_options: Callable[[Engine], PlanOptions] | None, auto_approve: bool,
               parallelism: int, continue_on_error: bool, lock_timeout: float, verb: str,
               saved_plan: Path | None = None, force_conflicts: bool = False, wait: bool = False) -> None:
    with ctx.engine() as engine:
        # A flag for an option the configured deployer doesn't declare does nothing, and says so:
        # one CI script applies every environment, with a cluster deployer or a gitops/local one.
        flags = {"force_conflicts": force_conflicts, "wait": wait}
        for name in engine.override_options("deployer", **{name: True for name, on in flags.items() if on}):
            deployer = engine.project.provider("deployer").type
            click.echo(f"note: --{name.replace('_', '-')} does nothing here: deployer type {deployer!r} has no "
                       f"'{name}' option", err=True)
        result: ApplyResult | None = None
        held: LockInfo | None = None
        try:
            with engine.locked(f"faasops {verb.lower()}", lock_timeout) as held:
                result = _plan_and_apply(engine, make_options, saved_plan, auto_approve, parallelism,
                                         continue_on_error, verb)
        except RunInterrupted as exc:
            _report_interrupted(result, verb, exc.signum)
        except RunAbandoned as exc:
            # Before the engine is closed: a worker still inside a step may use the providers.
            _exit_abandoned(exc, verb, held)
        if result is not None:
            _report(result, verb)


def _plan_and_apply(engine: Engine, make_options: Callable[[Engine], PlanOptions] | None, saved_plan: Path | None,
                    auto_approve: bool, parallelism: int, continue_on_error: bool, verb: str) -> ApplyResult | None:
    """Under the lock: plan (or load the saved plan), show it, confirm, apply. None when there
    is nothing to change."""
    from faasops.plan_render import render_text

    if saved_plan is not None:
        # A saved plan was reviewed when it was made: apply exactly it, or refuse.
        plan = load_plan_file(saved_plan)
        engine.check_saved_plan(plan)  # (engine.apply checks the state serial)
    else:
        assert make_options is not None
        plan = engine.plan(make_options(engine))
    click.echo(render_text(plan), nl=False)
    if not plan.has_changes:
        return None
    if saved_plan is None:
        _confirm(plan, auto_approve, "apply these changes" if verb == "Apply" else "destroy")
    return engine.apply(plan, parallelism=parallelism, continue_on_error=continue_on_error)


def _report_interrupted(result: ApplyResult | None, verb: str, signum: int) -> NoReturn:
    """A signal stopped the run and the lock is released: say what was done, exit 130/143."""
    name = signal_name(signum)
    if result is None:
        click.echo(f"{verb} interrupted by {name} before any change was made; the state lock is released.", err=True)
        sys.exit(exit_code(signum))
    lines = [f"{verb} interrupted by {name}: {len(result.applied)} applied, {len(result.deleted)} destroyed, "
             f"{len(result.interrupted)} stopped between steps (not recorded), {len(result.skipped)} not started, "
             f"{len(result.failed)} failed."]
    lines += _unfinished(result)
    lines.append("The state lock is released and the state records what was done; run `faasops plan` to see what remains.")
    click.echo("\n".join(lines), err=True)
    sys.exit(exit_code(signum))


def _exit_abandoned(exc: RunAbandoned, verb: str, lock: LockInfo | None) -> NoReturn:
    """A second signal and a step that would not end: exit now, holding the lock (stale from
    this moment, as after ``kill -9``)."""
    lock_id = lock.id if lock is not None else "?"
    click.echo(
        f"{verb} aborted by {signal_name(exc.signum)}: still running after {ABORT_GRACE_S:g} s: "
        f"{', '.join(exc.running) or '(unknown)'} (marked interrupted). faasops exits holding the state lock "
        f"{lock_id}: on this host the next run takes it over at once (its process is gone), elsewhere when its "
        f"lease ends, or run `faasops force-unlock {lock_id}`.",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code(exc.signum))  # not sys.exit: the interpreter would wait for the workers


def load_plan_file(path: Path) -> Plan:
    from faasops.plan import Plan

    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise FaasopsError(f"plan file {path} does not exist") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise FaasopsError(f"{path} is not a faasops plan file ({exc})") from exc


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

    Checks the schema, each providers.* block against the options its type declares (see
    `faasops plugins`), names (DNS-1123), uniqueness, that source directories exist inside the
    project, Python syntax, the Spin handler contract (a class IncomingHandler deriving
    from http.IncomingHandler with handle_request(self, request)), each source's
    requirements.txt, and that every module the handler imports exists in the source, the
    standard library, spin-sdk or the declared dependencies. All problems are listed as
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
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="text", show_default=True,
              help="text for people, json for tools (versioned, see README), markdown for PR comments.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also save the plan to FILE, for `faasops apply FILE` (holds no secret values).")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--prune", is_flag=True, help="Also plan deleting what the manifests no longer declare.")
@click.option("--destroy", is_flag=True, help="Plan deleting everything (protected resources are kept).")
@click.option("--refresh/--no-refresh", default=True, show_default=True,
              help="Compare with what is live (drift detection).")
@pass_ctx
def plan(ctx: Context, targets: tuple[str, ...], excludes: tuple[str, ...], changed_since: str | None,
         fmt: str, out: Path | None, detailed_exitcode: bool, prune: bool, destroy: bool, refresh: bool) -> None:
    """Show what apply would change. Writes nothing (but FILE with --out).

    \b
    Examples:
      faasops plan
      faasops plan --format markdown > plan.md     # a pull-request comment
      faasops plan --out plan.json && faasops apply plan.json
      faasops plan --changed-since origin/main --detailed-exitcode
    """
    from faasops.plan_render import RENDERERS

    with ctx.engine() as engine:
        result = engine.plan(_plan_options(engine, targets, excludes, changed_since, prune, destroy, refresh))
    if out is not None:
        out.write_text(RENDERERS["json"](result))
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
    fn = click.option("--force-conflicts", is_flag=True,
                      help="Take over fields another Kubernetes field manager changed (server-side apply force).")(fn)
    return selection_options(fn)


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[PLANFILE]")
@apply_options
@click.option("--prune", is_flag=True, help="Delete what the manifests no longer declare (never protected ones).")
@click.option("--wait", is_flag=True, help="Wait until each deployed SpinApp is ready (Kubernetes; timeout: providers.deployer.wait_timeout_seconds).")
@pass_ctx
def apply(ctx: Context, plan_file: Path | None, targets: tuple[str, ...], excludes: tuple[str, ...],
          changed_since: str | None, auto_approve: bool, parallelism: int, continue_on_error: bool,
          lock_timeout: float, force_conflicts: bool, prune: bool, wait: bool) -> None:
    """Make the deployed functions match the manifests.

    Takes the state lock, plans, shows the plan, asks for confirmation, then runs each function
    through upload → build → push → scaffold → deploy → record. Unchanged sources are not
    rebuilt; a function is recorded only after its deploy succeeded.

    With PLANFILE (from `faasops plan --out`), applies exactly that plan without asking, and
    refuses if the state, the manifests or the sources changed since it was made.

    Ctrl-C or SIGTERM starts no new step: running steps finish and are recorded, then the lock
    is released and apply exits 130 (SIGINT) or 143 (SIGTERM) saying what was done. A second
    signal aborts the running steps (builds are killed).

    \b
    Examples:
      faasops apply
      faasops apply --auto-approve -t demo/hello
      faasops -e prod apply --auto-approve --prune
      faasops apply plan.json
    """
    if plan_file is not None and (targets or excludes or changed_since or prune):
        raise FaasopsError("a saved plan already fixes what it covers: don't combine PLANFILE with -t/--exclude/--changed-since/--prune")
    _run_apply(ctx, lambda engine: _plan_options(engine, targets, excludes, changed_since, prune=prune),
               auto_approve, parallelism, continue_on_error, lock_timeout, "Apply", saved_plan=plan_file,
               force_conflicts=force_conflicts, wait=wait)


@cli.command()
@apply_options
@click.option("--purge", is_flag=True, help="Then also remove the destroyed functions' images, repositories, "
              "sources and builds (what `faasops gc` would keep for rollback).")
@pass_ctx
def destroy(ctx: Context, targets: tuple[str, ...], excludes: tuple[str, ...], changed_since: str | None,
            auto_approve: bool, parallelism: int, continue_on_error: bool, lock_timeout: float,
            force_conflicts: bool, purge: bool) -> None:
    """Delete every deployed function and workspace of the project (protected ones are kept).

    `-t WS/FN` deletes that function only: its workspace and the other functions in it stay.
    `-t WS` deletes the workspace with all of its functions. A workspace is never deleted while
    it still holds a function that is kept (protected, or left out with --exclude).

    \b
    Examples:
      faasops destroy --auto-approve -t demo
      faasops destroy --auto-approve -t demo/hello
      faasops destroy --auto-approve --purge       # and the images, repositories, sources
    """
    _run_apply(ctx, lambda engine: _plan_options(engine, targets, excludes, changed_since, destroy=True),
               auto_approve, parallelism, continue_on_error, lock_timeout, "Destroy")
    if purge:
        purge_after_destroy(ctx, lock_timeout)


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
@click.argument("address", metavar="[WS[/FN]]", required=False)
@click.option("--id", "task_id", help="Show one task (a unique prefix is enough).")
@click.option("-n", "--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_ctx
def tasks(ctx: Context, address: str | None, task_id: str | None, limit: int, fmt: str) -> None:
    """Build and deploy task history, newest first (pending, running, completed, failed), of
    every workspace, one workspace, or one function (WS/FN or WS.FN).

    \b
    Examples:
      faasops tasks demo --limit 20
      faasops tasks demo.hello
      faasops tasks --id 3f2a
    """
    workspace, function = _split_address(address) if address else (None, None)
    with ctx.engine() as engine:
        # The state lists tasks by workspace: one function's are the newest of its workspace's.
        found = engine.state.list_tasks(workspace=workspace, task_id=task_id,
                                        limit=TASK_SCAN_LIMIT if function else limit)
    if function:
        found = [t for t in found if t.function == function][:limit]
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
    """List the installed plugins, their versions, hooks and provider types with their options.

    Built-in providers are plugins too, loaded from the same `faasops` entry-point group as
    third-party packages. Each type's options (name, type, default, description) come from the
    JSON Schema its plugin declares; `--format json` includes the schemas.
    """
    from faasops.plugin_manager import create_plugin_manager, describe_plugins, option_schemas, provider_types

    pm = create_plugin_manager()
    infos = describe_plugins(pm)
    types = provider_types(pm)
    schemas = option_schemas(pm)
    if fmt == "json":
        options: dict[str, dict[str, Any]] = {}
        for declared in schemas:
            options.setdefault(declared.slot, {})[declared.type] = {
                "options": [option.as_dict() for option in declared.options()], "schema": declared.schema}
        click.echo(json.dumps({"plugins": [i.__dict__ for i in infos], "provider_types": types,
                               "provider_options": options}, indent=2, default=str))
        return
    for info in infos:
        click.echo(f"{info.name}  ({info.distribution} {info.version})")
        for hook in info.hooks:
            click.echo(f"    {hook}")
    click.echo("\nprovider types:")
    for slot, entries in types.items():
        for type_, description in sorted(entries):
            click.echo(f"  {slot:<10} {type_:<16} {description}")
            declared = schemas.get(slot, type_)
            if declared is None:
                click.echo(f"{'':<14}(declares no options: they are passed unchecked)")
            for option in declared.options() if declared else ():
                default = "required" if option.required else (
                    f"default {json.dumps(option.default)}" if option.default is not None else "optional")
                old = f" (formerly {', '.join(option.aliases)})" if option.aliases else ""
                click.echo(f"{'':<14}{option.name}: {option.type}, {default}{old} — {option.description}")


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


# ---------------------------------------------------------------------------------- day 2


def _split_address(address: str, function: str | None = None) -> tuple[str, str | None]:
    """``WS``, ``WS/FN`` or the bare function id ``WS.FN``, or ``WS FN`` as two arguments."""
    from faasops.names import split_address

    workspace, fn = split_address(address)
    return workspace, (fn or function or None)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port.")
@click.option("--no-apply", is_flag=True, help="Serve what is deployed without applying first.")
@click.option("-p", "--parallelism", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="Requests one function runs at once; more wait up to 1 s, then get 503.")
@click.option("--max-body-size", default="10Mi", show_default=True, metavar="SIZE",
              help="Largest request body (bytes, or a quantity such as 512Ki, 10Mi); larger gets 413.")
@click.option("--memory-limit", default="256Mi", show_default=True, metavar="SIZE",
              help="Memory of one instance of a function without resources.limits.memory.")
@pass_ctx
def up(ctx: Context, host: str, port: int, no_apply: bool, parallelism: int, concurrency: int,
       max_body_size: str, memory_limit: str) -> None:
    """Apply the project on the local backend and serve every function over HTTP.

    Functions answer at http://HOST:PORT/<workspace>/<function>/… . Like `docker compose up`,
    it applies without asking. Leave it running: a later `faasops apply` (in another terminal)
    swaps in new versions without dropping requests, one line each (`Swapped WS/FN sha256:OLD →
    sha256:NEW`); apply compiled them already. Stop with Ctrl-C or SIGTERM.

    A request runs for at most its function's `timeout` (default 30s) within the function's
    `resources.limits.memory` (default --memory-limit); beyond either it gets a 500.

    \b
    Example:
      faasops up --port 8080 &
      curl http://127.0.0.1:8080/demo/hello/
    """
    from faasops.plan import PlanOptions
    from faasops.serving import LocalServer, open_local, parse_size, restore_interrupt
    from faasops.runtime.server import ServerLimits

    restore_interrupt()
    limits = ServerLimits(max_body_size=parse_size(max_body_size, "--max-body-size"),
                          function_concurrency=concurrency)
    memory = parse_size(memory_limit, "--memory-limit")
    if not no_apply:
        _run_apply(ctx, lambda engine: PlanOptions(), True, parallelism, False, 0.0, "Apply")
    with ctx.engine() as engine, open_local(engine, memory) as (functions, log):
        with LocalServer(functions, log, host, port, limits=limits) as server:
            click.echo(f"Serving {len(functions.addresses())} function(s) at {server.url}")
            for address in functions.addresses():
                click.echo(f"  {server.url}/{address}/")
            try:
                stopped_by = server.wait_for_stop_signal()
            except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
                stopped_by = "SIGINT"
            click.echo(f"Stopping ({stopped_by}).")


@cli.command()
@click.argument("address", metavar="WS/FN|WS.FN")
@click.option("-X", "--request", "method", metavar="METHOD", help="HTTP method (default GET, or POST with -d).")
@click.option("-d", "--data", metavar="DATA|@FILE|@-", help="Request body; @FILE reads a file, @- stdin.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'K: V'", help="Request header (repeatable).")
@click.option("--path", default="/", show_default=True, help="Path (and query) below the function's route.")
@click.option("-i", "--include", is_flag=True, help="Print the status line and response headers too.")
@click.option("-f", "--fail", is_flag=True,
              help=f"Exit {EXIT_HTTP_ERROR} on a 4xx answer too (a 5xx always does), like `curl -f`.")
@pass_ctx
def invoke(ctx: Context, address: str, method: str | None, data: str | None, headers: tuple[str, ...],
           path: str, include: bool, fail: bool) -> None:
    """Call a deployed function and print its response body.

    On the local backend it goes through a running `faasops up`, else runs the function
    in-process; on a cluster through the Kubernetes API service proxy, or the gateway URL set
    as `providers.invoker: {type: gateway, url: …}`. The function sees the path below its
    route, as on the cluster (`--path /items?id=7` → `request.uri == "/items?id=7"`).

    Header values are sent as UTF-8, as curl sends them. Exits 22 (curl's code for an HTTP
    error) when the function answers 5xx, or 4xx with --fail; the body is printed either way.

    \b
    Examples:
      faasops invoke demo/hello
      faasops invoke demo/echo -X PUT -d @payload.json -H 'content-type: application/json' -i
      faasops invoke demo/echo --path '/items?id=7'
    """
    from faasops.providers import InvokeRequest
    from faasops.runtime.http_syntax import wire_bytes
    from faasops.serving import parse_headers, read_body

    workspace, function = _split_address(address)
    if not function:
        raise FaasopsError(f"invoke needs WS/FN or WS.FN, got {address!r}")
    body = read_body(data)
    request = InvokeRequest(method or ("POST" if data is not None else "GET"),
                            path if path.startswith("/") else "/" + path, parse_headers(headers), body)
    with ctx.engine() as engine:
        response = engine.operations_provider("invoker").invoke(workspace, function, request)
    out = sys.stdout.buffer
    if include:
        # Header values are bytes on the wire; written as they came, like curl, so UTF-8 reads
        # as UTF-8 on the terminal.
        head = [f"HTTP {response.status}".encode()]
        head += [name.encode("latin-1", "replace") + b": " + wire_bytes(value) for name, value in response.headers]
        out.write(b"\n".join(head) + b"\n\n")
    out.write(response.body)
    if sys.stdout.isatty() and not response.body.endswith(b"\n"):
        out.write(b"\n")  # keep the shell prompt off the body's last line
    out.flush()
    failed = response.status >= 500 or (fail and response.status >= 400)
    if (response.error or failed) and not include:
        hint = f"; see `faasops logs {workspace}/{function}`" if response.status >= 500 else ""
        click.echo(f"(function answered HTTP {response.status}{hint})", err=True)
    if failed:
        sys.exit(EXIT_HTTP_ERROR)


@cli.command()
@click.argument("address", metavar="WS[/FN]|WS.FN")
@click.argument("function", required=False)
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries, each once (Ctrl-C to stop).")
@click.option("--since", metavar="DURATION", help="Only entries newer than this (30s, 15m, 2h, 1d).")
@click.option("--grep", metavar="TEXT", help="Only entries whose message contains TEXT.")
@click.option("--source", metavar="TYPE", help="Another log source than providers.logs (e.g. loki).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_ctx
def logs(ctx: Context, address: str, function: str | None, limit: int, follow: bool, since: str | None,
         grep: str | None, source: str | None, fmt: str) -> None:
    """Logs of a workspace or one function, oldest of the newest LIMIT first.

    Locally: each invocation with status, duration and the function's stdout/stderr (a failing
    handler's traceback included). On AWS: the DynamoDB logs table; `--source loki` queries Loki
    by the function_id label.

    \b
    Examples:
      faasops logs demo --limit 20
      faasops logs demo/hello --follow
      faasops logs demo.hello          # the function_id label, as in Loki and Grafana
      faasops logs demo hello --source loki --since 15m --grep ERROR
    """
    from faasops.observe import parse_duration, print_log_records

    workspace, fn = _split_address(address, function)
    cutoff = time.time() - parse_duration(since) if since else None
    with ctx.engine() as engine:
        reader = engine.operations_provider("logs", source)
        records = reader.read(workspace, fn, limit=limit, since=cutoff, grep=grep)
        print_log_records(list(reversed(records)), fmt)
        if not records and not follow:
            target = f"{workspace}/{fn}" if fn else workspace
            declared = any(f.address == target or f.workspace == target for f in engine.project.functions())
            click.echo(f"no logs for {target}" + (f" in the last {since}" if since else "")
                       + ("" if declared else f" ({target} is not declared in faas.yaml)"), err=True)
        if follow:
            try:
                for record in reader.follow(workspace, fn, since=cutoff, grep=grep):
                    print_log_records([record], fmt)
            except KeyboardInterrupt:
                pass


@cli.command()
@click.argument("address", metavar="WS/FN|WS.FN")
@click.option("--since", default="1h", show_default=True, metavar="DURATION", help="Window to show (15m, 1h, 1d).")
@click.option("--step", default="1m", show_default=True, metavar="DURATION", help="Resolution.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Also draw the series into a PNG (needs matplotlib: pip install 'faasops[plot]').")
@pass_ctx
def metrics(ctx: Context, address: str, since: str, step: str, fmt: str, plot: Path | None) -> None:
    """CPU, memory, replicas (Prometheus) or requests, errors, latency and CPU (local) of one
    function over time, as a table with sparklines.

    \b
    Examples:
      faasops metrics demo/hello
      faasops metrics demo/hello --since 15m --step 30s --format json
      faasops metrics demo/hello --since 6h --step 5m --plot hello.png
    """
    from faasops.observe import parse_duration, plot_metrics, render_metrics

    workspace, fn = _split_address(address)
    if not fn:
        raise FaasopsError(f"metrics needs WS/FN or WS.FN, got {address!r}")
    window, bucket = parse_duration(since), parse_duration(step)
    now = time.time()
    with ctx.engine() as engine:
        series = engine.operations_provider("metrics").query(workspace, fn, since=now - window, until=now, step_s=bucket)
    click.echo(render_metrics(f"{workspace}/{fn}", series, bucket, fmt), nl=False)
    if plot is not None:
        plot_metrics(f"{workspace}/{fn}", series, plot)
        click.echo(f"plot written to {plot}", err=True)


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


cli.add_command(builder_group)
cli.add_command(render_command)
cli.add_command(scaffold_command)
cli.add_command(rollback_command)
cli.add_command(reconcile_command)
cli.add_command(gc_command)
cli.add_command(api_group)


def main() -> None:
    """Entry point: user errors print one clear message and exit 1; bugs keep their traceback."""
    relax_for_process()
    try:
        code = cli.main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # click exits 2 on a usage error, which `plan --detailed-exitcode` uses for "changes
        # pending": a CI step must never take `plan --bogus` for a plan with changes. Like
        # Terraform, a usage error exits 1, with or without --detailed-exitcode.
        exc.show()
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("Interrupted.", err=True)
            sys.exit(130)
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
    except RunInterrupted as exc:  # a signal while holding the lock, outside apply's own report
        click.echo(f"Interrupted by {signal_name(exc.signum)}; the state lock is released.", err=True)
        sys.exit(exit_code(exc.signum))


if __name__ == "__main__":
    main()
