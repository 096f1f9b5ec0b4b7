"""Checking a manifest tree against ``faas.yaml.schema`` and phrasing each error for a person.

jsonschema's own messages ("Additional properties are not allowed ('sorce' was unexpected)")
name neither the place nor the fix. Every error here becomes a :class:`Problem` at the YAML node
it is about, saying what was expected and, where it can guess, what the author meant.
"""

from __future__ import annotations

import difflib
import json
import re
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Callable, Iterable

import fastjsonschema

if TYPE_CHECKING:  # jsonschema is imported when a manifest has a problem to explain
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

from faasops.errors import Problem
from faasops.names import shown as short
from faasops.manifest.yaml_source import YMap, YSeq, format_path
from faasops.model import Location

SCHEMA_RESOURCE = "faas.yaml.schema"


@cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of faas.yaml, as shipped inside the faasops package."""
    return json.loads((files("faasops") / SCHEMA_RESOURCE).read_text(encoding="utf-8"))


@cache
def _validator(root_file: bool) -> Draft202012Validator:
    schema = dict(manifest_schema())
    # The schema's top level is the root faas.yaml (what an editor pointed at the schema checks);
    # a split file is checked against $defs/manifest, which allows the root-only keys so that
    # project_builder can say where they belong instead of "unknown key".
    schema["$ref"] = "#/$defs/rootManifest" if root_file else "#/$defs/manifest"
    return _strict_validator_class()(schema)


@cache
def _strict_validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 3.0 as an integer; YAML reads `replicas: 3.0` as a float, which
    # Kubernetes' int32 fields refuse (and which once deployed 1 replica). Whole numbers only.
    strict_integers = Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _checker, value: _is_int(value))
    return validators.extend(Draft202012Validator, type_checker=strict_integers)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def block_problems(schema: dict[str, Any], node: Any, tree: Any, prefix: list[Any], file: str,
                   noun: str = "key") -> list[Problem]:
    """Every violation of ``schema`` by ``node``, the block of ``tree`` at ``prefix`` (e.g. a
    provider slot's options at ``["providers", "deployer"]``), located in ``tree`` and worded as
    the manifest's own problems; ``noun`` names what its keys are ("unknown option 'x'")."""
    errors = [leaf for error in _strict_validator_class()(schema).iter_errors(node) for leaf in _relevant(error)]
    mistyped = {tuple(error.absolute_path) for error in errors if error.validator == "type"}
    problems: list[Problem] = []
    for error in errors:
        if error.validator == "type" or tuple(error.absolute_path) not in mistyped:
            problems.extend(_explain(error, tree, file, prefix, noun))
    return list(dict.fromkeys(problems))


def _has_float(tree: Any) -> bool:
    if isinstance(tree, float):
        return True
    if isinstance(tree, dict):
        return any(_has_float(value) for value in tree.values())
    if isinstance(tree, list):
        return any(_has_float(value) for value in tree)
    return False


def _floats_as_decimals(tree: Any) -> Any:
    """``tree`` with every float a :class:`~decimal.Decimal`: fastjsonschema, like JSON Schema,
    takes the float 3.0 for an integer, but a Decimal only for a number — so 3.0 fails where a
    whole number is expected and 0.5 still passes as a quantity."""
    if isinstance(tree, float):
        return Decimal(repr(tree))
    if isinstance(tree, dict):
        return {key: _floats_as_decimals(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_floats_as_decimals(value) for value in tree]
    return tree


# Annotation keywords: next to a $ref they change nothing.
_ANNOTATIONS = frozenset({"$ref", "description", "title", "examples", "default", "errorMessage",
                          "patternErrorMessage", "markdownDescription", "$comment"})


@cache
def _quick_check(root_file: bool) -> Callable[[Any], Any]:
    """The schema compiled to Python by fastjsonschema: only ever asked "is this valid?", and
    only trusted when it says yes (the messages come from jsonschema). Its drafts predate 2020-12,
    where keywords next to a ``$ref`` are ignored, so such places are rewritten as an ``allOf``
    of the two — which is what 2020-12 means by them."""
    # The top level's own $ref is the root file's (for editors); as in _validator, it is
    # replaced by the definition of the file at hand.
    schema = {k: v for k, v in manifest_schema().items() if k not in ("$schema", "$defs", "$ref")}
    definitions = _siblings_of_refs_in_all_of(manifest_schema()["$defs"])
    # As _validator: the top level, and the root file's or a split file's own definition.
    top = "#/$defs/rootManifest" if root_file else "#/$defs/manifest"
    whole = {"$defs": definitions, "allOf": [_siblings_of_refs_in_all_of(schema), {"$ref": top}]}
    return fastjsonschema.compile(whole, use_default=False)  # never write defaults into the tree


def _siblings_of_refs_in_all_of(node: Any) -> Any:
    if isinstance(node, list):
        return [_siblings_of_refs_in_all_of(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _siblings_of_refs_in_all_of(value) for key, value in node.items()}
    if "$ref" in node and set(node) - _ANNOTATIONS:
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return {"allOf": [{"$ref": node["$ref"]}, rest]}
    return node


def _quickly_valid(tree: Any, root_file: bool) -> bool:
    if _has_float(tree):
        tree = _floats_as_decimals(tree)
    try:
        _quick_check(root_file)(tree)
    except (fastjsonschema.JsonSchemaException, ArithmeticError):  # ArithmeticError: NaN compared
        return False
    return True


def schema_problems(tree: Any, file: str, root_file: bool) -> list[Problem]:
    """Every schema violation in ``tree`` (one manifest file, overlays merged), located."""
    if _quickly_valid(tree, root_file):
        return []
    errors = [leaf for error in _validator(root_file).iter_errors(tree) for leaf in _relevant(error)]
    # A value of the wrong type also fails every rule about its content; the type is the news.
    mistyped = {tuple(error.absolute_path) for error in errors if error.validator == "type"}
    problems: list[Problem] = []
    for error in errors:
        if error.validator == "type" or tuple(error.absolute_path) not in mistyped:
            problems.extend(_explain(error, tree, file))
    return list(dict.fromkeys(problems))


def _relevant(error: ValidationError) -> list[ValidationError]:
    """The errors worth reporting for ``error``: for an anyOf/oneOf, every error of the
    alternative that fits best (best_match alone would keep just one of them)."""
    from jsonschema.exceptions import best_match

    if error.validator in ("anyOf", "oneOf") and error.context:
        # When the value has the type of one alternative only (a mapping, where the choice is
        # a mapping or null), that alternative's errors are the news: `max: 3.0` inside it.
        depth = len(error.absolute_schema_path)
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(list(sub.absolute_schema_path)[depth], []).append(sub)
        fitting = [subs for subs in branches.values()
                   if not any(sub.validator == "type" and sub.absolute_path == error.absolute_path for sub in subs)]
        if len(fitting) == 1 and len(branches) > 1:
            return [leaf for sub in fitting[0] for leaf in _relevant(sub)]
    best = best_match([error])
    if best is error:
        return [error]
    depth = len(error.absolute_schema_path)
    branch = list(best.absolute_schema_path)[: depth + 1]
    same_branch = [sub for sub in error.context or () if list(sub.absolute_schema_path)[: depth + 1] == branch]
    return [leaf for sub in same_branch for leaf in _relevant(sub)] or [best]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'source'?)`` when ``word`` is close to one of ``choices``, else ``""``."""
    choices = list(choices)
    lowered = word.lower()
    by_case = {choice.lower(): choice for choice in choices}
    match = by_case.get(lowered) or next(iter(difflib.get_close_matches(word, choices, n=1, cutoff=0.6)), None)
    if match is None:  # `environment` for `env`: a key written out in full
        match = next((choice for choice in choices if len(choice) >= 3 and lowered.startswith(choice.lower())), None)
    return f" (did you mean '{match}'?)" if match else ""


def describe(value: Any, raw: str | None = None) -> str:
    """How a YAML value reads back to its author: ``the number 8080``, ``a mapping``…"""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        text = str(value).lower()
        written = f" (YAML reads {raw} as {text})" if raw and raw.lower() != text else ""
        return f"the boolean {text}{written}"
    if isinstance(value, (int, float)):
        return f"the number {raw or value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {short(value)}"
    return f"a {type(value).__name__} ({raw})" if raw else f"a {type(value).__name__}"


_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def locate(tree: Any, path: list[Any], on_key: bool = False) -> tuple[Location, str | None]:
    """The location (and raw scalar text) of the value at ``path``; of its key with ``on_key``."""
    node, loc, raw = tree, getattr(tree, "loc", None), None
    for depth, part in enumerate(path):
        if isinstance(node, YMap) and part in node:
            loc = node.key_locs[part] if on_key and depth == len(path) - 1 else node.value_locs[part]
            raw = node.raw.get(part)
        elif isinstance(node, YSeq) and isinstance(part, int) and part < len(node):
            loc, raw = node.item_locs[part], node.raw.get(part)
        else:
            break
        node = node[part]
    return loc or Location(""), raw


def _problem(tree: Any, file: str, path: list[Any], message: str, on_key: bool = False) -> Problem:
    loc, _raw = locate(tree, path, on_key)
    return Problem(loc.file or file, loc.line, loc.col, format_path(path), message)


def _explain(error: ValidationError, tree: Any, file: str, prefix: list[Any] | None = None,
             noun: str = "key") -> list[Problem]:
    path = list(prefix or ()) + list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    raw = locate(tree, path)[1]
    kind = error.validator

    if schema.get("writeOnly") and kind not in ("additionalProperties", "required"):
        # writeOnly marks a value that may be a secret pasted by mistake: never echo it.
        wanted = schema.get("errorMessage") or schema.get("patternErrorMessage")
        if kind == "type":
            kinds = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
            wanted = " or ".join(_TYPE_NAMES.get(kind, str(kind)) for kind in kinds)
        said = f"must be {wanted}" if wanted else f"is not valid ({kind})"
        return [_problem(tree, file, path, f"{said}; the value is not shown (it may be a secret)")]

    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        patterns = [re.compile(pattern) for pattern in schema.get("patternProperties", {})]
        problems = []
        for key in value:
            if key in allowed or any(pattern.search(key) for pattern in patterns):
                continue
            hint = did_you_mean(key, allowed) or (f"; allowed {noun}s: {', '.join(allowed)}" if allowed else "")
            problems.append(_problem(tree, file, path + [key], f"unknown {noun} '{key}'{hint}", on_key=True))
        return problems
    if kind == "required":
        missing = re.match(r"'(.*)' is a required property", error.message)
        name = missing.group(1) if missing else error.message
        return [_problem(tree, file, path, f"missing required {noun} '{name}'")]
    if error.absolute_schema_path and "propertyNames" in error.absolute_schema_path:
        # jsonschema reports a bad key at its mapping; point at the key itself.
        key = value
        if "patternErrorMessage" in schema:
            message = f"key {short(key)} is {schema['patternErrorMessage']}"
        else:
            message = f"key {short(key)}: {error.message}"
        return [_problem(tree, file, path + [key], message, on_key=True)]
    if "errorMessage" in schema:
        return [_problem(tree, file, path, schema["errorMessage"] + _alternatives_found(schema, value))]
    if kind in ("pattern", "maxLength", "minLength") and "patternErrorMessage" in schema:
        message = f"{short(value)} is {schema['patternErrorMessage']}"
        if kind == "maxLength":
            message += f" (it has {len(value)} characters)"
        return [_problem(tree, file, path, message)]
    if kind == "minLength":
        return [_problem(tree, file, path, "must not be empty")]
    if kind == "type":
        return [_problem(tree, file, path, _type_message(schema.get("type"), value, raw))]
    if kind == "const":
        return [_problem(tree, file, path, f"must be {schema['const']!r} (got {short(value)})")]
    if kind == "enum":
        choices = ", ".join(repr(option) for option in schema["enum"])
        hint = did_you_mean(value, [str(option) for option in schema["enum"]]) if isinstance(value, str) else ""
        return [_problem(tree, file, path, f"{short(value)} is not one of {choices}{hint}")]
    if kind == "minimum":
        return [_problem(tree, file, path, f"must be at least {schema['minimum']} (got {value})")]
    if kind == "exclusiveMinimum":
        return [_problem(tree, file, path, f"must be more than {schema['exclusiveMinimum']} (got {value})")]
    if kind == "maximum":
        return [_problem(tree, file, path, f"must be at most {schema['maximum']} (got {value})")]
    return [_problem(tree, file, path, error.message)]


def _alternatives_found(schema: dict[str, Any], value: Any) -> str:
    """For a oneOf/anyOf over alternative keys, which of them the mapping has."""
    branches = schema.get("oneOf") or schema.get("anyOf") or []
    keys = [branch["required"][0] for branch in branches if len(branch.get("required", ())) == 1]
    if not isinstance(value, dict) or not keys or len(keys) != len(branches):
        return ""
    found = [key for key in keys if key in value]
    return f" (found {' and '.join(found)})" if len(found) > 1 else ""


def _type_message(expected: Any, value: Any, raw: str | None) -> str:
    kinds = expected if isinstance(expected, list) else [expected]
    wanted = " or ".join(_TYPE_NAMES.get(kind, str(kind)) for kind in kinds)
    message = f"expected {wanted}, got {describe(value, raw)}"
    if "integer" in kinds and isinstance(value, float):
        whole = f"write {int(value)} " if value.is_integer() and abs(value) < 1e18 else "write a whole number "
        return message + f"; {whole}without a decimal point or exponent (YAML reads {raw or value} as a decimal number)"
    if "string" in kinds:
        if value is None and raw in (None, "", "~"):
            message += "; write \"\" for an empty string"
        elif raw is not None:
            message += f"; quote it: \"{raw}\""
    return message
