"""Hostile project templates (``templates:`` in faas.yaml) through the real CLI.

Templates arrive in pull requests and ``plan`` renders them (the drift check of deployed
functions), so each template below must end ``plan`` — and ``apply`` — with exit 1 and one
message naming the template file (and line, or the line of the rendered output), without a
traceback and without hanging: every run has a subprocess timeout, so a hang fails the test.
The hello example is applied once with the built-in templates; each test then plans a copy of
that deployed project with one hostile template.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cli_support import Result, copy_example, run_faasops

# Generous: a refusal takes about a second; a hang is what this catches.
HANG_TIMEOUT_S = 120

SPINAPP = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
spec:
  image: {{ image }}
  executor: {{ executor }}
"""

ALIAS_BOMB = SPINAPP + """\
  podAnnotations:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""

#: id → (template, what the message says). Each template is rendered as spinapp.yaml.j2.
HOSTILE = {
    "nested-range-loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n" + SPINAPP,
        "steps (loop iterations",
    ),
    "nested-loops-over-a-stored-range": (
        "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}\n" + SPINAPP,
        "steps (loop iterations",
    ),
    "macro-calling-itself-twice": (
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}\n" + SPINAPP,
        "cannot render template: the template",
    ),
    "endless-macro-recursion": (
        "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}\n" + SPINAPP,
        "calls nest deeper than 64 levels",
    ),
    "template-including-itself": ('{% include "spinapp.yaml.j2" %}\n' + SPINAPP, "recursion too deep"),
    "string-multiplication": ('# {{ "x" * 10**9 }}\n' + SPINAPP, "would build 1000000000 characters"),
    "list-multiplication": ('{% set l = ["x" * 100000] * 100000 %}\n' + SPINAPP, "would build"),
    "center-filter": ('# {{ "x"|center(1000000000) }}\n' + SPINAPP, "center(1000000000) would build"),
    "center-method": ('# {{ "x".center(1000000000) }}\n' + SPINAPP, "center(1000000000) would build"),
    "huge-power": ("# {{ 2 ** (10 ** 8) }}\n" + SPINAPP, "more than 65536 bits"),
    "format-width": ('# {{ "{:>999999999}".format(1) }}\n' + SPINAPP, "format width 999999999"),
    "percent-width": ('# {{ "%0999999999d" % 1 }}\n' + SPINAPP, "format width 999999999"),
    "percent-star-width": ('# {{ "%*d"|format(999999999, 1) }}\n' + SPINAPP, "'*'"),
    "join-separator": ('# {{ range(100000)|join("x" * 100000) }}\n' + SPINAPP, "join would build"),
    "huge-output": ('{% for i in range(100000) %}# {{ "x" * 1000 }}\n{% endfor %}' + SPINAPP, "produces more than"),
    "literal-text-in-a-set-block": (
        "{% set s %}{% for i in range(100000) %}" + "x" * 200 + "{% endfor %}{% endset %}\n" + SPINAPP,
        "produces more than",
    ),
    "list-doubling-in-place": (
        "{% set l = [1, 2] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}\n" + SPINAPP,
        "produces more than",
    ),
    "string-doubling": (
        '{% set d = {"s": "xx"} %}{% for i in range(40) %}{% set _ = d.update({"s": d.s ~ d.s}) %}{% endfor %}\n'
        + SPINAPP,
        "produces more than",
    ),
    "lipsum": ("# {{ lipsum(1000000) }}\n" + SPINAPP, "lipsum() would build"),
    "class-escape": ("# {{ ''.__class__.__mro__[1].__subclasses__() }}\n" + SPINAPP, "is unsafe"),
    "globals-escape": ("# {{ cycler.__init__.__globals__ }}\n" + SPINAPP, "is unsafe"),
    "include-parent-directory": ('# {% include "../faas.yaml" %}\n' + SPINAPP, "template not found: ../faas.yaml"),
    "include-absolute-path": ('# {% include "/etc/passwd" %}\n' + SPINAPP, "template not found: /etc/passwd"),
    "include-through-symlink": ('# {% include "outside/passwd" %}\n' + SPINAPP, "leads outside"),
    "division-by-zero": ("# {{ 1 / 0 }}\n" + SPINAPP, "ZeroDivisionError"),
    "yaml-alias-bomb": (ALIAS_BOMB, "is it an alias bomb?"),
    "deeply-nested-output": (
        SPINAPP + "  podAnnotations: {% for i in range(100) %}[{% endfor %}1{% for i in range(100) %}]{% endfor %}\n",
        "nests deeper than 64 levels",
    ),
    "many-documents": (SPINAPP + "{% for i in range(1000) %}---\n{}\n{% endfor %}", "more than 16 YAML documents"),
    "extra-secret-document": (
        SPINAPP + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: {{ namespace }}}\n",
        "kind 'Secret' is not allowed",
    ),
    "python-tag": (SPINAPP + '  x: !!python/object/apply:os.system ["true"]\n', "!!python/object/apply:os.system"),
    "duplicate-key": (SPINAPP + "  image: other\n", "duplicate key 'image'"),
}

# templates/spinapp.yaml.j2, then a template line (:N) or a line:col of the rendered output
# (with the path of the value, as faas.yaml problems have).
LOCATED = re.compile(r"^Error: templates/spinapp\.yaml\.j2(:\d+| \(rendered for demo/hello\):\d+:\d+( \S+)?)?: ", re.M)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hello example, applied with the built-in templates."""
    project = copy_example("hello", tmp_path_factory.mktemp("deployed"))
    applied = run_faasops("apply", "--auto-approve", cwd=project, timeout=600)
    assert applied.code == 0, applied.output
    return project


