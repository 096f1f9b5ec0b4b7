"""Provider options: the JSON Schema each provider type declares for its ``providers.<slot>``
block of faas.yaml, and checking a block against it.

A plugin declares the options of every type it serves with the
:func:`~faasops.hookspecs.faasops_provider_options` hook, as ``(slot, type, schema)``. The schema
is a JSON Schema (2020-12) object; what faasops reads from it:

- ``properties``: one entry per option, with its ``type``, a ``description`` and, when it has a
  fixed default, ``default`` (filled in before the provider is created, so the provider reads
  ``config.options[name]``).
- ``required``: the options the provider can't work without.
- ``additionalProperties``: undeclared options are refused unless the schema sets it itself.
- ``aliases`` (faasops' own keyword) on a property: older names of the option, still accepted
  with a deprecation warning; the provider only ever sees the property's own name.
- ``writeOnly: true`` on a property: its value is never shown in a message (an option naming an
  environment variable that holds a secret could hold the pasted secret by mistake).
- ``x-template-settings: true`` on the schema: undeclared options are settings the user's
  templates read (``options.<name>``) and are accepted, unless the name is close to a declared
  one (then it is a misspelling and refused).

The same check runs twice: located (``faas.yaml:12:5 providers.deployer.wait_timout: …``) while
the manifests load, and on the options a provider is finally created with (command-line
overrides, the Builder and Platform APIs), which also renames aliases and fills in defaults.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from faasops.errors import Problem, ProviderError

ALIASES = "aliases"
TEMPLATE_SETTINGS = "x-template-settings"

_TYPE_NAMES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "object": "mapping", "array": "list", "null": "null"}


@dataclass(frozen=True)
class OptionInfo:
    """One declared option as ``faasops plugins`` shows it."""

    name: str
    type: str
    default: Any
    description: str
    required: bool
    aliases: tuple[str, ...]
    secret: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default, "description": self.description,
                "required": self.required, "aliases": list(self.aliases), "secret": self.secret}


@dataclass(frozen=True)
class OptionsSchema:
    """The options one provider type (``slot``, ``type``) declares."""

    slot: str
    type: str
    schema: Mapping[str, Any]

    @property
    def properties(self) -> Mapping[str, Any]:
        properties = self.schema.get("properties", {})
        return properties if isinstance(properties, Mapping) else {}

    def declares(self, name: str) -> bool:
        """Whether ``name`` is one of this type's options (by its own name)."""
        return name in self.properties

    def aliases(self) -> dict[str, str]:
        """``{old name: option}`` for every deprecated spelling."""
        return {alias: name for name, prop in self.properties.items() for alias in prop.get(ALIASES, ())}

    def options(self) -> list[OptionInfo]:
        """Every declared option, in declaration order."""
        required = set(self.schema.get("required", ()))
        return [
            OptionInfo(
                name=name,
                type=_type_name(prop),
                default=prop.get("default"),
                description=str(prop.get("description", "")),
                required=name in required,
                aliases=tuple(prop.get(ALIASES, ())),
                secret=bool(prop.get("writeOnly")),
            )
            for name, prop in self.properties.items()
        ]

    def _validation_schema(self) -> dict[str, Any]:
        """The schema a block (``type`` and options) is checked against: aliases checked as
        their option, ``type`` allowed, undeclared options refused unless the schema says."""
        # Old names and `type` as exact-name patterns: checked, allowed, but not listed among the
        # options a message suggests.
        patterns = dict(self.schema.get("patternProperties", {}))
        for alias, name in self.aliases().items():
            patterns[f"^{re.escape(alias)}$"] = self.properties[name]
        patterns["^type$"] = {"const": self.type}
        schema = {**self.schema, "properties": dict(self.properties), "patternProperties": patterns}
        if self.schema.get(TEMPLATE_SETTINGS):
            schema["additionalProperties"] = True
        else:
            schema.setdefault("additionalProperties", False)
        return schema

    def check(self, tree: Any, path: list[Any], file: str,
              skip: Iterable[str] = ()) -> tuple[list[Problem], list[Problem]]:
        """``(problems, deprecation warnings)`` of the block at ``path`` in ``tree`` (a YAML tree
        with locations, or plain values); keys in ``skip`` are left to other checks, and so are
        credential options (refused everywhere by the manifest's own rule)."""
        from faasops.manifest.project_builder import CREDENTIAL_OPTIONS
        from faasops.manifest.schema import block_problems, did_you_mean, locate
        from faasops.manifest.yaml_source import format_path

        block: Any = tree
        for part in path:
            block = block[part]
        skipped = set(skip) | {key for key in block if key.lower() in CREDENTIAL_OPTIONS}
        # `key: null` leaves an option unset, as it always has.
        node = {key: value for key, value in block.items() if key not in skipped and value is not None}
        problems = block_problems(self._validation_schema(), node, tree, path, file, noun="option")
        warnings: list[Problem] = []

        def at(key: str, message: str) -> Problem:
            loc, _raw = locate(tree, path + [key], on_key=True)
            return Problem(loc.file or file, loc.line, loc.col, format_path(path + [key]), message)

        for alias, name in self.aliases().items():
            if alias not in node:
                continue
            if name in node:
                problems.append(at(alias, f"'{alias}' is the old name of '{name}': write only '{name}'"))
            else:
                warnings.append(at(alias, f"'{alias}' is deprecated: write '{name}' (the old name still works)"))
        if self.schema.get(TEMPLATE_SETTINGS):
            known = [*self.properties, *self.aliases()]
            for key in node:
                hint = did_you_mean(key, known) if key not in known and key != "type" else ""
                if hint:
                    problems.append(at(key, f"unknown option '{key}'{hint}"))
        return problems, warnings

    def checked(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` as the provider gets them: checked (a :class:`ProviderError` listing every
        problem), aliases renamed, unset options dropped and defaults filled in."""
        from faasops.manifest.project_builder import CREDENTIAL_OPTIONS

        credentials = sorted(key for key in options if key.lower() in CREDENTIAL_OPTIONS)
        if credentials:
            named = ", ".join(repr(key) for key in credentials)
            raise ProviderError(
                f"providers.{self.slot}: remove {named}: faasops never reads credentials from faas.yaml; the "
                "providers read them from the environment (see `faasops plugins`)"
            )
        tree = {"providers": {self.slot: {"type": self.type, **options}}}
        problems, _warnings = self.check(tree, ["providers", self.slot], "")
        if problems:
            raise ProviderError("\n".join(f"{problem.path}: {problem.message}" for problem in problems))
        aliases = self.aliases()
        values = {aliases.get(key, key): value for key, value in options.items() if value is not None}
        for name, prop in self.properties.items():
            if name not in values and "default" in prop:
                values[name] = copy.deepcopy(prop["default"])
        return values


class OptionSchemas:
    """Every declared :class:`OptionsSchema`, by slot and type."""

    def __init__(self, declared: Iterable[OptionsSchema] = ()):
        self._by_type = {(schema.slot, schema.type): schema for schema in declared}

    def get(self, slot: str, type_: str) -> OptionsSchema | None:
        return self._by_type.get((slot, type_))

    def types(self, slot: str) -> set[str]:
        return {type_ for declared_slot, type_ in self._by_type if declared_slot == slot}

    def __iter__(self) -> Iterator[OptionsSchema]:
        return iter(self._by_type.values())

    def check_slot(self, tree: Any, slot: str, file: str) -> tuple[list[Problem], list[Problem]]:
        """``(problems, warnings)`` of ``providers.<slot>`` in the root manifest ``tree``. Options of
        another type of the same day-2 slot may be nested under its name (``logs: {type: dynamodb,
        loki: {url: …}}``, for ``faasops logs --source loki``): each is checked as that type's."""
        from faasops.model import OPERATIONS_SLOTS

        block = tree["providers"][slot]
        declared = self.get(slot, block["type"])
        if declared is None:  # a third-party type that declares no options: its own business
            return [], []
        nested = [key for key, value in block.items()
                  if slot in OPERATIONS_SLOTS and key in self.types(slot) and isinstance(value, Mapping)]
        problems, warnings = declared.check(tree, ["providers", slot], file, skip=nested)
        for type_ in nested:
            other = self.get(slot, type_)
            assert other is not None
            inner_problems, inner_warnings = other.check(tree, ["providers", slot, type_], file)
            problems += inner_problems
            warnings += inner_warnings
        return problems, warnings


def _type_name(prop: Mapping[str, Any]) -> str:
    kinds = prop.get("type")
    if kinds is None and ("anyOf" in prop or "oneOf" in prop):
        return " or ".join(_type_name(branch) for branch in prop.get("anyOf") or prop["oneOf"])
    if kinds is None and "enum" in prop:
        return " | ".join(str(choice) for choice in prop["enum"])
    if kinds is None:
        return "any"
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return " or ".join(_TYPE_NAMES.get(kind, str(kind)) for kind in kinds)


def seconds_option(description: str, default: float | None = None, aliases: Iterable[str] = ()) -> dict[str, Any]:
    """The schema of a duration option (named ``*_seconds``): a positive number of seconds."""
    prop: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0, "description": description}
    if default is not None:
        prop["default"] = default
    if aliases:
        prop[ALIASES] = list(aliases)
    return prop


def positive_seconds(value: Any, option: str) -> float:
    """``value`` as a positive number of seconds, or a ProviderError naming ``option``
    (e.g. ``providers.deployer.wait_timeout_seconds``): for providers constructed directly, whose
    options no schema has checked."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0 or isinstance(value, bool):
        raise ProviderError(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds

