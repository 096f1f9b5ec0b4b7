"""Hostile projects through the real CLI: each is rejected by `validate`, `plan` and
`apply --auto-approve` with exit 1 and a clear, located message — no traceback, no hang, no memory
blow-up — and not a byte is written, neither in the project (no `.faasops/`) nor in the directory
next to it that symlinks and `..` try to reach. Handler code never runs on the host: not while
validating or planning (the contract is checked on the syntax tree) and not while building
(componentize-py pre-initialises the module inside the WebAssembly sandbox).

Already covered by the broken-manifest corpus (``tests/manifest/broken``, through
`apply --auto-approve` in ``test_manifest_broken.py``) and only re-run here through `validate` and
`plan`: a small alias bomb, 70-level nesting, a ``!!python/object`` tag, a symlinked and a `..`
source directory, non-UTF-8 handler and manifest.
"""

from __future__ import annotations

import json
import os
import re
import site
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

from security_support import (
    HELLO_HANDLER,
    CliRun,
    HELLO_MANIFEST,
    problem_lines,
    run_cli,
    tree_state,
    write_project,
)

COMMANDS = {"validate": ("validate",), "plan": ("plan",), "apply": ("apply", "--auto-approve")}
CORPUS = Path(__file__).resolve().parent.parent / "manifest" / "broken"
CORPUS_OUTSIDE = Path(__file__).resolve().parent.parent / "manifest" / "fixtures"
HOSTILE_CORPUS_CASES = ("alias-bomb", "deep-nesting", "python-tag", "source-symlink-escape",
                        "source-dotdot-escape", "handler-not-utf8", "manifest-not-utf8")
# A bomb must be refused quickly, and within a memory ceiling rather than by the OOM killer.
BOMB_SECONDS = 10.0
MEMORY_CEILING = 2 << 30
FUNCTION_AT = r"faas\.yaml:\d+:\d+ workspaces\[0\]\.functions\[0\]"


@dataclass(frozen=True)
class Hostile:
    """A hostile project: ``make(project, outside)`` writes it; every line of ``expected`` must be
    a problem the CLI lists (``re.search``), each starting with a location."""

    name: str
    make: Callable[[Path, Path], None]
    expected: tuple[str, ...]


def manifest_with(function_lines: str = "", *, top: str = "", workspace: str = "") -> str:
    """The hello manifest with extra keys for the function, the root and the workspace."""
    return (
        "apiVersion: faasops/v1\nproject: hello\nbackend: local\n" + top
        + "workspaces:\n  - name: demo\n" + workspace
        + "    functions:\n      - name: hello\n        source: functions/hello\n" + function_lines
    )


# ------------------------------------------------------------------------------------ the cases


def huge_manifest(project: Path, outside: Path) -> None:
    write_project(project, HELLO_MANIFEST + "# " + "x" * (1 << 20) + "\n")


def huge_split_manifest(project: Path, outside: Path) -> None:
    write_project(project)
    (project / "team").mkdir()
    (project / "team" / "faas.yaml").write_text("workspaces: []\n" + "# " + "x" * (1 << 20) + "\n")


