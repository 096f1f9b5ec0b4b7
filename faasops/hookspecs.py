"""Every hook a faasops plugin can implement — the whole plugin contract in one file.

A plugin is a module (or object) registered under the ``faasops`` entry-point group::

    # pyproject.toml of faasops-foo
    [project.entry-points.faasops]
    foo = "faasops_foo"

whose functions carry ``@faasops.hookimpl``. The built-in providers (``faasops.plugins.local``,
``…componentize``, ``…spinkube``, ``…aws``, ``…kubernetes``) are registered through the same
entry-point group, so they use exactly this contract.

Provider factory hooks are ``firstresult``: each slot of ``faas.yaml`` (``state``, ``sources``,
``builder``, ``registry``, ``scaffolder``, ``deployer``, and for day-2 commands ``logs``,
``metrics``, ``invoker``) names a ``type``; faasops calls the
slot's factory hook and the first plugin that recognises the type returns a provider object
(see :mod:`faasops.providers` for the protocols). A plugin that does not serve that type
returns ``None``. Plugins advertise the types they serve through :func:`faasops_provider_types`
so ``faasops plugins`` and error messages can list them.

Factory hooks are called in the main thread, once per command and slot, before anything is read;
they should check the options and return quickly (connect on first use). Options a provider
can't use are a :class:`~faasops.errors.ProviderError` naming ``providers.<slot>.<option>``.
Lifecycle hooks say below which thread calls them. Optional provider capabilities are small
protocols in :mod:`faasops.providers` (``SupportsSerial``, ``SupportsSnapshot``,
``SupportsRenderDigest``, ``SupportsDeployNote``), and :mod:`faasops.conformance` holds the
behavioural tests a provider of each slot must pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from faasops.model import Project, ProviderConfig
    from faasops.plan import Plan
    from faasops.providers import (
        Builder,
        Deployer,
        Invoker,
        LogSource,
        MetricsSource,
        Registry,
        Scaffolder,
        SourceStore,
        StateBackend,
    )

PROJECT_NAME = "faasops"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


@hookspec
def faasops_provider_types() -> list[tuple[str, str, str]]:
    """Advertise the provider types this plugin serves.

    Returns a list of ``(slot, type, one-line description)``, e.g.
    ``[("builder", "componentize-py", "builds Python handlers with componentize-py")]``.
    Every result is collected (not firstresult).
    """


@hookspec
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    """Declare the options of each provider type this plugin serves, as JSON Schema.

    Returns a list of ``(slot, type, schema)``; the schema (JSON Schema 2020-12) describes the
    slot's block in ``faas.yaml`` without its ``type`` key::

        ("registry", "foo", {
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "the registry's base URL"},
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                                    "description": "read timeout per request",
                                    "aliases": ["timeout"]},
                "token_env": {"type": "string", "writeOnly": True,
                              "description": "environment variable holding the token"},
            },
            "required": ["url"],
        })

    ``faasops validate`` (and every command that loads the project) checks the block against it
    with located messages and did-you-mean; undeclared options are refused unless the schema sets
    ``additionalProperties``. The factory hook then receives ``config.options`` checked, with
    deprecated ``aliases`` renamed and every ``default`` filled in. ``writeOnly`` values are never
    shown in messages. Name durations ``*_seconds``. ``faasops plugins`` lists the options. A type
    declared nowhere is created with its options unchecked. See :mod:`faasops.options`. Every
    result is collected (not firstresult).
    """


# --------------------------------------------------------------------------------------------
# Provider factories (firstresult: the first non-None result wins)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def faasops_state_backend(config: ProviderConfig, project: Project) -> StateBackend | None:
    """Return a :class:`~faasops.providers.StateBackend` if ``config.type`` is yours, else None.

    ``config.options`` holds the slot's settings from ``faas.yaml`` (table names, endpoints …),
    checked against the type's :func:`faasops_provider_options` schema when it declares one.
    The backend is created once per command and closed with ``close()``.
    """


@hookspec(firstresult=True)
def faasops_source_store(config: ProviderConfig, project: Project) -> SourceStore | None:
    """Return a :class:`~faasops.providers.SourceStore` for ``config.type``, else None."""


@hookspec(firstresult=True)
def faasops_builder(config: ProviderConfig, project: Project) -> Builder | None:
    """Return a :class:`~faasops.providers.Builder` for ``config.type``, else None."""


@hookspec(firstresult=True)
def faasops_registry(config: ProviderConfig, project: Project) -> Registry | None:
    """Return a :class:`~faasops.providers.Registry` for ``config.type``, else None."""


@hookspec(firstresult=True)
def faasops_scaffolder(config: ProviderConfig, project: Project) -> Scaffolder | None:
    """Return a :class:`~faasops.providers.Scaffolder` for ``config.type``, else None."""


@hookspec(firstresult=True)
def faasops_deployer(config: ProviderConfig, project: Project) -> Deployer | None:
    """Return a :class:`~faasops.providers.Deployer` for ``config.type``, else None."""


@hookspec(firstresult=True)
def faasops_log_source(config: ProviderConfig, project: Project) -> LogSource | None:
    """Return a :class:`~faasops.providers.LogSource` for ``config.type`` (slot ``logs``), else
    None. ``faasops logs --source TYPE`` asks for another type with the options nested under
    that type's name in ``providers.logs``."""


@hookspec(firstresult=True)
def faasops_metrics_source(config: ProviderConfig, project: Project) -> MetricsSource | None:
    """Return a :class:`~faasops.providers.MetricsSource` for ``config.type`` (slot ``metrics``)."""


@hookspec(firstresult=True)
def faasops_invoker(config: ProviderConfig, project: Project) -> Invoker | None:
    """Return an :class:`~faasops.providers.Invoker` for ``config.type`` (slot ``invoker``)."""


# --------------------------------------------------------------------------------------------
# Plan / apply lifecycle
# --------------------------------------------------------------------------------------------


@hookspec
def faasops_check_plan(plan: Plan, project: Project) -> list[str] | None:
    """Policy check: return violation messages to veto ``plan`` (empty or None to accept).

    Called by ``plan`` and again by ``apply`` before anything changes. Every plugin's result is
    collected; any violation stops the run with exit code 1 and lists all violations. Must not
    write anything.
    """


@hookspec
def faasops_pre_apply(plan: Plan, project: Project) -> None:
    """Called once the plan is approved and the lock is held, before the first change.

    Raising :class:`faasops.errors.FaasopsError` aborts the apply with nothing changed.
    """


@hookspec
def faasops_post_apply(plan: Plan, project: Project, result: Any) -> None:
    """Called after apply finished (successfully or not) with the
    :class:`~faasops.executor.ApplyResult`. Exceptions are reported but do not undo anything."""


@hookspec
def faasops_step_started(project: Project, address: str, step: str) -> None:
    """Called when an apply step of a workspace or function starts — its task is already
    recorded as ``running``, none of its work is done yet — with the same ``address`` and
    ``step`` as the :func:`faasops_step_finished` call that follows. For progress displays and
    fault-injection tests (e.g. a crash test killing apply at a chosen step); called from worker
    threads. An exception fails the step."""


@hookspec
def faasops_step_finished(project: Project, address: str, step: str, status: str, message: str) -> None:
    """Called after every apply step of a workspace or function (``upload``, ``build``, ``push``,
    ``scaffold``, ``deploy``, ``record``, ``delete`` …) with its final status (``completed`` or
    ``failed``). For notifications and audit logs; called from worker threads."""
