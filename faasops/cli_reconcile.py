"""``faasops reconcile``: pull mode — keep the deployment equal to a git branch (registered by
:mod:`faasops.cli`; the loop is :mod:`faasops.reconcile`)."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from faasops.cli import Context
    from faasops.interruption import RunAbandoned

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_MAX_BACKOFF_S = 600.0


@click.command("reconcile")
@click.option("--interval", default="1m", show_default=True, metavar="DURATION",
              help="Time between rounds (30s, 1m, 1h).")
@click.option("--repo", "url", metavar="URL",
              help="Clone this repository into -C DIR once, then fetch and hard-reset to the branch every round. "
                   "Without it, -C DIR is used as it is.")
@click.option("--branch", default="main", show_default=True, help="The branch to deploy (with --repo).")
@click.option("--path", "project_path", default=".", show_default=True, metavar="SUBDIR",
              help="The project's directory inside the repository (with --repo).")
@click.option("--dry-run", is_flag=True, help="Only plan and report each round; change nothing, take no lock.")
@click.option("--prune", is_flag=True, help="Also delete what the manifests no longer declare (never protected ones).")
@click.option("--force-conflicts/--no-force-conflicts", default=True, show_default=True,
              help="Take back fields someone changed on the cluster (kubectl edit); "
                   "without, such drift fails the round.")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              help="Serve /metrics, /healthz and /readyz here (port 0: any free port).")
@click.option("-p", "--parallelism", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Functions applied at the same time.")
@click.option("--lock-timeout", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="Wait this long for a state lock held by another run, then skip the round.")
@click.option("--max-backoff", metavar="DURATION",
              help="The longest wait between rounds after failures.  [default: 10m, or --interval if longer]")
@click.option("--unhealthy-after", default="15m", show_default=True, metavar="DURATION",
              help="/healthz answers 503 once rounds have been failing (or one round running) this long.")
@click.pass_obj
def reconcile_command(ctx: Context, interval: str, url: str | None, branch: str, project_path: str, dry_run: bool,
                      prune: bool, force_conflicts: bool, listen: str, parallelism: int, lock_timeout: float,
                      max_backoff: str | None, unhealthy_after: str) -> None:
    """Keep the deployment equal to a git branch: fetch, plan, apply, every --interval.

    Each round fetches the repository, plans with refresh (so changes made on the cluster show
    as drift) and applies what differs, healing the drift; --dry-run only reports. An invalid
    push or an unreachable repository fails the round and leaves the deployment as the last good
    revision made it; failed rounds are retried with a growing, jittered wait (up to
    --max-backoff). A state lock held by another run (a CI apply) skips the round. One log line
    per round; Prometheus metrics at /metrics.

    SIGTERM or Ctrl-C stops the loop: a round that is applying finishes its running steps and
    releases the lock first, as `faasops apply` does; a second signal aborts them.

    \b
    Examples:
      faasops -C /work/checkout reconcile --repo https://git.example/deploy.git --branch main
      faasops reconcile --interval 30s --dry-run
    """
    from faasops.errors import FaasopsError
    from faasops.interruption import signal_name
    from faasops.observe import parse_duration
    from faasops.reconcile import Reconciler, Settings
    from faasops.reconcile_checkout import Repository
    from faasops.reconcile_status import Status, StatusServer

    interval_s = parse_duration(interval)
    max_backoff_s = parse_duration(max_backoff) if max_backoff else max(DEFAULT_MAX_BACKOFF_S, interval_s)
    settings = Settings(interval_s=interval_s, max_backoff_s=max_backoff_s,
                        dry_run=dry_run, prune=prune, parallelism=parallelism, lock_timeout_s=lock_timeout,
                        environment=ctx.environment, force_conflicts=force_conflicts)
    if settings.max_backoff_s < settings.interval_s:
        raise FaasopsError(f"--max-backoff {max_backoff} is shorter than --interval {interval}")
    if lock_timeout < 0:
        raise FaasopsError("--lock-timeout must not be negative")
    if url is None and (branch != "main" or project_path != "."):
        raise FaasopsError("--branch and --path need --repo (without it, -C DIR is used as it is)")
    host, port = _listen_address(listen)
    try:
        import prometheus_client  # noqa: F401 (a dependency of faasops; an old venv may lack it)
    except ImportError:
        raise FaasopsError("faasops reconcile needs prometheus-client: pip install prometheus-client") from None
    repository = Repository(ctx.directory, url, branch, project_path)
    status = Status(unhealthy_after_s=parse_duration(unhealthy_after), source=repository.describe())
    try:
        server = StatusServer(status, host, port)
    except OSError as exc:
        raise FaasopsError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    server.start()
    bound_host, bound_port = server.address
    _log(f"reconcile: source={repository.describe()} interval={interval}{' dry_run=true' if dry_run else ''} "
         f"serving /metrics /healthz /readyz on http://{bound_host}:{bound_port}")
    reconciler = Reconciler(repository, settings, status, _log, _exit_abandoned)
    try:
        stopped_by = reconciler.run()
    finally:
        server.close()
    _log(f"reconcile: stopped by {signal_name(stopped_by)} after {reconciler.rounds} round(s); "
         "the state lock is released")


def _exit_abandoned(exc: RunAbandoned) -> NoReturn:
    """A second signal and a step that would not end: exit now, holding the lock (stale from
    this moment, as after ``kill -9``)."""
    from faasops.interruption import exit_code, signal_name

    _log(f"reconcile: aborted by {signal_name(exc.signum)} while {', '.join(exc.running) or 'a step'} still ran "
         "(marked interrupted); exiting holding the state lock: the next run takes it over "
         "(at once on this host, elsewhere when its lease ends)")
    sys.stderr.flush()
    os._exit(exit_code(exc.signum))  # not sys.exit: the interpreter would wait for the workers


def _listen_address(listen: str) -> tuple[str, int]:
    from faasops.errors import FaasopsError

    host, _, port = listen.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise FaasopsError(f"--listen {listen!r}: use HOST:PORT, e.g. 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


def _log(line: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"{stamp} {line}")
    sys.stdout.flush()