def billion_laughs(project: Path, outside: Path) -> None:
    # The classic: 9 levels of 10 references, 10^9 strings once expanded.
    lines = ["apiVersion: faasops/v1", "project: hello", 'l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    write_project(project, "\n".join(lines) + "\nworkspaces: []\n")


def billion_laughs_in_mappings(project: Path, outside: Path) -> None:
    lines = ["apiVersion: faasops/v1", "project: hello", "x-0: &m0 {" + ", ".join(f"k{j}: lol" for j in range(10)) + "}"]
    lines += [f"x-{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(10)) + "}" for i in range(1, 10)]
    write_project(project, "\n".join(lines) + "\nworkspaces: []\n")


def alias_amplified_string(project: Path, outside: Path) -> None:
    # Few values but one long string: 25,000 aliases of 400 kB are 10 GB of env values once
    # expanded, though the file is < 1 MiB and holds far fewer than 100,000 values.
    lines = [HELLO_MANIFEST.rstrip("\n"), "        env:", "          E0: &big " + "A" * 400_000]
    lines += [f"          E{i}: *big" for i in range(1, 25_000)]
    write_project(project, "\n".join(lines) + "\n")


def nested_flow_sequences(project: Path, outside: Path) -> None:
    write_project(project, "apiVersion: faasops/v1\nproject: hello\nworkspaces: " + "[" * 10_000 + "]" * 10_000 + "\n")


def nested_flow_mappings(project: Path, outside: Path) -> None:
    write_project(project, "apiVersion: faasops/v1\nproject: hello\nworkspaces: " + "{a: " * 10_000 + "}" * 10_000 + "\n")


def nested_block_sequences(project: Path, outside: Path) -> None:
    write_project(project, "apiVersion: faasops/v1\nproject: hello\nworkspaces:\n  " + "- " * 10_000 + "x\n")


def injecting_names(project: Path, outside: Path) -> None:
    write_project(project, (
        "apiVersion: faasops/v1\nproject: hello\nbackend: local\nworkspaces:\n"
        '  - name: "{{ 7*7 }}"\n'
        '    namespace: "demo\\n---\\nkind: Secret"\n'
        '    labels: {"a\\nkind: Secret": x}\n'
        "    functions:\n"
        '      - name: "hello\\nkind: Secret"\n'
        "        source: functions/hello\n"
        '        executor: "{% raw %}"\n'
        '        labels: {tier: "x\\nkind: Secret", "{{ 7*7 }}": y}\n'
        '        annotations: {"{% raw %}": z}\n'
        '        variables: {"{{x}}": y}\n'
        "        secrets:\n"
        '          - name: DB_PASSWORD\n'
        '            kubernetes: {secret: "x\\nkind: Secret", key: "{{ 7*7 }}"}\n'
    ))


def symlinked_file_in_source(project: Path, outside: Path) -> None:
    source = write_project(project)
    (source / "data.txt").symlink_to(outside / "secret.txt")


def symlinked_dir_in_source(project: Path, outside: Path) -> None:
    source = write_project(project)
    (source / "vendor").symlink_to(outside, target_is_directory=True)


def oversized_source(project: Path, outside: Path) -> None:
    # Sparse: 100 GiB on paper, no disk used. Sizes must be checked before any byte is read.
    source = write_project(project)
    with (source / "model.bin").open("wb") as stream:
        stream.truncate(100 << 30)


def oversized_handler(project: Path, outside: Path) -> None:
    write_project(project, handler=HELLO_HANDLER + "# " + "x" * (6 << 20) + "\n")


def handler_symlinked_outside(project: Path, outside: Path) -> None:
    source = write_project(project, handler=None)
    (outside / "app.py").write_text(HELLO_HANDLER)
    (source / "app.py").symlink_to(outside / "app.py")


def split_manifest_symlinked_outside(project: Path, outside: Path) -> None:
    write_project(project)
    (outside / "faas.yaml").write_text("workspaces: [{name: stolen, functions: []}]\n")
    (project / "team").mkdir()
    (project / "team" / "faas.yaml").symlink_to(outside / "faas.yaml")


def templates_dotdot(project: Path, outside: Path) -> None:
    write_project(project, manifest_with(top=f"templates: ../{outside.name}\n"))


def templates_symlinked_outside(project: Path, outside: Path) -> None:
    (outside / "spinapp.yaml.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    write_project(project, manifest_with(top="templates: templates\n"))
    (project / "templates").symlink_to(outside, target_is_directory=True)


def utf16_manifest(project: Path, outside: Path) -> None:
    write_project(project)
    (project / "faas.yaml").write_bytes(HELLO_MANIFEST.encode("utf-16"))


def handler_with_null_byte(project: Path, outside: Path) -> None:
    write_project(project, handler=HELLO_HANDLER + "x = '\0'\n")


def handler_base_nested_deeply(project: Path, outside: Path) -> None:
    # Parses (the parser allows ~3,000 levels) but is deeper than a recursive walk can follow.
    write_project(project, handler=(
        "from spin_sdk import http\n\n\nclass IncomingHandler(" + "a." * 2000 + "IncomingHandler):\n"
        "    def handle_request(self, request):\n        return None\n"
    ))


def handler_is_a_fifo(project: Path, outside: Path) -> None:
    source = write_project(project, handler=None)
    os.mkfifo(source / "app.py")


def split_manifest_is_a_fifo(project: Path, outside: Path) -> None:
    write_project(project)
    (project / "team").mkdir()
    os.mkfifo(project / "team" / "faas.yaml")


CASES = [
    Hostile("manifest-over-1-mib", huge_manifest,
            (r"^faas\.yaml: the file is \d+ bytes; a manifest may be at most 1048576 bytes",)),
    Hostile("split-manifest-over-1-mib", huge_split_manifest,
            (r"^team/faas\.yaml: the file is \d+ bytes; a manifest may be at most 1048576 bytes",)),
    Hostile("billion-laughs", billion_laughs,
            (r"^faas\.yaml:\d+:\d+: alias \*l\d makes the document larger than 100000 values; is it an alias bomb\?",)),
    Hostile("billion-laughs-in-mappings", billion_laughs_in_mappings,
            (r"^faas\.yaml:\d+:\d+: alias \*m\d makes the document larger than 100000 values; is it an alias bomb\?",)),
    Hostile("alias-amplified-string", alias_amplified_string,
            (r"^faas\.yaml:\d+:\d+: alias \*big makes the document .*; is it an alias bomb\?",)),
    Hostile("nesting-10000-flow-sequences", nested_flow_sequences,
            (r"^faas\.yaml:3:\d+: the document nests deeper than 64 levels",)),
    Hostile("nesting-10000-flow-mappings", nested_flow_mappings,
            (r"^faas\.yaml:3:\d+: the document nests deeper than 64 levels",)),
    Hostile("nesting-10000-block-sequences", nested_block_sequences,
            (r"^faas\.yaml:4:\d+: the document nests deeper than 64 levels",)),
    Hostile("names-injecting-yaml-or-jinja", injecting_names, (
        r"^faas\.yaml:5:11 workspaces\[0\]\.name: '\{\{ 7\*7 \}\}' is not a valid name",
        r"^faas\.yaml:6:16 workspaces\[0\]\.namespace: 'demo\\n---\\nkind: Secret' is not a valid name",
        r"^faas\.yaml:7:\d+ workspaces\[0\]\.labels\[.*\]: key 'a\\nkind: Secret' is not a valid label",
        r"^faas\.yaml:9:15 workspaces\[0\]\.functions\[0\]\.name: 'hello\\nkind: Secret' is not a valid function name",
        rf"^{FUNCTION_AT}\.executor: '\{{% raw %\}}' is not a valid Kubernetes object name",
        rf"^{FUNCTION_AT}\.labels\.tier: 'x\\nkind: Secret' is not a valid label value",
        rf"^{FUNCTION_AT}\.labels\[.*\]: key '\{{\{{ 7\*7 \}}\}}' is not a valid label",
        rf"^{FUNCTION_AT}\.annotations\[.*\]: key '\{{% raw %\}}' is not a valid label or annotation key",
        rf"^{FUNCTION_AT}\.variables\[.*\]: key '\{{\{{x\}}\}}' is not a valid Spin variable name",
        rf"^{FUNCTION_AT}\.secrets\[0\]\.kubernetes\.secret: 'x\\nkind: Secret' is not a valid Kubernetes object name",
        rf"^{FUNCTION_AT}\.secrets\[0\]\.kubernetes\.key: '\{{\{{ 7\*7 \}}\}}' is not a valid Secret key",
    )),
    Hostile("symlinked-file-in-source-leads-outside", symlinked_file_in_source,
            (rf"^{FUNCTION_AT}\.source: .*data\.txt: symlink points outside the source directory",)),
    Hostile("symlinked-dir-in-source-leads-outside", symlinked_dir_in_source,
            (rf"^{FUNCTION_AT}\.source: .*vendor: symlink points outside the source directory",)),
    Hostile("source-over-64-mib", oversized_source,
            (rf"^{FUNCTION_AT}\.source: .*source is larger than 64 MiB",)),
    Hostile("handler-over-5-mib", oversized_handler,
            (r"^functions/hello/app\.py: the file is \d+ bytes; a handler module may be at most 5242880 bytes",)),
    Hostile("handler-symlinked-outside", handler_symlinked_outside,
            # Whichever check sees it first: the handler's or the source directory's.
            (rf"^{FUNCTION_AT}\.source: (the handler module functions/hello/app\.py is a symlink to a file outside "
             r"the project root|.*app\.py: symlink points outside the source directory)",)),
    Hostile("split-manifest-symlinked-outside", split_manifest_symlinked_outside,
            (r"^team/faas\.yaml: is a symlink to a file outside the project root",)),
    Hostile("templates-dotdot", templates_dotdot,
            (r"^faas\.yaml:\d+:\d+ templates: '\.\./outside' leads outside the project root",)),
    Hostile("templates-symlinked-outside", templates_symlinked_outside,
            (r"^faas\.yaml:\d+:\d+ templates: 'templates' goes through a symlink that leads outside the project root",)),
    Hostile("manifest-utf16", utf16_manifest,
            (r"^faas\.yaml:1:1: the file is not valid UTF-8: byte 0xff",)),
    Hostile("handler-null-byte", handler_with_null_byte,
            (r"^functions/hello/app\.py: Python syntax error: source code string cannot contain null bytes",)),
    Hostile("handler-base-nested-2000-deep", handler_base_nested_deeply,
            (r"^functions/hello/app\.py:4:1: class IncomingHandler must inherit from spin_sdk's http\.IncomingHandler, "
             r"not \(an expression nested too deeply to show\)",)),
    Hostile("handler-is-a-fifo", handler_is_a_fifo,
            (rf"^{FUNCTION_AT}\.source: the handler module functions/hello/app\.py does not exist",)),
    Hostile("split-manifest-is-a-fifo", split_manifest_is_a_fifo,
            (r"^team/faas\.yaml: not a regular file; a manifest must be a file",)),
]


@pytest.fixture
def hostile_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """``project`` and, next to it, ``outside`` with a file worth stealing."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the build\n")
    return project, outside


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_project_is_rejected_with_a_located_message_and_writes_nothing(
        case: Hostile, command: str, hostile_dirs: tuple[Path, Path]) -> None:
    project, outside = hostile_dirs
    case.make(project, outside)
    before = tree_state(project), tree_state(outside)

    run = run_cli(project, *COMMANDS[command], timeout=60, memory_limit=MEMORY_CEILING)

    assert run.code == 1, run
    assert "Traceback" not in run.err and "Error" in run.err, run
    problems = problem_lines(run.err)
    for pattern in case.expected:
        assert any(re.search(pattern, line) for line in problems), f"no problem matches {pattern!r}\n{run}"
    assert run.seconds < BOMB_SECONDS, run
    assert run.out == "", f"nothing may be planned or applied\n{run}"
    assert not (project / ".faasops").exists(), f"{command} created .faasops/\n{run}"
    assert (tree_state(project), tree_state(outside)) == before, f"{command} wrote something\n{run}"


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", HOSTILE_CORPUS_CASES)
def test_hostile_corpus_cases_are_rejected_by_validate_and_plan_too(case: str, command: str) -> None:
    """The corpus test runs these through `apply`; validate and plan must refuse them the same way."""
    root = CORPUS / case
    expected = (root / "expected.txt").read_text(encoding="utf-8").strip()
    before = tree_state(root), tree_state(CORPUS_OUTSIDE)

    run = run_cli(root, *COMMANDS[command], timeout=60, memory_limit=MEMORY_CEILING)

    assert run.code == 1, run
    assert expected in problem_lines(run.err), run
    assert "Traceback" not in run.err, run
    assert run.seconds < BOMB_SECONDS, run
    assert (tree_state(root), tree_state(CORPUS_OUTSIDE)) == before, f"{command} wrote something\n{run}"


# ------------------------------------------------------------- values render literally (apply)

HOSTILE_VALUES = {
    "yaml_keys": "x\nkind: Secret",
    "yaml_document": "x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: pwn}",
    "jinja_expression": "{{ 7*7 }}",
    "jinja_statement": "{% raw %}",
    "jinja_comment": "{# x",
    "jinja_closing": "}}{{ {% endraw %}",
    "yaml_alias": "*anchor",
    "yaml_tag": "!!python/object/apply:os.system ['touch /tmp/pwned']",
    "yaml_flow": "{a: 1}, [b]",
    "quotes": "\"double\" 'single' \\back\\slash",
    "line_breaks": "a\r\nb\u2028c\x85d\te",
}


def hostile_values_manifest() -> tuple[str, dict[str, str], dict[str, str]]:
    as_yaml = lambda values: json.dumps(values)  # noqa: E731 - JSON is YAML: every value quoted and escaped
    annotations = {f"example.com/{key.replace('_', '-')}": value for key, value in HOSTILE_VALUES.items()}
    env = {key.upper(): value for key, value in HOSTILE_VALUES.items()}
    return manifest_with(
        f"        env: {as_yaml(env)}\n"
        f"        variables: {as_yaml(HOSTILE_VALUES)}\n"
        f"        annotations: {as_yaml(annotations)}\n"
    ), annotations, env


def test_annotation_variable_and_env_values_render_literally(tmp_path: Path) -> None:
    """Values the schema lets through (annotations, variables, env; label values and every name
    are refused above) arrive verbatim: the rendered SpinApp is one document with exactly the
    expected keys, and the artifact's env is literal."""
    from faasops.oci import OciLayout

    manifest, annotations, env = hostile_values_manifest()
    project = tmp_path / "project"
    write_project(project, manifest)

    run = run_cli(project, "apply", "--auto-approve")

    assert run.code == 0, run
    deployed = sorted(p.relative_to(project / ".faasops" / "deploy").as_posix()
                      for p in (project / ".faasops" / "deploy").rglob("*") if p.is_file())
    # The namespace, the executor the SpinApp names (issue 19) and the function: nothing injected.
    assert deployed == ["demo/_executors/containerd-shim-spin.yaml", "demo/_namespace.yaml", "demo/hello.yaml"], deployed
    documents = list(yaml.safe_load_all((project / ".faasops" / "deploy" / "demo" / "hello.yaml").read_text()))
    assert len(documents) == 1, documents
    spinapp = documents[0]
    assert set(spinapp) == {"apiVersion", "kind", "metadata", "spec"}
    assert (spinapp["apiVersion"], spinapp["kind"]) == ("core.spinkube.dev/v1alpha1", "SpinApp")
    assert set(spinapp["metadata"]) == {"name", "namespace", "labels", "annotations"}
    assert (spinapp["metadata"]["name"], spinapp["metadata"]["namespace"]) == ("hello", "demo")
    assert spinapp["metadata"]["annotations"] == annotations
    assert set(spinapp["spec"]) == {"image", "executor", "replicas", "variables", "podLabels", "podAnnotations"}
    assert spinapp["spec"]["podAnnotations"] == annotations
    assert spinapp["spec"]["variables"] == [{"name": k, "value": v} for k, v in sorted(HOSTILE_VALUES.items())]
    for other in deployed:
        (document,) = yaml.safe_load_all((project / ".faasops" / "deploy" / other).read_text())
        assert document["kind"] in {"SpinApp", "Namespace", "SpinAppExecutor"}, other

    digest = spinapp["spec"]["image"].partition("@")[2]
    locked = OciLayout(project / ".faasops" / "oci").locked_app_for(digest)
    assert locked["components"][0]["env"] == env


# ------------------------------------------------------------------ handler code never runs on the host

IMPORT_TIME_HANDLER = '''\
import os
import subprocess

from spin_sdk import http
from spin_sdk.http import Request, Response

open({marker!r}, "w").write("top-level code ran")
os.system("touch " + {marker!r} + "-system")
subprocess.run(["touch", {marker!r} + "-subprocess"])
raise SystemExit("a handler that exits at import")


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {{"content-type": "text/plain"}}, b"ok")
'''


def test_validate_and_plan_never_run_handler_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    project = tmp_path / "project"
    source = write_project(project, handler=IMPORT_TIME_HANDLER.format(marker=str(marker)))
    # A helper module the handler could import, and files Python would pick up if it ever
    # started in the source directory.
    (source / "helper.py").write_text(f"open({str(marker)!r} + '-helper', 'w')\n")
    (source / "sitecustomize.py").write_text(f"open({str(marker)!r} + '-sitecustomize', 'w')\n")
    before = tree_state(project)

    for args in (("validate",), ("plan",), ("plan", "--format", "json"), ("plan", "--format", "markdown")):
        run = run_cli(project, *args)
        assert run.code == 0, run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"], "handler code ran on the host"
    assert tree_state(project) == before and not (project / ".faasops").exists()


SANDBOX_PROBE_HANDLER = '''\
import os

from spin_sdk import http
from spin_sdk.http import Request, Response

# Pre-initialisation runs this inside the WebAssembly sandbox: try every way out.
for target in [{marker!r}, {source_marker!r}] + ["/%d/{name}" % i for i in range(10)]:
    try:
        with open(target, "w") as stream:
            stream.write("written during the build")
    except Exception:
        pass
for attempt in (lambda: os.system("touch " + {marker!r} + "-system"),
                lambda: __import__("subprocess").run(["touch", {marker!r} + "-subprocess"])):
    try:
        attempt()
    except Exception:
        pass


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {{"content-type": "text/plain"}}, b"sandboxed")
'''

# Python imports this instead of the real package if the build's host-side Python ever puts the
# function's source directory on its path.
SHADOW_MODULE = '''\
open({marker!r}, "w").write("host code ran during the build")
'''


def host_python_dirs() -> set[Path]:
    """Where the host's Python looks for packages (and runs any .pth file at start-up)."""
    return {Path(p) for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()}


def build_fresh(tmp_path: Path, project: Path) -> CliRun:
    """`apply` with a private build cache, so componentize-py really runs."""
    return run_cli(project, "apply", "--auto-approve", env={"FAASOPS_BUILD_CACHE": str(tmp_path / "builds")},
                   timeout=600)


@pytest.mark.slow
def test_build_keeps_handler_top_level_code_inside_the_sandbox(tmp_path: Path) -> None:
    """componentize-py runs the module's top-level code while pre-initialising the component
    (fresh build, private cache). It must reach nothing on the host: not an absolute path, not the
    real source directory, and not the Python installation whose packages the build uses — a .pth
    file dropped there would run at every later Python start."""
    name = f"faasops-sandbox-probe-{uuid.uuid4().hex}"
    project, source_dir = tmp_path / "project", tmp_path / "project" / "functions" / "hello"
    write_project(project, handler=SANDBOX_PROBE_HANDLER.format(
        marker=str(tmp_path / name), source_marker=str(source_dir / name), name=name))
    try:
        run = build_fresh(tmp_path, project)
        escaped = [str(p) for directory in (tmp_path, source_dir, *host_python_dirs())
                   for p in sorted(directory.glob(f"{name}*"))]
        assert escaped == [], f"handler code wrote on the host during the build: {escaped}\n{run}"
        assert run.code == 0 and "1 built" in run.out, run
    finally:
        for directory in host_python_dirs():
            for planted in directory.glob(f"{name}*"):
                planted.unlink()


@pytest.mark.slow
def test_build_never_imports_modules_from_the_function_source_on_the_host(tmp_path: Path) -> None:
    """The host-side process that starts componentize-py runs in the extracted source: a module
    there named like one it imports must not shadow it."""
    marker = tmp_path / "shadow-marker"
    project = tmp_path / "project"
    source_dir = write_project(project)
    (source_dir / "componentize_py.py").write_text(SHADOW_MODULE.format(marker=str(marker)))

    run = build_fresh(tmp_path, project)

    assert not any(tmp_path.glob("shadow-marker*")), f"a module from the function source ran on the host\n{run}"
    assert run.code == 0 and "1 built" in run.out, run
