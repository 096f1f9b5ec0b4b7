"""Names, numbers, collisions, control characters and source trees through the real CLI (issue 13,
items 5–8): every hostile value is refused by `validate`, `plan` and `apply` with exit 1 and a
located line, nothing is written, no traceback; and the values next to the edge are accepted.

The broken-manifest corpus (``tests/manifest/broken``) holds one project per class; this file
sweeps each class across every field it applies to, and checks what a corpus can't hold (file
names that aren't UTF-8, ``-e`` arguments, JavaScript's reading of the schema's patterns).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from faasops import names
from faasops.manifest.schema import manifest_schema
from security_support import HELLO_MANIFEST, problem_lines, run_cli, tree_state, write_project

COMMANDS = {"validate": ("validate",), "plan": ("plan",), "apply": ("apply", "--auto-approve")}
LOCATED = re.compile(r"^([a-z0-9-]+/)*faas(\.[a-z0-9-]+)?\.yaml:\d+:\d+ ")
WORKSPACE = "  - name: demo\n"
FUNCTION = "      - name: hello\n        source: functions/hello\n"


def manifest(function_lines: str = "", *, top: str = "", workspace_lines: str = "", name: str = "hello") -> str:
    return ("apiVersion: faasops/v1\nproject: demo\n" + top + "workspaces:\n" + WORKSPACE + workspace_lines
            + "    functions:\n" + FUNCTION.replace("hello\n", f"{name}\n", 1) + function_lines)


def refused(project: Path, *args: str, expected: str, command: str = "validate", file_modes_apply: bool = False) -> None:
    """``faasops ARGS COMMAND`` fails cleanly with a located line containing ``expected``, and
    writes nothing."""
    before = tree_state(project)
    run = run_cli(project, *args, *COMMANDS[command], timeout=60, file_modes_apply=file_modes_apply)
    assert run.code == 1, run
    assert "Traceback" not in run.err, run
    lines = problem_lines(run.err)
    assert any(expected in line for line in lines), f"no line with {expected!r}\n{run}"
    assert all(LOCATED.match(line) or line.startswith("faas.yaml: -e/--env") for line in lines), run
    assert not (project / ".faasops").exists() and tree_state(project) == before, f"{command} wrote something\n{run}"


def accepted(project: Path, *args: str) -> None:
    run = run_cli(project, *args, "validate", timeout=60)
    assert run.code == 0 and "valid" in run.out, run


# --------------------------------------------------------------- names: full matches everywhere

TRAILING_NEWLINE = {
    "function": ("", {"name": '"hello\\n"'}, "'hello\\n' is not a valid function name"),
    "workspace": ("", {"workspace": '"demo\\n"'}, "'demo\\n' is not a valid name"),
    "namespace": ("", {"namespace": '"demo\\n"'}, "'demo\\n' is not a valid name"),
    "project": ("", {"project": '"demo\\n"'}, "'demo\\n' is not a valid name"),
    "label-key": ('        labels: {"team\\n": blue}\n', {}, "is not a valid label or annotation key"),
    "label-value": ('        labels: {team: "blue\\n"}\n', {}, "'blue\\n' is not a valid label value"),
    "env-key": ('        env: {"LOG\\n": x}\n', {}, "is not a valid environment variable name"),
    "variable-key": ('        variables: {"api\\n": x}\n', {}, "is not a valid Spin variable name"),
    "secret-name": ('        secrets: [{name: "DB\\n", ssm: /p}]\n', {}, "'DB\\n' is not a valid secret name"),
    "secret-ref": ('        secrets: [{name: DB, kubernetes: {secret: "db\\n", key: k}}]\n', {},
                   "'db\\n' is not a valid Kubernetes object name"),
    "secret-key": ('        secrets: [{name: DB, kubernetes: {secret: db, key: "k\\n"}}]\n', {},
                   "'k\\n' is not a valid Secret key"),
    "ssm-parameter": ('        secrets: [{name: DB, ssm: "/p\\n"}]\n', {}, "'/p\\n' is not a valid SSM parameter name"),
    "executor": ('        executor: "shim\\n"\n', {}, "'shim\\n' is not a valid Kubernetes object name"),
    "cpu-quantity": ('        resources: {requests: {cpu: "1\\n"}}\n', {}, "'1\\n' is not a valid Kubernetes quantity"),
    "handler": ('        handler: "app\\n"\n', {}, "'app\\n' is not a valid Python module name"),
}


def trailing_newline_project(root: Path, field: str) -> None:
    lines, names_at, _ = TRAILING_NEWLINE[field]
    text = manifest(lines, name=names_at.get("name", "hello"))
    if "workspace" in names_at:
        text = text.replace("  - name: demo\n", f"  - name: {names_at['workspace']}\n")
    if "namespace" in names_at:
        text = text.replace("  - name: demo\n", f"  - name: demo\n    namespace: {names_at['namespace']}\n")
    if "project" in names_at:
        text = text.replace("project: demo\n", f"project: {names_at['project']}\n")
    write_project(root, text)


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("field", list(TRAILING_NEWLINE))
def test_a_trailing_newline_is_refused_in_every_name(field: str, command: str, tmp_path: Path) -> None:
    trailing_newline_project(tmp_path, field)
    refused(tmp_path, expected=TRAILING_NEWLINE[field][2], command=command)


@pytest.mark.parametrize("environment", ["prod\n", "prod\r", "Prod", "../prod", "prod env", "-", "a" * 64, "prod\x1b"])
def test_an_invalid_environment_name_is_refused(environment: str, tmp_path: Path) -> None:
    write_project(tmp_path)
    refused(tmp_path, "-e", environment, expected="-e/--env: environment")


@pytest.mark.parametrize("name", ["1st", "0x", "9-lives"])
def test_a_function_name_must_start_with_a_letter_because_its_service_is_named_after_it(name: str,
                                                                                      tmp_path: Path) -> None:
    write_project(tmp_path, manifest(name=name))
    refused(tmp_path, expected=f"'{name}' is not a valid function name")


def test_the_longest_names_and_an_empty_label_value_are_accepted(tmp_path: Path) -> None:
    longest = "a" * 63
    write_project(tmp_path, manifest('        labels: {team: ""}\n        env: {A: "tab\\there\\nand a line"}\n',
                                     name=longest).replace("- name: demo", f"- name: {'b' * 63}"))
    accepted(tmp_path)


def _node_search(pattern: str, samples: list[str]) -> list[bool]:
    """What JavaScript (ECMA-262, as editors validate) says: does ``pattern`` match each sample?"""
    script = ("const [p, s] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(s.map(x => new RegExp(p, 'u').test(x))));")
    out = subprocess.run(["node", "-e", script], input=json.dumps([pattern, samples]), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return json.loads(out)


def _named_patterns(node: Any) -> Iterator[tuple[str, str, int | None]]:
    """(pattern, message, maxLength) of every schema node that explains its pattern."""
    if isinstance(node, dict):
        if "pattern" in node and "patternErrorMessage" in node:
            yield node["pattern"], node["patternErrorMessage"], node.get("maxLength")
        for value in node.values():
            yield from _named_patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _named_patterns(item)


def test_the_schemas_names_have_the_names_rules_patterns_messages_and_lengths() -> None:
    rules = {(rule.schema_pattern, rule.message, rule.max_length) for rule in RULES.values()}
    found = list(_named_patterns(manifest_schema()))
    assert len(found) >= 11
    assert set(found) <= rules, set(found) - rules


def _schema_patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _schema_patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schema_patterns(item)


RULES = {name: rule for name, rule in vars(names).items() if isinstance(rule, names.NameRule)}
SAMPLES = {
    "DNS_LABEL": "hello-world", "FUNCTION_NAME": "hello-world", "DNS_SUBDOMAIN": "containerd-shim-spin.v2", "ENV_NAME": "LOG_LEVEL",
    "SPIN_VARIABLE": "api_url", "SECRET_NAME": "DB_PASSWORD", "LABEL_KEY": "example.com/team", "LABEL_VALUE": "blue",
    "QUANTITY": "128Mi", "MODULE_NAME": "app", "SECRET_KEY": "password", "SSM_PARAMETER": "/prod/key",
    "ENVIRONMENT": "prod", "ALLOWED_OUTBOUND_HOST": "https://*.example.com",
    "SQLITE_DATABASE": "user-data",
    "KEY_VALUE_STORE": "user-data",
}


def test_every_schema_pattern_is_a_names_rule_that_python_and_javascript_read_alike() -> None:
    by_pattern: dict[str, str] = {}
    for name, rule in sorted(RULES.items(), reverse=True):  # ENV_NAME over MODULE_NAME, DNS_LABEL over ENVIRONMENT
        by_pattern[rule.schema_pattern] = name
    all_patterns = set(_schema_patterns(manifest_schema()))
    # Every pattern ends at the very end of the text under both readings ($ would not, in Python).
    assert all(p.startswith("^") and p.endswith("(?![\\s\\S])") for p in all_patterns), all_patterns
    patterns = all_patterns & set(by_pattern)
    assert {"DNS_LABEL", "LABEL_KEY", "ENV_NAME", "SPIN_VARIABLE", "SECRET_NAME", "QUANTITY"} <= {
        by_pattern[p] for p in patterns}, "the schema's names come from faasops.names"
    if shutil.which("node") is None and os.environ.get("CI") != "true":
        pytest.skip("node is not installed (JavaScript's reading of the patterns)")
    for pattern in sorted(patterns):
        good = SAMPLES[by_pattern[pattern]]
        samples = [good, good + "\n", good + "\r\n", "\n" + good, good + "\0", good + "\u2028", good + " "]
        python = [re.search(pattern, sample) is not None for sample in samples]
        full = [RULES[by_pattern[pattern]].regex.fullmatch(sample) is not None for sample in samples]
        assert python == full == _node_search(pattern, samples), pattern
        assert python[0] and not any(python[1:3]), pattern


# ---------------------------------------------------------------- control characters, NUL

CONTROL = {
    "env-value-nul": ('        env: {A: "x\\0"}\n', "", "the NUL character (\\0) is not allowed"),
    "variable-value-nul": ('        variables: {a: "x\\0"}\n', "", "the NUL character (\\0) is not allowed"),
    "annotation-value-bell": ('        annotations: {example.com/a: "x\\a"}\n', "", "control character U+0007"),
    "secretsmanager-id-nul": ('        secrets: [{name: A, secretsManager: {id: "x\\0"}}]\n', "", "NUL character"),
    "source-nul": ("", "", "NUL character"),
    "templates-nul": ("", 'templates: "templates\\0"\n', "NUL character"),
    "provider-option-nul": ("", 'providers:\n  state: {type: local, path: "x\\0"}\n', "NUL character"),
    "provider-key-control": ("", 'providers:\n  state: {type: local, "a\\x01": 1}\n', "control character U+0001"),
    "env-value-surrogate": ('        env: {A: "\\ud800"}\n', "", "U+D800 is half of a UTF-16 surrogate pair"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CONTROL))
def test_control_characters_are_refused_with_their_location(case: str, command: str, tmp_path: Path) -> None:
    lines, top, expected = CONTROL[case]
    text = manifest(lines, top=top)
    if case == "source-nul":
        text = text.replace("source: functions/hello", 'source: "functions/hello\\0"')
    write_project(tmp_path, text)
    refused(tmp_path, expected=expected, command=command)


# ---------------------------------------------------------------- numbers

NUMBERS = [
    ("replicas: 3.0", "write 3 without a decimal point"),
    ("replicas: 1.0e+3", "write 1000 without a decimal point"),
    ("replicas: .inf", "expected a whole number"),
    ("replicas: .nan", "expected a whole number"),
    ("replicas: '3'", "expected a whole number"),
    ("replicas: true", "expected a whole number"),
    ("replicas: 0", "must be at least 1 (got 0)"),
    ("replicas: -1", "must be at least 1"),
    ("replicas: 2147483648", "must be at most 2147483647"),
    ("replicas: 100000000000000000000000000000", "must be at most 2147483647"),
    ("resources: {requests: {cpu: 1m}}\n        autoscaling: {max: 2147483648, cpu: 50}", "must be at most 2147483647"),
    ("resources: {requests: {cpu: 1m}}\n        autoscaling: {max: 4.0, cpu: 50}", "write 4 without a decimal point"),
    ("resources: {requests: {cpu: 1m}}\n        autoscaling: {min: 0, max: 4, cpu: 50}", "min must be at least 1"),
    ("resources: {requests: {cpu: 1m}}\n        autoscaling: {min: 3, max: 2, cpu: 50}", "max (2) must be at least min (3)"),
    ("resources: {requests: {cpu: 1m}}\n        autoscaling: {max: 4, cpu: 50.0}", "write 50 without a decimal point"),
    ("resources: {requests: {memory: 1Mi}}\n        autoscaling: {type: keda, min: 0, max: 4, memory: 50}",
     "KEDA cannot scale to zero on cpu/memory triggers"),
    ("resources: {requests: {memory: 1Mi}}\n        autoscaling: {max: 4, cpu: 50, memory: 50}",
     "autoscaling on cpu utilization needs resources.requests.cpu"),
    ("resources: {limits: {cpu: 1}}\n        autoscaling: {type: keda, max: 4, cpu: 50}",
     "autoscaling on cpu utilization needs resources.requests.cpu"),
    ("resources: {requests: {cpu: .nan}}", "'.nan' is not a valid Kubernetes quantity"),
    ("resources: {requests: {memory: 1_000}}", "'1_000' is not a valid Kubernetes quantity"),
]


@pytest.mark.parametrize("lines, expected", NUMBERS, ids=[line.split("\n")[-1].strip() for line, _ in NUMBERS])
def test_numbers_are_whole_within_kubernetes_ranges_and_consistent(lines: str, expected: str, tmp_path: Path) -> None:
    write_project(tmp_path, manifest(f"        {lines}\n"))
    refused(tmp_path, expected=expected)


def test_requests_from_defaults_satisfy_autoscaling_and_int32_bounds_are_accepted(tmp_path: Path) -> None:
    write_project(tmp_path, manifest(
        "        autoscaling: {type: keda, min: 1, max: 2147483647, cpu: 50, memory: 60}\n",
        top="defaults:\n  resources: {requests: {cpu: 0.5, memory: 64Mi}}\n"))
    accepted(tmp_path)


# ---------------------------------------------------------------- collisions

def test_two_workspaces_in_one_namespace_may_not_share_a_function_name_across_files(tmp_path: Path) -> None:
    write_project(tmp_path, manifest(workspace_lines="    namespace: shared\n"))
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "faas.yaml").write_text(
        "workspaces:\n  - name: other\n    namespace: shared\n    functions:\n"
        "      - name: hello\n        source: ../functions/hello\n")
    for command in COMMANDS:
        refused(tmp_path, command=command,
                expected="function 'other/hello' would have the same Kubernetes objects (SpinApp, Deployment, Service, "
                         "autoscaler) in namespace 'shared' and the same deploy file as function 'demo/hello' at "
                         "faas.yaml:7:15")
    line = next(line for line in problem_lines(run_cli(tmp_path, "validate").err) if "would have" in line)
    assert line.startswith("team/faas.yaml:5:15 workspaces[0].functions[0].name: "), line


def test_two_workspaces_may_share_a_namespace_with_different_function_names(tmp_path: Path) -> None:
    write_project(tmp_path, manifest(workspace_lines="    namespace: shared\n")
                  + "  - name: other\n    namespace: shared\n    functions:\n"
                    "      - name: bye\n        source: functions/hello\n")
    accepted(tmp_path)


def test_secret_names_spin_refuses_or_that_clash_are_refused(tmp_path: Path) -> None:
    for lines, expected in [
        ("secrets: [{name: ab_, ssm: /p}]", "'ab_' is not a valid secret name"),
        ("secrets: [{name: _TOKEN, ssm: /p}]", "'_TOKEN' is not a valid secret name"),
        ("secrets: [{name: DB__PW, ssm: /p}]", "'DB__PW' is not a valid secret name"),
        ("variables: {a__b: x}", "key 'a__b' is not a valid Spin variable name"),
        ("variables: {db_password: x}\n        secrets: [{name: DB_PASSWORD, ssm: /p}]",
         "secret 'DB_PASSWORD' becomes the Spin variable 'db_password'"),
        ("secrets: [{name: Token, ssm: /p}, {name: TOKEN, ssm: /q}]",
         "secret 'TOKEN' and secret 'Token' both become the Spin variable 'token'"),
    ]:
        project = tmp_path / str(len(list(tmp_path.iterdir())))
        write_project(project, manifest(f"        {lines}\n"))
        refused(project, expected=expected)


# ---------------------------------------------------------------- credentials in provider blocks

@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_credential_in_an_overlays_provider_block_is_refused_by_validate(command: str, tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / "faas.prod.yaml").write_text(
        "providers:\n  logs:\n    type: local\n    loki: {url: 'https://loki.example', Password: hunter2}\n"
        "  state: {type: dynamodb, table: t, aws_secret_access_key: abc}\n")
    refused(tmp_path, "-e", "prod", command=command,
            expected="faas.prod.yaml:4:41 providers.logs.loki.Password: remove 'Password'")
    run = run_cli(tmp_path, "-e", "prod", "validate")
    assert "providers.state.aws_secret_access_key: remove 'aws_secret_access_key'" in run.err, run
    assert "hunter2" not in run.err and "abc" not in run.err.replace("aws_secret_access_key", ""), run


# ---------------------------------------------------------------- source trees

def _non_utf8_name(source: Path) -> None:
    (Path(os.fsdecode(bytes(source) + b"/data-\xff.txt"))).write_text("x")


def _symlink_loop(source: Path) -> None:
    (source / "vendor").mkdir()
    os.symlink("b", source / "vendor" / "a")
    os.symlink("a", source / "vendor" / "b")


def _unreadable_directory(source: Path) -> None:
    (source / "private").mkdir()
    (source / "private" / "x.txt").write_text("x")
    (source / "private").chmod(0)


SOURCE_TREES = {
    "file-name-not-utf8": (_non_utf8_name, "data-\\xff.txt: the file name is not valid UTF-8; rename it"),
    "symlink-loop": (_symlink_loop, "vendor/a: symlink loop; remove the link"),
    "unreadable-directory": (_unreadable_directory, "private: cannot read the file"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(SOURCE_TREES))
def test_a_source_tree_that_cannot_be_packaged_is_a_located_error(case: str, command: str, tmp_path: Path) -> None:
    source = write_project(tmp_path)
    make, expected = SOURCE_TREES[case]
    make(source)
    try:
        refused(tmp_path, command=command, file_modes_apply=case == "unreadable-directory",
                expected=f"workspaces[0].functions[0].source: the source directory 'functions/hello' can't be "
                         f"packaged: {expected}")
    finally:
        if case == "unreadable-directory":
            (source / "private").chmod(0o755)


def test_a_manifest_without_problems_still_validates(tmp_path: Path) -> None:
    write_project(tmp_path, HELLO_MANIFEST)
    accepted(tmp_path)


@pytest.mark.parametrize("directory, shown", [(b"team-\xff", "team-\\xff"), (b"a\nb", "a\\nb")])
def test_a_split_manifest_in_a_directory_that_cannot_be_shown_on_one_line_is_refused(
        directory: bytes, shown: str, tmp_path: Path) -> None:
    write_project(tmp_path)
    team = Path(os.fsdecode(bytes(tmp_path) + b"/" + directory))
    team.mkdir()
    (team / "faas.yaml").write_text("workspaces:\n  - name: team\n")
    run = run_cli(tmp_path, "validate", timeout=60)
    assert run.code == 1 and "Traceback" not in run.err, run
    assert problem_lines(run.err) == [
        f"{shown}/faas.yaml: the directory name holds a control character or bytes that aren't UTF-8; "
        "rename the directory to load this manifest"], run


def test_annotations_beyond_kubernetes_256_kib_are_refused(tmp_path: Path) -> None:
    value = "x" * 140_000  # twice through an alias: 280 000 bytes, from a file of 140 kB
    write_project(tmp_path, manifest(f"        annotations:\n          a.io/x: &v {value}\n          a.io/y: *v\n"))
    refused(tmp_path, expected="annotations: the annotations add up to 280012 bytes; Kubernetes allows at most 262144")
