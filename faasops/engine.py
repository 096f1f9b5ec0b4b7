"""The engine: wires the manifests, the plugins and the providers into plan and apply.

This is what the CLI (and anyone embedding faasops) calls. Data flows one way: manifests →
desired model → actual state (read in batches) → diff → plan → executor → providers.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import pluggy

from faasops.diff import diff_project
from faasops.errors import FaasopsError, PolicyViolation, Problem, StalePlanError
from faasops.executor import ApplyResult, Executor, ProviderSet, recorded_namespaces
from faasops.interruption import Interruption, RunAbandoned, RunInterrupted
from faasops.manifest import load_project
from faasops.model import Function, Project, ProviderConfig
from faasops.plan import Action, Plan, PlanOptions
from faasops.options import OptionSchemas
from faasops.plugin_manager import create_plugin_manager, create_provider, option_schemas
from faasops.progress import Reporter, reporter_for
from faasops.providers import ActualState, LockInfo, SupportsRenderDigest, SupportsSerial, SupportsSnapshot
from faasops.source import digest_directory

DEFAULT_LOCK_TIMEOUT_S = 0.0


class Engine:
    """One project, its plugins and its providers (created lazily, closed by :meth:`close`)."""

    def __init__(self, project: Project, pm: pluggy.PluginManager | None = None):
        self.project = project
        self.pm = pm or create_plugin_manager()
        self._interruption: Interruption | None = None  # while :meth:`locked` holds the lock
        self.warnings: tuple[Problem, ...] = ()  # deprecated option names in the manifests
        self._planned_state: ActualState | None = None  # read by the last plan (see _state_of)

    @cached_property
    def option_schemas(self) -> OptionSchemas:
        return option_schemas(self.pm)

    def override_options(self, slot: str, **options: Any) -> list[str]:
        """Set provider options from the command line (e.g. ``--force-conflicts``) before the
        providers are created: only those the slot's type declares (a type that declares none
        gets them all). Returns the names it skipped, for the caller to say so."""
        assert "providers" not in self.__dict__, "providers already created"
        config = self.project.providers[slot]
        declared = self.option_schemas.get(slot, config.type)
        skipped = [name for name in options if declared is not None and not declared.declares(name)]
        kept = {name: value for name, value in options.items() if name not in skipped}
        providers = {**self.project.providers, slot: replace(config, options={**config.options, **kept})}
        self.project = replace(self.project, providers=providers)
        return skipped

    @classmethod
    def load(cls, root: Path, environment: str | None = None, pm: pluggy.PluginManager | None = None) -> "Engine":
        """The engine of the project in ``root``, its provider options checked against what the
        plugins declare; deprecated option names are in :attr:`warnings`."""
        pm = pm or create_plugin_manager()
        warnings: list[Problem] = []
        engine = cls(load_project(root, environment, option_schemas(pm), warnings), pm)
        engine.warnings = tuple(warnings)
        return engine

    # ------------------------------------------------------------------ providers

    @cached_property
    def providers(self) -> ProviderSet:
        make = lambda slot: create_provider(self.pm, self.project, slot)  # noqa: E731
        return ProviderSet(
            state=make("state"), sources=make("sources"), builder=make("builder"),
            registry=make("registry"), scaffolder=make("scaffolder"), deployer=make("deployer"),
        )

    def operations_provider(self, slot: str, type_: str | None = None) -> Any:
        """The ``logs``/``metrics``/``invoker`` provider, or another type of it (``--source``).

        Options of other types may be nested under their name in the slot's settings
        (``logs: {type: dynamodb, table: t, loki: {url: …}}``); each provider sees only its own.
        """
        from faasops.plugin_manager import provider_types

        config = self.project.provider(slot)
        known = {t for t, _ in provider_types(self.pm).get(slot, [])}
        if type_ and type_ != config.type:
            nested = config.options.get(type_)
            return create_provider(self.pm, self.project, slot,
                                   ProviderConfig(slot, type_, dict(nested) if isinstance(nested, dict) else {}))
        own = {k: v for k, v in config.options.items() if not (k in known and isinstance(v, dict))}
        return create_provider(self.pm, self.project, slot, replace(config, options=own))

    @property
    def state(self) -> Any:
        return self.providers.state

    def close(self) -> None:
        if "providers" in self.__dict__:
            self.providers.state.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plan

    def desired_specs(self, functions: list[Function]) -> dict[str, dict[str, Any]]:
        """Each function's full desired spec: manifest settings + source digest + toolchain."""
        toolchain = self.providers.builder.toolchain
        # Functions sharing a source directory share its digest: hash each directory once per call.
        digests: dict[Path, str] = {}
        for f in functions:
            if f.source_dir not in digests:
                digests[f.source_dir] = digest_directory(f.source_dir)
        return {
            f.address: {**f.spec(), "source_hash": digests[f.source_dir], "toolchain": toolchain}
            for f in functions
        }

    def plan(self, options: PlanOptions | None = None) -> Plan:
        """Compare the manifests with the actual state and return the plan. Writes nothing."""
        options = options or PlanOptions()
        p = self.providers
        observing = None
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="faasops-read")
        try:
            # The state and the cluster are read at the same time (two services, two chains of
            # round trips) while this thread works out the desired side.
            reading = pool.submit(p.state.read)
            if options.refresh and not options.destroy:
                workspaces = [ws for ws in self.project.workspaces if options.selection.covers(ws.name)]
                observing = pool.submit(p.deployer.observe, self.project, workspaces)
            covered = [f for f in self.project.functions() if options.selection.covers(f.address)]
            specs = {} if options.destroy else self.desired_specs(covered)
            inputs_digest = self.inputs_digest(options, specs)
            actual = reading.result()
            render_digest = self._render_digest()
            if observing is not None and render_digest is not None:
                # What the drift check of unchanged functions needs, while the cluster is read.
                render_digest = _digests_ahead(render_digest, covered, actual, specs)
            live = observing.result() if observing is not None else None
        finally:
            # On an error, don't wait for the other read to give up on its own.
            pool.shutdown(wait=False, cancel_futures=True)
        changes, warnings = diff_project(
            self.project, actual, specs, live,
            lambda fn, artifact: p.scaffolder.render(self.project, fn, artifact),
            options,
            render_digest,
        )
        # Apply hands this to the providers when it applies this very plan (same serial).
        self._planned_state = actual
        plan = Plan(
            project=self.project.name,
            environment=self.project.environment,
            created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            state_serial=actual.serial,
            changes=tuple(changes),
            warnings=tuple(warnings),
            options=options,
            inputs_digest=inputs_digest,
        )
        self.check_policy(plan)
        return plan

    def _render_digest(self) -> Callable[[Function, str], str] | None:
        scaffolder = self.providers.scaffolder
        if not isinstance(scaffolder, SupportsRenderDigest):
            return None
        return lambda fn, artifact: scaffolder.render_digest(self.project, fn, artifact)

    def inputs_digest(self, options: PlanOptions, specs: dict[str, dict[str, Any]] | None = None) -> str:
        """A fingerprint of everything on the desired side a plan was computed from: the covered
        workspaces' and functions' specs (sources included) and the plan options."""
        if specs is None:
            covered = [f for f in self.project.functions() if options.selection.covers(f.address)]
            specs = {} if options.destroy else self.desired_specs(covered)
        workspaces = {ws.name: ws.spec() for ws in self.project.workspaces if options.selection.covers(ws.name)}
        payload = {"project": self.project.name, "environment": self.project.environment,
                   "options": options.as_dict(), "workspaces": workspaces, "functions": specs}
        return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def check_saved_plan(self, plan: Plan) -> None:
        """Refuse a saved plan made for another project, or from other manifests or sources."""
        if plan.project != self.project.name or plan.environment != self.project.environment:
            raise StalePlanError(
                f"the plan was made for project {plan.project!r} (environment {plan.environment!r}), "
                f"not {self.project.name!r} (environment {self.project.environment!r})"
            )
        if self.inputs_digest(plan.options) != plan.inputs_digest:
            raise StalePlanError(
                "the manifests or function sources changed since the plan was made; "
                "run `faasops plan --out FILE` again"
            )

    def check_policy(self, plan: Plan) -> None:
        violations = [v for result in self.pm.hook.faasops_check_plan(plan=plan, project=self.project) for v in (result or ())]
        if violations:
            raise PolicyViolation(violations)

    # ------------------------------------------------------------------ apply

    @contextmanager
    def locked(self, command: str, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[LockInfo]:
        """Hold the state lock, and handle SIGINT and SIGTERM while it is held (in the main
        thread; see :mod:`faasops.interruption`): the lock is released only once no step of
        this process can still write.

        Raises :class:`RunInterrupted` after releasing the lock when a signal arrived (at once
        when nothing was being applied; after the running steps finished otherwise), and lets
        :class:`RunAbandoned` through *without* releasing it (a worker may still write: the
        caller must exit the process now)."""
        info = LockInfo(
            id=uuid.uuid4().hex[:16],
            holder=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            command=command,
            created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            expires_at="",
            ci_url=_ci_run_url(),
        )
        interruption = Interruption()
        with interruption.installed():  # already while waiting for the lock (--lock-timeout)
            lock = self.state.acquire_lock(info, timeout_s)
            self._interruption = interruption
            try:
                yield lock
            except RunAbandoned:
                raise  # keep the lock: this process exits while a worker may still write
            except BaseException:
                interruption.phase = "finishing"  # a signal now must not cut the release short
                self.state.release_lock(lock.id)
                raise
            else:
                interruption.phase = "finishing"
                self.state.release_lock(lock.id)
            finally:
                self._interruption = None
            if interruption.signum is not None:
                raise RunInterrupted(interruption.signum)

    def check_fresh(self, plan: Plan) -> None:
        """Refuse a plan made against another state than the current one."""
        serial = self.state.serial() if isinstance(self.state, SupportsSerial) else self.state.read().serial
        if serial != plan.state_serial:
            raise StalePlanError(
                f"the plan is stale: the state changed since it was made (serial {plan.state_serial} → "
                f"{serial}); run `faasops plan` again"
            )

    def _state_of(self, plan: Plan) -> ActualState | None:
        """The state ``plan`` was made from, when this engine read it (a saved plan applied in
        another process: None, and the providers ask their services)."""
        state = self._planned_state
        return state if state is not None and state.serial == plan.state_serial else None

    def _recorded_namespaces(self, plan: Plan) -> dict[str, str]:
        """Where deletes and replaces find the old objects: the namespaces as recorded. Only
        read when the plan has such changes (at 10,000 functions the state is 8 Query pages)."""
        moves = any(c.action in (Action.DELETE, Action.REPLACE) for c in plan.actionable)
        return recorded_namespaces(self.state.read().workspaces) if moves else {}

    def apply(
        self,
        plan: Plan,
        *,
        parallelism: int = 4,
        continue_on_error: bool = False,
        reporter: Reporter | None = None,
    ) -> ApplyResult:
        """Execute ``plan``. The caller holds the lock (see :meth:`locked`, which also makes a
        signal stop the run between steps)."""
        self.check_policy(plan)
        self.check_fresh(plan)
        self.pm.hook.faasops_pre_apply(plan=plan, project=self.project)
        executor = Executor(
            self.project, self.providers, reporter or reporter_for(sys.stderr),
            parallelism=parallelism, continue_on_error=continue_on_error,
            on_step=lambda address, step, status, message: self.pm.hook.faasops_step_finished(
                project=self.project, address=address, step=step, status=status, message=message
            ),
            on_step_started=lambda address, step: self.pm.hook.faasops_step_started(
                project=self.project, address=address, step=step
            ),
            interrupt=self._interruption.stop if self._interruption else None,
            recorded=self._state_of(plan),
        )
        namespaces = self._recorded_namespaces(plan)
        if self._interruption is None:
            result = executor.run(plan, namespaces)
        else:
            result = self._interruption.run_workers(lambda: executor.run(plan, namespaces), executor.abort)
        self._write_snapshot()
        self.pm.hook.faasops_post_apply(plan=plan, project=self.project, result=result)
        return result

    def _write_snapshot(self) -> None:
        """Let the state backend write a snapshot for quicker plans, if it keeps one. It only
        ever speeds reads up: when it can't be written, plans read the records."""
        if not isinstance(self.state, SupportsSnapshot):
            return
        try:
            self.state.write_snapshot()
        except FaasopsError:
            pass


def _digests_ahead(render_digest: Callable[[Function, str], str], functions: list[Function], actual: ActualState,
                   specs: dict[str, dict[str, Any]]) -> Callable[[Function, str], str]:
    """``render_digest``, computed now for every function recorded with a deploy fingerprint
    and an unchanged spec (the ones the drift check will ask about)."""
    ahead: dict[tuple[str, str], str] = {}
    for function in functions:
        record = actual.functions.get(function.address)
        if record is not None and record.deployed and record.spec == specs.get(function.address):
            ahead[function.address, record.artifact] = render_digest(function, record.artifact)

    def digest(function: Function, artifact: str) -> str:
        found = ahead.get((function.address, artifact))
        return found if found is not None else render_digest(function, artifact)

    return digest


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return f"uid {os.getuid()}"


def _ci_run_url() -> str:
    if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    return os.environ.get("CI_JOB_URL", "")
