"""The handler contract, checked on source text: which modules Spin (spin-sdk 3.4.1) can serve."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

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
    (message,) = problems("def handle_request(request):\n    pass\n")

    assert message.startswith("fn/app.py: no top-level class IncomingHandler(http.IncomingHandler) found; a Spin handler looks like: from spin_sdk import http;")


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
    (message,) = problems("from spin_sdk import http\nclass IncomingHandler(http.IncomingHandler):\n    def handle(self, request):\n        pass\n")

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
