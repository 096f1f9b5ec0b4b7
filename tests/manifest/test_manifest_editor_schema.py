"""faas.yaml.schema as an editor sees it, checked by an independent validator (check-jsonschema):
its root is the root faas.yaml, strictly; split manifests and overlays have their own
definitions, selected with a URL fragment in the file's yaml-language-server modeline.

Also: ``-e ENV`` with no ``faas.ENV.yaml`` anywhere is an error, not a silent no-op.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import EXAMPLES, REPO, copy_example, run_faasops

SCHEMA = REPO / "faas.yaml.schema"
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(?P<path>[^#\s]+)(?:#(?P<pointer>\S+))?$", re.MULTILINE)

VALID_ROOT = """\
apiVersion: faasops/v1
project: shop
backend: aws
workspaces:
  - name: storefront
    functions:
      - {name: hello, source: functions/hello, replicas: 2}
"""

SPLIT = """\
workspaces:
  - name: blog
    functions:
      - {name: feed, source: functions/feed}
"""

OVERLAY = """\
backend: local
providers: null
workspaces:
  - name: storefront
    namespace: storefront-staging
    functions:
      - {name: hello, replicas: 1, env: {LOG_LEVEL: debug}}
"""


def check_jsonschema(tmp_path: Path, document: str, pointer: str | None = None) -> subprocess.CompletedProcess[str]:
    """check-jsonschema on ``document`` against the repository's schema — its root, or the
    definition at ``pointer``. check-jsonschema takes no fragment on --schemafile, so a pointer
    goes through a one-line wrapper schema that $refs it (as an editor resolves the fragment)."""
    instance = tmp_path / "faas.yaml"
    instance.write_text(document)
    schema = SCHEMA
    if pointer is not None:
        schema = tmp_path / "fragment.schema.json"
        schema.write_text(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                      "$ref": f"{SCHEMA.as_uri()}#{pointer}"}))
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), str(instance)],
                          capture_output=True, text=True, timeout=120)


def test_schema_root_accepts_a_valid_root_manifest(tmp_path: Path) -> None:
    checked = check_jsonschema(tmp_path, VALID_ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("missing", ["project", "apiVersion"])
def test_schema_root_refuses_a_root_manifest_without_project_or_api_version(tmp_path: Path, missing: str) -> None:
    document = "".join(line for line in VALID_ROOT.splitlines(keepends=True) if not line.startswith(missing))
    checked = check_jsonschema(tmp_path, document)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"'{missing}' is a required property" in checked.stdout
    # faasops agrees: the schema's root requires what faasops requires of the root faas.yaml.
    (tmp_path / "functions" / "hello").mkdir(parents=True)
    validated = run_faasops("-C", str(tmp_path), "validate")
    assert validated.code == 1 and f"missing required key '{missing}'" in validated.err


def test_split_manifest_definition_accepts_workspaces_and_refuses_root_only_keys(tmp_path: Path) -> None:
    assert check_jsonschema(tmp_path, SPLIT, "/$defs/splitManifest").returncode == 0
    assert check_jsonschema(tmp_path, "apiVersion: faasops/v1\n" + SPLIT, "/$defs/splitManifest").returncode == 0
    refused = check_jsonschema(tmp_path, "project: shop\n" + SPLIT, "/$defs/splitManifest")
    assert refused.returncode == 1 and "'project' was unexpected" in refused.stdout
    # Pointed at the root instead, the same split file is refused: it names no project.
    assert check_jsonschema(tmp_path, SPLIT).returncode == 1


def test_overlay_definition_accepts_null_deletes_and_partial_entries(tmp_path: Path) -> None:
    accepted = check_jsonschema(tmp_path, OVERLAY, "/$defs/overlay")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    typo = check_jsonschema(tmp_path, "workspace:\n  - name: storefront\n", "/$defs/overlay")
    assert typo.returncode == 1 and "'workspace' was unexpected" in typo.stdout
    nameless = check_jsonschema(tmp_path, "workspaces:\n  - functions: []\n", "/$defs/overlay")
    assert nameless.returncode == 1 and "'name' is a required property" in nameless.stdout
    unknown_slot = check_jsonschema(tmp_path, "providers: {registy: null}\n", "/$defs/overlay")
    assert unknown_slot.returncode == 1
    # The root definition would refuse the overlay's deletes (and its missing project).
    assert check_jsonschema(tmp_path, OVERLAY).returncode == 1


def test_every_example_manifest_validates_against_the_definition_its_modeline_names(tmp_path: Path) -> None:
    manifests = sorted(EXAMPLES.rglob("faas*.yaml"))
    assert any(path.name == "faas.local.yaml" for path in manifests)
    for path in manifests:
        text = path.read_text()
        modeline = MODELINE.search(text)
        assert modeline, f"{path}: no yaml-language-server modeline"
        assert (path.parent / modeline["path"]).resolve() == SCHEMA.resolve(), path
        if path.name != "faas.yaml":
            expected = "/$defs/overlay"
        else:  # each example's own directory holds its root faas.yaml
            expected = None if path.parent.parent == EXAMPLES else "/$defs/splitManifest"
        assert modeline["pointer"] == expected, f"{path}: modeline points at {modeline['pointer']}"
        checked = check_jsonschema(tmp_path, text, modeline["pointer"])
        assert checked.returncode == 0, f"{path}: {checked.stdout}{checked.stderr}"


def test_cloud_example_local_overlay_exists_and_selects_the_local_backend(tmp_path: Path) -> None:
    project = copy_example("cloud", tmp_path)
    local = run_faasops("-C", str(project), "-e", "local", "plan", "--format", "json")
    assert local.code == 0, local.output
    assert json.loads(local.out)["environment"] == "local"
    assert not (project / ".faasops" / "state.db").exists()  # plan writes no state


def test_unknown_environment_is_an_error_naming_it_and_the_files_looked_for(tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    (project / "team").mkdir()
    (project / "team" / "faas.yaml").write_text(SPLIT.replace("functions/feed", "../functions/hello"))
    assert run_faasops("-C", str(project), "validate").code == 0

    unknown = run_faasops("-C", str(project), "-e", "stagin", "validate")
    assert unknown.code == 1
    assert ("faas.yaml: -e/--env: unknown environment 'stagin': no faas.stagin.yaml next to any faas.yaml "
            "(looked for faas.stagin.yaml, team/faas.stagin.yaml); create the overlay, or leave out -e") in unknown.err
    assert "Traceback" not in unknown.err

    # One overlay anywhere makes the environment known, even beside a split manifest only.
    (project / "team" / "faas.stagin.yaml").write_text("workspaces: []\n")
    assert run_faasops("-C", str(project), "-e", "stagin", "validate").code == 0