def with_template(source: Path, dest: Path, template: str) -> Path:
    """A copy of ``source`` (state included) whose faas.yaml uses ``templates/`` holding ``template``."""
    project = dest / "project"
    shutil.copytree(source, project, symlinks=True)
    templates = project / "templates"
    templates.mkdir()
    (templates / "spinapp.yaml.j2").write_text(template)
    (templates / "outside").symlink_to("/etc")
    manifest = project / "faas.yaml"
    manifest.write_text(manifest.read_text() + "templates: templates\n")
    return project


def assert_refused(result: Result, message: str) -> None:
    assert result.code == 1, result.output
    assert "Traceback" not in result.output, result.output
    assert LOCATED.search(result.err), result.output
    assert message in result.err, result.output


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_plan_refuses_hostile_template_with_a_located_message(deployed: Path, tmp_path: Path, case: str) -> None:
    template, message = HOSTILE[case]
    project = with_template(deployed, tmp_path, template)
    assert_refused(run_faasops("plan", cwd=project, timeout=HANG_TIMEOUT_S), message)


def test_template_line_is_the_line_that_failed(deployed: Path, tmp_path: Path) -> None:
    project = with_template(deployed, tmp_path, SPINAPP + '  x: {{ "x" * 10**9 }}\n')
    result = run_faasops("plan", cwd=project, timeout=HANG_TIMEOUT_S)
    assert_refused(result, "would build")
    assert "templates/spinapp.yaml.j2:9: " in result.err, result.output


def test_alias_bomb_is_located_in_the_rendered_output(deployed: Path, tmp_path: Path) -> None:
    project = with_template(deployed, tmp_path, ALIAS_BOMB)
    result = run_faasops("plan", cwd=project, timeout=HANG_TIMEOUT_S)
    assert_refused(result, "alias bomb")
    assert re.search(r"templates/spinapp\.yaml\.j2 \(rendered for demo/hello\):1[0-9]:\d+: alias \*", result.err)


def test_apply_refuses_hostile_template_too(tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    templates = project / "templates"
    templates.mkdir()
    (templates / "spinapp.yaml.j2").write_text(HOSTILE["nested-range-loops"][0])
    (project / "faas.yaml").write_text((project / "faas.yaml").read_text() + "templates: templates\n")
    result = run_faasops("apply", "--auto-approve", cwd=project, timeout=600)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output, result.output
    assert "templates/spinapp.yaml.j2:1: cannot render template: the template takes more than" in result.output


def test_ordinary_template_with_loops_and_macros_still_renders(deployed: Path, tmp_path: Path) -> None:
    template = """\
{%- macro label_map(values) -%}{{ values }}{%- endmacro -%}
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
  labels: {{ label_map(labels) }}
  annotations:
{%- for i in range(50) %}
    {{ "note-%02d"|format(i) }}: {{ ("n" ~ i)|upper ~ "-" ~ "x" * 10 }}
{%- endfor %}
spec:
  image: {{ image }}
  executor: {{ executor }}
  replicas: {{ replicas }}
  podLabels: {{ pod_labels }}
"""
    project = with_template(deployed, tmp_path, template)
    result = run_faasops("plan", cwd=project, timeout=HANG_TIMEOUT_S)
    assert result.code == 0, result.output
    assert "Traceback" not in result.output and "Error" not in result.output, result.output
