"""`faasops validate` flags imports a component can't satisfy, and requirements.txt lines the
builder won't install, with file:line:col — before any build."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cli_support import run_faasops

MANIFEST = """\
apiVersion: faasops/v1
project: demo
backend: local
workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
"""

HANDLER_TAIL = """
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"ok")
"""


def project(root: Path, files: dict[str, str]) -> Path:
    (root / "faas.yaml").write_text(MANIFEST)
    for name, text in files.items():
        path = root / "functions" / "hello" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def problem_lines(root: Path) -> list[str]:
    result = run_faasops("-C", str(root), "validate")
    assert result.code == 1, result.output
    assert "Traceback" not in result.err
    return [line.strip() for line in result.err.splitlines()[1:]]


def test_validate_flags_every_import_nothing_provides_with_its_location(tmp_path):
    root = project(tmp_path, {
        "app.py": """\
            import json, os.path
            import requests
            from helpers import shout
            from spin_sdk import http
            from spin_sdk.http import Request, Response


            class IncomingHandler(http.IncomingHandler):
                def handle_request(self, request: Request) -> Response:
                    import yaml
                    return Response(200, {}, shout(b"ok"))
            """,
        "helpers/__init__.py": "from .text import shout\n",
        "helpers/text.py": "from __future__ import annotations\nfrom  dateutil.parser import parse\n\ndef shout(b): return b\n",
        # Not reached from the handler module: a test suite's imports are not the component's.
        "test_app.py": "import pytest\n",
    })

    lines = problem_lines(root)

    assert len(lines) == 3
    assert lines[0].startswith("functions/hello/app.py:2:1: imports `requests`, but no module `requests` is in the "
                               "source directory, the standard library or spin-sdk (no requirements.txt declares "
                               "dependencies); add the package that provides `requests` to requirements.txt")
    assert lines[1].startswith("functions/hello/app.py:10:9: imports `yaml`, but no module `yaml`")
    assert lines[2].startswith("functions/hello/helpers/text.py:2:1: imports `dateutil.parser`, but no module `dateutil`")


def test_validate_accepts_stdlib_spin_sdk_local_modules_and_guarded_fallbacks(tmp_path):
    root = project(tmp_path, {
        "app.py": textwrap.dedent("""\
            from __future__ import annotations
            import asyncio, collections.abc, urllib.parse
            from typing import TYPE_CHECKING
            import spin_sdk.key_value
            from spin_sdk import variables
            import routes
            from lib.util import helper
            from lib import other
            from handlers import *
            try:
                import ujson as json
            except ImportError:
                import json
            try:
                from orjson import dumps
            except (ModuleNotFoundError, ValueError):
                dumps = None
            if TYPE_CHECKING:
                from mypy_extensions import TypedDict
            """) + HANDLER_TAIL,
        "routes.py": "from . import nothing_here\n",
        "lib/util.py": "def helper(): pass\n",  # a namespace package (no __init__.py)
        "lib/other.py": "from .util import helper\n",
        "handlers/__init__.py": "",
    })

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 0, result.output
    assert "valid" in result.out


def test_declared_dependencies_are_checked_at_build_time_not_guessed_at_validate(tmp_path):
    # Whether `PyYAML` provides `yaml`, or `requests` brings `urllib3`, is known once installed.
    root = project(tmp_path, {
        "app.py": "import yaml\nimport urllib3\nimport requests\n" + HANDLER_TAIL,
        "requirements.txt": "PyYAML==6.0.2  # config\nrequests[socks]>=2.31 ; python_version >= \"3.8\"\n",
    })

    result = run_faasops("-C", str(root), "validate")

    assert result.code == 0, result.output


def test_toolchain_lines_of_the_spin_template_declare_no_dependencies(tmp_path):
    # spin-python-sdk's http-py template lists the toolchain for the developer's virtualenv.
    root = project(tmp_path, {
        "app.py": "import requests\n" + HANDLER_TAIL,
        "requirements.txt": "spin-sdk == 3.4.1\ncomponentize-py == 0.16.0\n",
    })

    lines = problem_lines(root)

    assert len(lines) == 1
    assert lines[0].startswith("functions/hello/app.py:1:1: imports `requests`, but no module `requests`")


def test_requirement_lines_the_builder_would_not_install_are_located(tmp_path):
    root = project(tmp_path, {
        "app.py": HANDLER_TAIL,
        "requirements.txt": textwrap.dedent("""\
            # comment
            requests==2.32.3 \\
                --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6
            -e .
            --index-url https://evil.example/simple
            -r other.txt
            mypkg @ https://example.com/mypkg-1.0.tar.gz
            ./local/pkg
            http-router>=2 --no-binary :all:
            """),
    })

    lines = problem_lines(root)

    assert [line.split(" ", 1)[0] for line in lines] == [f"functions/hello/requirements.txt:{n}:1:" for n in (4, 5, 6, 7, 8, 9)]
    assert "editable installs are not supported" in lines[0]
    assert "PIP_INDEX_URL" in lines[1] and "build host's pip configuration" in lines[1]
    assert "list the requirements in this file" in lines[2]
    assert "direct URLs are not installed" in lines[3]
    assert "is not a requirement by name" in lines[4]
    assert "`--no-binary` is not supported here" in lines[5]


def test_a_source_that_changes_sys_path_is_not_second_guessed(tmp_path):
    root = project(tmp_path, {
        "app.py": "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'vendor'))\n"
                  "import vendored_thing\n" + HANDLER_TAIL,
        "vendor/vendored_thing.py": "",
    })

    assert run_faasops("-C", str(root), "validate").code == 0
