"""The handler contract, checked on source text: which modules Spin (spin-sdk 3.4.1) can serve."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from cli_support import run_faasops
from faasops.handler_contract import check_handler, check_handler_source


def problems(source: str) -> list[str]:
    return [str(problem) for problem in check_handler_source(textwrap.dedent(source), "fn/app.py")]


@pytest.mark.parametrize(
    "source",
    [
        """\
        from spin_sdk import http

        class IncomingHandler(http.IncomingHandler):
            def handle_request(self, request):
                return http.Response(200, {}, b"")
        """,
        """\
        import spin_sdk.http

        class IncomingHandler(spin_sdk.http.IncomingHandler):
            def handle_request(self, request):
                pass
        """,
        """\
        from spin_sdk.http import IncomingHandler as Base

        class IncomingHandler(Base):
            def handle_request(self, request=None):
                pass
        """,
        """\
        from spin_sdk.http import IncomingHandler

        class IncomingHandler(IncomingHandler):
            def handle_request(self, /, request):
                pass
        """,
        """\
        try:
            from spin_sdk import http as h
        except ImportError:
            raise

        class Mixin:
            pass

        class IncomingHandler(Mixin, h.IncomingHandler):
            def helper(self):
                pass

            def handle_request(self, request: "h.Request") -> "h.Response":
                return self.helper()
        """,
    ],
    ids=["http-module", "dotted-import", "aliased-class", "same-name-class", "try-import-and-mixin"],
)
def test_valid_handlers_meet_the_contract(source: str):
    assert problems(source) == []


def test_missing_class_shows_what_a_handler_looks_like():
    (message,) = problems("def handle(request):\n    pass\n")

    assert message.startswith("fn/app.py: no top-level class IncomingHandler(http.IncomingHandler) found; a Spin handler looks like: from spin_sdk import http;")


TARGET = ("faasops builds handlers for spin-sdk 3.4.1 (componentize-py's spin-http world): write a synchronous "
          "`class IncomingHandler(http.IncomingHandler):` with `def handle_request(self, request):` after "
          "`from spin_sdk import http`")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (  # spin-python-sdk's README and examples since v4.0.0
            """\
            from spin_sdk import http
            from spin_sdk.http import Request, Response

            class HttpHandler(http.Handler):
                async def handle_request(self, request: Request) -> Response:
                    return Response(200, {"content-type": "text/plain"}, b"hi")
            """,
            "fn/app.py:4:1: this is a spin-sdk 4/5 handler (`class HttpHandler(http.Handler)`, the async "
            "wasi:http 0.3 API); " + TARGET,
        ),
        (
            """\
            from spin_sdk.http import HttpHandler as Base

            class HttpHandler(Base):
                async def handle_request(self, request):
                    pass
            """,
            "fn/app.py:3:1: this is a spin-sdk 4/5 handler (`class HttpHandler(Base)`, the async "
            "wasi:http 0.3 API); " + TARGET,
        ),
        (  # spin-python-sdk's examples before 3.0 (the spin_sdk.http.simple module)
            """\
            from spin_sdk.http import simple
            from spin_sdk.http.simple import Request, Response

            class Handler(simple.IncomingHandler):
                def handle_request(self, request: Request) -> Response:
                    pass
            """,
            "fn/app.py:4:1: this is a spin-sdk 2.0 pre-release handler (`class Handler(simple.IncomingHandler)` "
            "from spin_sdk.http.simple); " + TARGET,
        ),
        (  # spin-python-sdk v0.x / spin-sdk 1.x, built with `spin py2wasm`
            """\
            from spin_http import Response

            def handle_request(request):
                return Response(200, [("content-type", "text/plain")], bytes("hi", "utf-8"))
            """,
            "fn/app.py:3:1: this is a spin-sdk 1.x handler (a module-level handle_request(request) with "
            "spin_http, built with `spin py2wasm`); " + TARGET,
        ),
        (
            "from spin_sdk import http\n\nclass Handler(http.IncomingHandler):\n    def handle_request(self, request):\n"
            "        pass\n",
            "fn/app.py:3:1: this is a spin-sdk 3.4.1 handler named Handler: `class Handler(http.IncomingHandler)`; "
            "spin-sdk's spin-http world calls the class named IncomingHandler, so rename it; " + TARGET,
        ),
        (
            "def handle_request(request):\n    pass\n",
            "fn/app.py:1:1: this is a module-level handle_request function, as in spin-sdk 1.x; " + TARGET,
        ),
    ],
    ids=["v4-v5-readme", "v4-v5-aliased", "2.0-simple", "1.x-spin-http", "3.4.1-misnamed", "module-level-function"],
)
def test_handlers_of_other_spin_sdk_generations_are_named_with_what_faasops_targets(source: str, expected: str):
    assert problems(source) == [expected]


def test_a_simple_incoming_handler_base_says_it_is_the_pre_3_api():
    source = ("from spin_sdk.http import simple\n\nclass IncomingHandler(simple.IncomingHandler):\n"
              "    def handle_request(self, request):\n        pass\n")

    assert problems(source) == [
        "fn/app.py:3:1: class IncomingHandler inherits from simple.IncomingHandler: this is a spin-sdk 2.0 "
        "pre-release handler (spin_sdk.http.simple); " + TARGET
    ]


def test_class_inside_a_function_is_not_top_level():
    source = """\
    from spin_sdk import http

    def make():
        class IncomingHandler(http.IncomingHandler):
            def handle_request(self, request):
                pass
    """
    assert problems(source)[0].startswith("fn/app.py: no top-level class IncomingHandler")


@pytest.mark.parametrize(
    ("header", "base", "expected"),
    [
        ("", "object", "fn/app.py:3:1: class IncomingHandler must inherit from spin_sdk's http.IncomingHandler, not object"),
        ("from mylib import http", "http.IncomingHandler", "fn/app.py:3:1: class IncomingHandler inherits from http.IncomingHandler, but `http` is not imported from spin_sdk here"),
        ("from mylib import IncomingHandler", "IncomingHandler", "fn/app.py:3:1: class IncomingHandler inherits from IncomingHandler, which is not imported from spin_sdk.http"),
        ("import spin_sdk.wit as http", "http.IncomingHandler", "fn/app.py:3:1: class IncomingHandler inherits from http.IncomingHandler, but `http` is not imported from spin_sdk here"),
    ],
)
def test_wrong_base_class_is_located_at_the_class(header: str, base: str, expected: str):
    source = f"{header}\n\nclass IncomingHandler({base}):\n    def handle_request(self, request):\n        pass\n"

    (message,) = problems(source)

    assert message.startswith(expected)


def test_class_without_base_says_which_base_it_needs():
    (message,) = problems("class IncomingHandler:\n    def handle_request(self, request):\n        pass\n")

    assert message.startswith("fn/app.py:1:1: class IncomingHandler has no base class")


def test_missing_handle_request_is_reported_at_the_class():
    (message,) = problems("from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    def handler(self, request):\n        pass\n")

    assert message.startswith("fn/app.py:2:1: class IncomingHandler has no handle_request method")


def test_async_handle_request_explains_the_sync_api():
    source = "from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    async def handle_request(self, request):\n        pass\n"

    assert problems(source) == [
        "fn/app.py:3:5: handle_request must not be async: spin-sdk 3.4.1 handlers are synchronous "
        "(async handlers are spin-sdk 5's different API); write `def handle_request(self, request):`"
    ]


@pytest.mark.parametrize(
    "signature",
    ["self", "self, request, extra", "self, request, extra=None", "self, *args", "self, request, **kwargs", "self, request, *, flag=False"],
)
def test_handle_request_takes_exactly_one_argument_besides_self(signature: str):
    source = f"from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    def handle_request({signature}):\n        pass\n"

    (message,) = problems(source)

    assert message == (
        "fn/app.py:3:5: handle_request must take exactly one argument besides self: "
        f"`def handle_request(self, request):` (found `handle_request({signature})`)"
    )


def test_staticmethod_handle_request_is_rejected():
    source = "from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    @staticmethod\n    def handle_request(self, request):\n        pass\n"

    assert problems(source)[0].startswith("fn/app.py:4:5: handle_request must be a plain method")


def test_syntax_error_is_located_in_the_module():
    assert problems("from spin_sdk import http\n\nclass IncomingHandler(http.IncomingHandler)\n    pass\n") == [
        "fn/app.py:3:44: Python syntax error: expected ':'"
    ]


def test_columns_count_characters_not_bytes():
    source = "from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    x = 'é'; y = 1\n    async def handle_request(self, request): pass\n"
    (message,) = problems(source)
    assert message.startswith("fn/app.py:4:5:")


def test_non_utf8_module_is_located_at_the_first_bad_byte(tmp_path: Path):
    path = tmp_path / "app.py"
    path.write_bytes(b"from spin_sdk import http\n# caf\xe9\n")

    assert [str(p) for p in check_handler(path, "fn/app.py")] == [
        "fn/app.py:2:6: the file is not valid UTF-8: byte 0xe9 cannot start or continue a character; save it as UTF-8"
    ]


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path):
    path = tmp_path / "app.py"
    path.write_bytes(b"\xef\xbb\xbffrom spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    def handle_request(self, request):\n        pass\n")

    assert check_handler(path, "fn/app.py") == []


def test_compiler_warnings_in_the_module_are_not_raised():
    source = 'import re\nfrom spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    def handle_request(self, request):\n        return re.match("\\d", "1")\n'

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert problems(source) == []


def test_null_bytes_are_a_problem_not_a_crash():
    (message,) = problems("x = 1\0\n")
    assert message.startswith("fn/app.py")


def test_module_code_is_parsed_never_executed(tmp_path: Path):
    marker = tmp_path / "marker"
    path = tmp_path / "app.py"
    path.write_text(
        f"import os; os.system('touch {marker}')\n"
        f"open({str(marker)!r}, 'w').close()\n"
        "from spin_sdk import http\n"
        "class IncomingHandler(http.IncomingHandler):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    def handle_request(self, request):\n"
        "        pass\n",
        encoding="utf-8",
    )

    assert check_handler(path, "fn/app.py") == []
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py"]  # no __pycache__ either


def test_directory_instead_of_module_is_a_problem(tmp_path: Path):
    (tmp_path / "app.py").mkdir()

    assert [str(p) for p in check_handler(tmp_path / "app.py", "fn/app.py")] == [
        "fn/app.py: is not a regular file; the handler must be a Python module"
    ]


DOTTED_MANIFEST = """\
apiVersion: faasops/v1
project: dotted
workspaces:
  - name: demo
    functions:
      - name: ok
        source: functions/f
        handler: handlers.http
      - name: keyword
        source: functions/f
        handler: handlers.class
      - name: empty-part
        source: functions/f
        handler: handlers..http
      - name: missing
        source: functions/f
        handler: handlers.other
      - name: broken
        source: functions/f
        handler: handlers.v5
