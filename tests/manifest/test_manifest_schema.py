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

    assert set(defs["defaults"]["properties"]) == set(defs["function"]["properties"]) - {"name", "source", "handler"}


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
                "autoscaling": {"type": "keda", "min": 0, "max": 10, "cpu": 70},
            }],
        }],
    }
    assert list(Draft202012Validator(manifest_schema()).iter_errors(example)) == []
