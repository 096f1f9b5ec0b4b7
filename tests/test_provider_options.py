"""Provider options have a contract: each type declares a JSON Schema, `faasops validate` checks
every providers.* block against it with located messages, `faasops plugins` lists the options,
old duration names still work with a warning, and CLI flags only set declared options."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cli_support import run_faasops
from faasops.manifest import load_project
from faasops.model import ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.componentize import ComponentizePyBuilder

HEADER = "apiVersion: faasops/v1\nproject: hello\nbackend: local\nproviders:\n"
WORKSPACES = "workspaces:\n  - name: demo\n    functions:\n      - name: hello\n        source: functions/hello\n"


def write_manifest(project: Path, providers: dict[str, str]) -> dict[str, int]:
    """faas.yaml with one flow-mapping line per slot; returns each slot's line number."""
    lines = HEADER.splitlines()
    where = {}
    for slot, block in providers.items():
        lines.append(f"  {slot}: {block}")
        where[slot] = len(lines)
    (project / "faas.yaml").write_text("\n".join(lines) + "\n" + WORKSPACES)
    return where


def declared_options() -> dict[str, dict[str, Any]]:
    listed = run_faasops("plugins", "--format", "json")
    assert listed.code == 0, listed.err
    return json.loads(listed.out)["provider_options"]


def misspelled_block(type_: str, options: list[dict[str, Any]]) -> tuple[str, str, str | None]:
    """A block of ``type_`` with its required options set and one option misspelt: (block,
    misspelt name, the name a message should suggest)."""
    required = {o["name"]: _sample(o) for o in options if o["required"]}
    if options:
        meant = options[0]["name"]
        wrong = meant[:-1] + meant[-1] * 2 if len(meant) > 3 else meant + "x"  # `table` → `tablee`
    else:
        meant, wrong = None, "colour"
    fields = ", ".join([f"type: {type_}", *(f"{k}: {json.dumps(v)}" for k, v in required.items()), f"{wrong}: 1"])
    return "{" + fields + "}", wrong, meant


def _sample(option: dict[str, Any]) -> Any:
    return {"string": "x", "integer": 1, "number": 1, "boolean": True}.get(option["type"].split(" ")[0], "x")


def test_a_misspelled_option_fails_validate_with_its_location_for_every_built_in_provider_type(
        hello_project: Path) -> None:
    declared = declared_options()
    pending = [(slot, type_, entry["options"]) for slot, types in declared.items() for type_, entry in types.items()]
    built_in = {(slot, type_) for slot, type_, _ in pending}
    # Every provider type faasops ships declares its options (a new one without a schema fails here).
    listed = json.loads(run_faasops("plugins", "--format", "json").out)["provider_types"]
    assert {(slot, t) for slot, entries in listed.items() for t, _ in entries} == built_in
    checked = set()
    while pending:
        # One faas.yaml per round, one type per slot.
        round_, rest, slots = [], [], set()
        for slot, type_, options in pending:
            (rest if slot in slots else round_).append((slot, type_, options))
            slots.add(slot)
        pending = rest
        blocks = {slot: misspelled_block(type_, options) for slot, type_, options in round_}
        lines = write_manifest(hello_project, {slot: block for slot, (block, _, _) in blocks.items()})

        result = run_faasops("-C", str(hello_project), "validate")

        assert result.code == 1 and "Traceback" not in result.output
        text = (hello_project / "faas.yaml").read_text().splitlines()
        for slot, type_, _ in round_:
            _block, wrong, meant = blocks[slot]
            col = text[lines[slot] - 1].index(f"{wrong}:") + 1
            hint = f" (did you mean '{meant}'?)" if meant else ""
            expected = f"faas.yaml:{lines[slot]}:{col} providers.{slot}.{wrong}: unknown option '{wrong}'{hint}"
            assert expected in result.err, (type_, result.err)
            checked.add((slot, type_))
    assert checked == built_in


def test_a_deprecated_duration_name_warns_where_it_is_and_still_sets_the_option(hello_project: Path) -> None:
    write_manifest(hello_project, {"builder": "{type: componentize-py, timeout_s: 42}"})

    result = run_faasops("-C", str(hello_project), "validate")

    assert result.code == 0, result.err
    assert ("warning: faas.yaml:5:36 providers.builder.timeout_s: 'timeout_s' is deprecated: "
            "write 'timeout_seconds' (the old name still works)") in result.err
    project = load_project(hello_project)
    builder = create_provider(create_plugin_manager(), project, "builder")
    assert isinstance(builder, ComponentizePyBuilder) and builder.timeout_s == 42


