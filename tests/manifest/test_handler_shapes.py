"""Every handler shape spin-sdk 3.4.1 (with componentize-py 0.16.0) serves passes `faasops
validate`; shapes that build but can't serve are refused with a located message.

componentize-py calls ``IncomingHandler().handle(request, response_out)`` on the module's
top-level ``IncomingHandler``; spin-sdk's ``http.IncomingHandler.handle`` calls
``handle_request``. The shapes below were each built with componentize-py 0.16.0 and spin-sdk
3.4.1 (the streaming example and a ``handle`` override also run in tests/runtime/test_streaming.py).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cli_support import run_faasops

MANIFEST = """\
apiVersion: faasops/v1
project: shapes
workspaces:
  - name: demo
    functions:
      - name: fn
        source: fn
"""

STREAMING_EXAMPLE = Path(__file__).parents[1] / "corpus" / "apps" / "sdk-streaming" / "src" / "app.py"

ACCEPTED = {
    "handle-request": """\
        from spin_sdk import http

        class IncomingHandler(http.IncomingHandler):
            def handle_request(self, request):
                return http.Response(200, {}, b"")
        """,
    "http-handler-overriding-handle": """\
        from spin_sdk import http
        from spin_sdk.wit.imports.types import Fields, OutgoingResponse, ResponseOutparam
        from spin_sdk.wit.types import Ok

        class IncomingHandler(http.IncomingHandler):
            def handle(self, request, response_out):
                ResponseOutparam.set(response_out, Ok(OutgoingResponse(Fields())))
        """,
    "wit-export": """\
        from spin_sdk.wit import exports

        class IncomingHandler(exports.IncomingHandler):
            def handle(self, request, response_out):
                pass
        """,
    "wit-export-aliased": """\
        from spin_sdk.wit.exports import IncomingHandler as Base

        class IncomingHandler(Base):
            def handle(self, request: "IncomingRequest", response_out: "ResponseOutparam") -> None:
                pass
        """,
    "wit-export-dotted": """\
        import spin_sdk.wit.exports

        class IncomingHandler(spin_sdk.wit.exports.IncomingHandler):
            def handle(self, request, response_out):
                pass
        """,
    "protocol-without-base": """\
        class IncomingHandler:
            def handle(self, request, response_out):
                pass
        """,
    "through-a-local-base": """\
        from spin_sdk import http

        class Base(http.IncomingHandler):
            def handle_request(self, request):
                return http.Response(200, {}, b"")

        class IncomingHandler(Base):
            pass
        """,
    "handle-from-a-local-mixin": """\
        from spin_sdk.wit import exports

        class Streaming:
            def handle(self, request, response_out):
                pass

        class IncomingHandler(Streaming, exports.IncomingHandler):
            pass
        """,
    "assigned": """\
        from spin_sdk import http

        class Impl(http.IncomingHandler):
            def handle_request(self, request):
                return http.Response(200, {}, b"")

        IncomingHandler = Impl
        """,
}


def write_project(tmp_path: Path, app: str, extra: dict[str, str] | None = None) -> Path:
    (tmp_path / "faas.yaml").write_text(MANIFEST)
    source = tmp_path / "fn"
    source.mkdir()
    (source / "app.py").write_text(app)
    for name, text in (extra or {}).items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_validate_accepts_every_shape_spin_sdk_serves(tmp_path: Path, name: str) -> None:
    project = write_project(tmp_path, textwrap.dedent(ACCEPTED[name]))

    result = run_faasops("-C", str(project), "validate")

    assert (result.code, result.err) == (0, "")


def test_validate_accepts_spin_sdk_streaming_example_unchanged(tmp_path: Path) -> None:
    project = write_project(tmp_path, STREAMING_EXAMPLE.read_text())

    result = run_faasops("-C", str(project), "validate")

    assert (result.code, result.err) == (0, "")


@pytest.mark.parametrize("module", ["impl.py", "handlers/__init__.py"])
def test_a_handler_reexported_from_a_module_of_the_source_directory_is_checked_there(
        tmp_path: Path, module: str) -> None:
    importer = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    good = """\
        from spin_sdk import http

        class IncomingHandler(http.IncomingHandler):
            def handle_request(self, request):
                return http.Response(200, {}, b"")
        """
    project = write_project(tmp_path, f"from {importer} import IncomingHandler\n", {module: good})
    assert run_faasops("-C", str(project), "validate").code == 0

    (project / "fn" / module).write_text("from spin_sdk import http\n\nclass IncomingHandler(http.IncomingHandler):\n"
                                         "    async def handle_request(self, request):\n        pass\n")
    result = run_faasops("-C", str(project), "validate")

    assert result.code == 1
    assert result.err.splitlines()[1:] == [
        f"  fn/{module}:4:5: handle_request must not be async: spin-sdk 3.4.1 handlers are synchronous "
        "(async handlers are spin-sdk 5's different API); write `def handle_request(self, request):`"
    ]


def test_a_reexport_from_a_module_outside_the_source_directory_is_refused(tmp_path: Path) -> None:
    project = write_project(tmp_path, "from mylib import IncomingHandler\n")

    result = run_faasops("-C", str(project), "validate")

    assert result.code == 1
    assert result.err.splitlines()[1:] == [
        "  fn/app.py:1:1: IncomingHandler is imported from 'mylib', which is not a module of the function's source "
        "directory; define `class IncomingHandler(http.IncomingHandler):` in the handler module"
    ]


SIGNATURE = "`def handle(self, request, response_out):`"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (  # builds, but every request answers 500 (NotImplementedError)
            "from spin_sdk.http import IncomingHandler\n",
            "fn/app.py:1:1: IncomingHandler is spin-sdk's base class itself, whose handle_request raises "
            "NotImplementedError: subclass it, `class IncomingHandler(http.IncomingHandler):` with "
            "`def handle_request(self, request):`",
        ),
        (
            "from spin_sdk.wit import exports\nIncomingHandler = exports.IncomingHandler\n",
            "fn/app.py:2:1: IncomingHandler is the wasi-http export protocol itself, which has no handle: subclass "
            f"it, `class IncomingHandler(exports.IncomingHandler):` with {SIGNATURE}",
        ),
        (
            "from spin_sdk.wit import exports\n\nclass IncomingHandler(exports.IncomingHandler):\n"
            "    def handle_request(self, request):\n        pass\n",
            "fn/app.py:3:1: class IncomingHandler implements the wasi-http export (spin_sdk.wit.exports.IncomingHandler) "
            f"but has no handle method: add {SIGNATURE}, or inherit from http.IncomingHandler (spin_sdk.http) to "
            "write `def handle_request(self, request):`",
        ),
        (  # builds; componentize-py's call returns an un-awaited coroutine and no response
            "from spin_sdk.wit import exports\n\nclass IncomingHandler(exports.IncomingHandler):\n"
            "    async def handle(self, request, response_out):\n        pass\n",
            "fn/app.py:4:5: handle must not be async: componentize-py calls it synchronously; run a coroutine inside "
            "it as spin-sdk's streaming example does (`loop = poll_loop.PollLoop(); asyncio.set_event_loop(loop); "
            f"loop.run_until_complete(...)`) in {SIGNATURE}",
        ),
        (
            "from spin_sdk import http\n\nclass IncomingHandler(http.IncomingHandler):\n"
            "    def handle(self, request):\n        pass\n",
            f"fn/app.py:4:5: handle must take exactly two arguments besides self: {SIGNATURE} "
            "(found `handle(self, request)`)",
        ),
        (
            "class IncomingHandler:\n    @staticmethod\n    def handle(request, response_out):\n        pass\n",
            f"fn/app.py:3:5: handle must be a plain method, not a staticmethod or classmethod: {SIGNATURE}",
        ),
        (
            "from spin_sdk.wit import exports\n\nclass Handler(exports.IncomingHandler):\n"
            "    def handle(self, request, response_out):\n        pass\n",
            "fn/app.py:3:1: this is a spin-sdk 3.4.1 handler named Handler: `class Handler(exports.IncomingHandler)`; "
            "spin-sdk's spin-http world calls the class named IncomingHandler, so rename it; faasops builds handlers",
        ),
        (
            "from spin_sdk.wit import exports\n\nclass InboundRedis(exports.InboundRedis):\n"
            "    def handle_message(self, message):\n        pass\n",
            "fn/app.py:3:1: this is a Spin Redis trigger handler (`class InboundRedis(exports.InboundRedis)`); faasops "
            "serves HTTP functions (the spin-http world); faasops builds handlers",
        ),
        (
            "def make():\n    pass\n\nIncomingHandler = make()\n",
            "fn/app.py:4:1: IncomingHandler is bound to `make()`, which faasops cannot check without running it: "
            "define `class IncomingHandler(http.IncomingHandler):` in the module (or bind it to such a class)",
        ),
        (
            "from .impl import IncomingHandler\n",
            "fn/app.py:1:1: IncomingHandler is imported relatively (`from .impl import …`); componentize-py loads the "
            "handler as a top-level module: import it absolutely",
        ),
    ],
    ids=["sdk-base-itself", "export-itself", "export-with-handle-request", "async-handle", "handle-arity",
         "static-handle", "export-misnamed", "redis-trigger", "factory", "relative-import"],
)
def test_shapes_that_cannot_serve_are_refused_at_their_line(tmp_path: Path, source: str, expected: str) -> None:
    project = write_project(tmp_path, source)

    result = run_faasops("-C", str(project), "validate")

    assert result.code == 1
    (message,) = result.err.splitlines()[1:]
    assert message.startswith("  " + expected)
