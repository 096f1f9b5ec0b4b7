"""Loading plugins and creating the providers a project asks for."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from faasops import hookspecs
from faasops.errors import PluginError
from faasops.model import Project, ProviderConfig
from faasops.options import OptionSchemas, OptionsSchema

ENTRY_POINT_GROUP = "faasops"
# Extra plugin modules to load without packaging them (like `pytest -p`): "pkg.mod,other".
PLUGINS_ENV = "FAASOPS_PLUGINS"

_FACTORY_HOOKS = {
    "state": "faasops_state_backend",
    "sources": "faasops_source_store",
    "builder": "faasops_builder",
    "registry": "faasops_registry",
    "scaffolder": "faasops_scaffolder",
    "deployer": "faasops_deployer",
    "logs": "faasops_log_source",
    "metrics": "faasops_metrics_source",
    "invoker": "faasops_invoker",
}


def create_plugin_manager(extra_plugins: tuple[Any, ...] = ()) -> pluggy.PluginManager:
    """A plugin manager with every plugin of the ``faasops`` entry-point group loaded.

    Built-in providers are entry points of this package, so they load exactly like third-party
    ones. ``check_pending`` makes a misspelled ``faasops_*`` hook implementation fail loudly.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for plugin in extra_plugins:
        pm.register(plugin)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # an installed plugin that fails to import
        raise PluginError(f"a faasops plugin failed to load: {exc!r}") from exc
    for name in _env_plugins():
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise PluginError(f"plugin module {name!r} from ${PLUGINS_ENV} failed to import: {exc!r}") from exc
        if not pm.is_registered(module):  # already loaded through an entry point
            pm.register(module, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm


def _env_plugins() -> list[str]:
    return [name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]


def provider_types(pm: pluggy.PluginManager) -> dict[str, list[tuple[str, str]]]:
    """``{slot: [(type, description), …]}`` over every plugin."""
    found: dict[str, list[tuple[str, str]]] = {slot: [] for slot in _FACTORY_HOOKS}
    for result in pm.hook.faasops_provider_types():
        for slot, type_, description in result or ():
            found.setdefault(slot, []).append((type_, description))
    return found


def option_schemas(pm: pluggy.PluginManager) -> OptionSchemas:
    """The options every plugin declares for its provider types."""
    declared = []
    for result in pm.hook.faasops_provider_options():
        for slot, type_, schema in result or ():
            if not isinstance(schema, dict):
                raise PluginError(f"the options of {slot} type {type_!r} must be a JSON Schema object")
            declared.append(OptionsSchema(slot, type_, schema))
    return OptionSchemas(declared)


def create_provider(pm: pluggy.PluginManager, project: Project, slot: str,
                    config: ProviderConfig | None = None) -> Any:
    """The provider object for ``slot``, from the first plugin that serves its configured type
    (or ``config``, when a command picks another type, e.g. ``faasops logs --source loki``).

    When the type declares its options, the plugin gets them checked, with deprecated names
    renamed and defaults filled in."""
    config = config or project.provider(slot)
    declared = option_schemas(pm).get(slot, config.type)
    if declared is not None:
        config = ProviderConfig(config.slot, config.type, declared.checked(config.options))
    hook = getattr(pm.hook, _FACTORY_HOOKS[slot])
    provider = hook(config=config, project=project)
    if provider is None:
        known = ", ".join(sorted(t for t, _ in provider_types(pm).get(slot, []))) or "none"
        raise PluginError(
            f"no installed plugin provides {slot} type {config.type!r} "
            f"(available {slot} types: {known}; see `faasops plugins`)"
        )
    return provider


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin as ``faasops plugins`` shows it."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin with the hooks it implements and its distribution version."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        dist = dists.get(id(plugin))
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist.project_name if dist else "(registered in-process)",
                version=dist.version if dist else "",
                hooks=hooks,
            )
        )
    return sorted(infos, key=lambda i: i.name)


def entry_point_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