"""


def test_a_dotted_handler_module_is_the_file_in_its_package_as_componentize_py_reads_it(tmp_path: Path):
    handlers = tmp_path / "functions" / "f" / "handlers"
    handlers.mkdir(parents=True)
    (handlers / "http.py").write_text("from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n"
                                      "    def handle_request(self, request):\n        pass\n")
    (handlers / "v5.py").write_text("from spin_sdk import http\n\nclass HttpHandler(http.Handler):\n"
                                    "    async def handle_request(self, request):\n        pass\n")
    (tmp_path / "faas.yaml").write_text(DOTTED_MANIFEST)

    result = run_faasops("-C", str(tmp_path), "validate")

    assert result.code == 1
    assert result.err.splitlines()[1:] == [
        "  faas.yaml:11:18 workspaces[0].functions[1].handler: 'class' is a Python keyword and can't name a module; "
        "rename the module",
        "  faas.yaml:14:18 workspaces[0].functions[2].handler: 'handlers..http' is not a valid Python module name: use "
        "letters, digits and '_', not starting with a digit, dots between package and module, without the .py suffix "
        "(such as 'app' or 'handlers.http')",
        "  faas.yaml:17:18 workspaces[0].functions[3].handler: the handler module functions/f/handlers/other.py does "
        "not exist",
        "  functions/f/handlers/v5.py:3:1: this is a spin-sdk 4/5 handler (`class HttpHandler(http.Handler)`, the "
        "async wasi:http 0.3 API); " + TARGET,
    ]