def test_an_option_and_its_old_name_together_are_refused(hello_project: Path) -> None:
    write_manifest(hello_project, {"builder": "{type: componentize-py, timeout_s: 42, timeout_seconds: 60}"})

    result = run_faasops("-C", str(hello_project), "validate")

    assert result.code == 1
    assert ("faas.yaml:5:36 providers.builder.timeout_s: 'timeout_s' is the old name of 'timeout_seconds': "
            "write only 'timeout_seconds'") in result.err


def test_defaults_come_from_the_schema_and_wrong_types_are_located(hello_project: Path) -> None:
    write_manifest(hello_project, {"deployer": "{type: kubernetes, observe_concurrency: 100, wait: \"yes\"}"})

    result = run_faasops("-C", str(hello_project), "validate")

    assert result.code == 1
    assert "faas.yaml:5:53 providers.deployer.observe_concurrency: must be at most 64 (got 100)" in result.err
    assert "faas.yaml:5:64 providers.deployer.wait: expected true or false, got the string 'yes'" in result.err
    config = ProviderConfig("deployer", "kubernetes", {})
    deployer = create_provider(create_plugin_manager(), load_project(Path(__file__).parent.parent / "examples/hello"),
                               "deployer", config)
    assert (deployer.wait_timeout, deployer.request_timeout, deployer.observe_concurrency) == (300.0, 30.0, 4)


def test_a_value_that_may_be_a_secret_is_never_shown(hello_project: Path) -> None:
    write_manifest(hello_project, {"registry": "{type: oci, registry_url: \"http://127.0.0.1:5000\", "
                                               "password_env: \"hunter2 not a name\"}"})

    result = run_faasops("-C", str(hello_project), "validate")

    assert result.code == 1
    assert "providers.registry.password_env: must be the name of an environment variable; the value is not shown" \
        in result.err
    assert "hunter2" not in result.output


def test_plugins_lists_each_types_options_as_text_and_json() -> None:
    table = run_faasops("plugins")
    assert table.code == 0, table.err
    assert "wait_timeout_seconds: number, default 300.0 (formerly wait_timeout) — how long --wait waits" in table.out
    assert "table: string, required — the DynamoDB table" in table.out

    options = declared_options()
    by_name = {o["name"]: o for o in options["deployer"]["kubernetes"]["options"]}
    assert by_name["wait_timeout_seconds"] == {
        "name": "wait_timeout_seconds", "type": "number", "default": 300.0,
        "description": "how long --wait waits for a SpinApp", "required": False, "aliases": ["wait_timeout"],
        "secret": False}
    assert options["registry"]["oci"]["schema"]["required"] == ["registry_url"]
    assert {o["name"]: o["secret"] for o in options["registry"]["oci"]["options"]}["password_env"] is True


QUAY_PLUGIN = '''
from faasops import hookimpl

SCHEMA = {"type": "object", "properties": {
    "url": {"type": "string", "description": "the Quay base URL"},
    "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 5, "aliases": ["timeout"],
                        "description": "per request"},
}, "required": ["url"]}

@hookimpl
def faasops_provider_types():
    return [("registry", "quay", "a registry plugin for the tests"), ("registry", "loose", "declares nothing")]

@hookimpl
def faasops_provider_options():
    return [("registry", "quay", SCHEMA)]
'''


def test_a_third_party_plugins_schema_is_enforced_and_listed(hello_project: Path, tmp_path: Path) -> None:
    (tmp_path / "quay_plugin.py").write_text(QUAY_PLUGIN)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "FAASOPS_PLUGINS": "quay_plugin"}
    write_manifest(hello_project, {"registry": "{type: quay, ur: \"https://quay.example\", timeout: 0}"})

    result = run_faasops("-C", str(hello_project), "validate", env=env)

    assert result.code == 1
    assert "faas.yaml:5:26 providers.registry.ur: unknown option 'ur' (did you mean 'url'?)" in result.err
    assert "faas.yaml:5:13 providers.registry: missing required option 'url'" in result.err
    assert "faas.yaml:5:63 providers.registry.timeout: must be more than 0 (got 0)" in result.err
    listed = run_faasops("plugins", env=env)
    assert "url: string, required — the Quay base URL" in listed.out
    assert "timeout_seconds: number, default 5 (formerly timeout) — per request" in listed.out
    # A type that declares no options gets them unchecked, as before.
    write_manifest(hello_project, {"registry": "{type: loose, anything: 1}"})
    assert run_faasops("-C", str(hello_project), "validate", env=env).code == 0


@pytest.mark.slow
def test_a_flag_for_an_option_the_deployer_does_not_declare_is_ignored_with_a_note(hello_project: Path) -> None:
    result = run_faasops("-C", str(hello_project), "apply", "--auto-approve", "--wait", "--force-conflicts")

    assert result.code == 0, result.output
    assert "note: --wait does nothing here: deployer type 'local' has no 'wait' option" in result.err
    assert "note: --force-conflicts does nothing here: deployer type 'local' has no 'force_conflicts' option" in result.err
