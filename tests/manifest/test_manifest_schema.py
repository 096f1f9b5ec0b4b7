"""faas.yaml.schema: a valid 2020-12 schema, shipped in the package, helpful to editors."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator

from faasops.manifest.schema import manifest_schema

REPO = Path(__file__).resolve().parents[2]


def test_schema_is_valid_json_schema_2020_12():
    schema = json.loads((REPO / "faas.yaml.schema").read_text(encoding="utf-8"))

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_package_resource_is_the_repository_schema():
    resource = files("faasops") / "faas.yaml.schema"

    assert resource.read_text(encoding="utf-8") == (REPO / "faas.yaml.schema").read_text(encoding="utf-8")
    assert manifest_schema() == json.loads(resource.read_text(encoding="utf-8"))


def test_defaults_accept_exactly_the_function_settings():
    defs = manifest_schema()["$defs"]

    # Like the handler, `files` and `dependencies` belong to one source directory.
    per_source = {"name", "source", "handler", "files", "dependencies"}
    assert set(defs["defaults"]["properties"]) == set(defs["function"]["properties"]) - per_source


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}.{name}", sub
        for key, sub in node.items():
            if key not in ("if", "then", "else"):  # conditions restate documented properties
                yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            yield from _properties(sub, f"{where}[{index}]")


def test_every_property_is_documented_for_editors():
    undocumented = [
        where for where, prop in _properties(manifest_schema())
        if "description" not in prop and "$ref" not in prop
    ]
    assert undocumented == []


def test_the_design_example_validates():
    example = {
        "apiVersion": "faasops/v1",
        "project": "demo",
        "backend": "local",
        "providers": {"state": {"type": "dynamodb", "table": "faasops-state"}},
        "templates": "deploy/templates",
        "defaults": {"replicas": 1, "env": {"LOG_LEVEL": "info"}},
        "workspaces": [{
            "name": "demo",
            "namespace": "demo-prod",
            "labels": {"team": "blue", "example.com/owner": "x"},
            "functions": [{
                "name": "hello",
                "source": "functions/hello",
                "secrets": [{"name": "TOKEN", "secretsManager": {"id": "arn:aws:secretsmanager:x", "key": "token"}}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "1e3"}},
                "autoscaling": {"type": "keda", "min": 1, "max": 10, "cpu": 70},
            }],
        }],
    }
    assert list(Draft202012Validator(manifest_schema()).iter_errors(example)) == []


# ---------------------------------------------------------------- the compiled quick check


def _manifest_trees() -> Iterator[tuple[str, Any]]:
    from faasops.manifest.yaml_source import plain, read_yaml_file

    for top in ("examples", "tests/manifest"):
        for path in sorted((REPO / top).rglob("*.yaml")):
            if ".faasops" in path.parts or "templates" in path.parts:
                continue
            read = read_yaml_file(path, str(path.relative_to(REPO)))
            if read.readable and isinstance(read.data, dict):
                yield str(path.relative_to(REPO)), plain(read.data)


def _mutations(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every value of ``tree`` removed or replaced, one at a time, by values of other types and shapes."""
    replacements = (None, True, 0, -1, 1.5, 2.0, "", "Not_A-Name", "x" * 300, [], {}, ["a"], {"extra": 1})
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield path + (key, "<removed>"), {k: v for k, v in tree.items() if k != key}
            for replacement in replacements:
                yield path + (key,), {**tree, key: replacement}
            for sub_path, sub in _mutations(value, path + (key,)):
                yield sub_path, {**tree, key: sub}
        yield path + ("<unknown key>",), {**tree, "unexpectedKey": 1}
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            for sub_path, sub in _mutations(value, path + (index,)):
                yield sub_path, [*tree[:index], sub, *tree[index + 1:]]


def test_the_quick_check_agrees_with_jsonschema_on_every_manifest_and_thousands_of_mutations():
    # The quick check may only ever say "valid" where jsonschema finds nothing (messages come
    # from jsonschema); it should also say "invalid" wherever jsonschema finds something.
    from faasops.manifest.schema import _quickly_valid, _validator

    checked = disagreements = 0
    trees = list(_manifest_trees())
    assert len(trees) > 40
    for name, tree in trees:
        variants = [((), tree)] + ([] if not _validator(True).is_valid(tree) and not _validator(False).is_valid(tree)
                                   else list(_mutations(tree)))
        for path, variant in variants:
            for root_file in (True, False):
                quick, full = _quickly_valid(variant, root_file), _validator(root_file).is_valid(variant)
                assert not (quick and not full), f"{name} {path} (root file: {root_file}): quick check missed an error"
                disagreements += quick != full
                checked += 1
    assert checked > 5000
    assert disagreements == 0
