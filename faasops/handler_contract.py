"""The contract a function's handler module must meet, checked from its syntax tree alone.

The platform runs handlers written for spin-sdk 3.4.1 (componentize-py's ``spin-http`` world):
a top-level ``class IncomingHandler(http.IncomingHandler)`` with a synchronous
``handle_request(self, request)``. Checking this before upload turns a build failure minutes
later (or a component that traps on every request) into a message with a line number. The module
is parsed, never imported or executed: manifests are validated on CI runners that must not run
code from a pull request.
"""

from __future__ import annotations

import ast
import keyword
import stat
import warnings
from pathlib import Path

from faasops.errors import Problem

MAX_SOURCE_BYTES = 5 << 20
SPIN_BASE = "spin_sdk.http.IncomingHandler"
# Messages quote the code they are about; a hostile module's expressions can be megabytes long.
_MAX_SHOWN_CHARS = 200
# What other spin-sdk generations derive handlers from, to say which API a module was written for.
NEW_SDK_BASES = frozenset({"spin_sdk.http.Handler", "spin_sdk.http.HttpHandler"})  # spin-sdk 4.x/5.x
OLD_SIMPLE_BASE = "spin_sdk.http.simple.IncomingHandler"  # spin-sdk 2.0 pre-releases
TARGET_API = ("faasops builds handlers for spin-sdk 3.4.1 (componentize-py's spin-http world): write a synchronous "
              "`class IncomingHandler(http.IncomingHandler):` with `def handle_request(self, request):` "
              "after `from spin_sdk import http`")
HANDLER_EXAMPLE = (
    "from spin_sdk import http; "
    "class IncomingHandler(http.IncomingHandler): "
    "def handle_request(self, request): "
    "return http.Response(200, {'content-type': 'text/plain'}, b'hello')"
)


def module_file(handler: str) -> str:
    """The file, relative to the source directory, of handler module ``handler`` as
    componentize-py resolves it: ``app`` → ``app.py``, ``handlers.http`` → ``handlers/http.py``."""
    return handler.replace(".", "/") + ".py"


def keyword_in_module(handler: str) -> str | None:
    """The part of a dotted module name that is a Python keyword (no module can be named so)."""
    return next((part for part in handler.split(".") if keyword.iskeyword(part)), None)


def check_handler(path: Path, display_file: str) -> list[Problem]:
    """Problems with the handler module at ``path`` (shown as ``display_file``); empty when it
    meets the contract. Reads the file; never imports or runs it."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return [_whole_file(display_file, "is not a regular file; the handler must be a Python module")]
        if info.st_size > MAX_SOURCE_BYTES:
            message = f"the file is {info.st_size} bytes; a handler module may be at most {MAX_SOURCE_BYTES} bytes"
            return [_whole_file(display_file, message)]
        data = path.read_bytes()
    except OSError as exc:
        return [_whole_file(display_file, f"cannot read the handler module: {exc.strerror}")]
    source, problem = decode_utf8(data, display_file)
    if problem:
        return [problem]
    return check_handler_source(source, display_file)


def decode_utf8(data: bytes, display_file: str) -> tuple[str, Problem | None]:
    """``data`` as text (a UTF-8 byte order mark is allowed), or a problem at the first byte that
    isn't UTF-8. Shared with the manifest reader: both formats are UTF-8 only."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        bad = exc.start
        line_start = data.rfind(b"\n", 0, bad) + 1
        if line_start == 0 and data.startswith(b"\xef\xbb\xbf"):
            line_start = 3
        line = data.count(b"\n", 0, bad) + 1
        col = len(data[line_start:bad].decode("utf-8", "replace")) + 1
        message = (
            f"the file is not valid UTF-8: byte 0x{data[bad]:02x} cannot start or continue a character; save it as UTF-8"
        )
        return "", Problem(display_file, line, col, "", message)


def check_handler_source(source: str, display_file: str) -> list[Problem]:
    """Problems with handler module text ``source``; see :func:`check_handler`."""
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for "\d": the module's own business
            warnings.simplefilter("ignore")
            module = ast.parse(source, filename=display_file)
    except SyntaxError as exc:
        return [Problem(display_file, exc.lineno or 0, exc.offset or 0, "", f"Python syntax error: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return [_whole_file(display_file, f"Python cannot parse this module: {exc}")]
    try:
        return _contract_problems(module, source, display_file)
    except RecursionError:
        # ast.parse accepts expressions (``a.a.a…``) nested deeper than the recursive walks here
        # (and ast.unparse) can follow.
        return [_whole_file(display_file, "an expression in this module is nested too deeply to check; simplify it")]


def _contract_problems(module: ast.Module, source: str, display_file: str) -> list[Problem]:
    lines = source.splitlines()

    def at(node: ast.stmt | ast.expr, message: str) -> Problem:
        return Problem(display_file, node.lineno, _char_col(lines, node.lineno, node.col_offset), "", message)

    handlers = [node for node in module.body if isinstance(node, ast.ClassDef) and node.name == "IncomingHandler"]
    names = _imported_names(module.body)
    if not handlers:
        other = _other_sdk_handler(module, names)
        if other is not None:
            node, api = other
            return [at(node, f"this is {api}; {TARGET_API}")]
        message = f"no top-level class IncomingHandler(http.IncomingHandler) found; a Spin handler looks like: {HANDLER_EXAMPLE}"
        return [_whole_file(display_file, message)]
    handler = handlers[-1]  # as in Python, the last definition wins
    problems = []
    base_problem = _base_problem(handler, names)
    if base_problem:
        problems.append(at(handler, base_problem))
    methods = [
        node for node in handler.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "handle_request"
    ]
    if not methods:
        message = "class IncomingHandler has no handle_request method; add `def handle_request(self, request):` returning an http.Response"
        problems.append(at(handler, message))
        return problems
    method = methods[-1]
    method_problem = _method_problem(method)
    if method_problem:
        problems.append(at(method, method_problem))
    return problems


def _other_sdk_handler(module: ast.Module, names: dict[str, str]) -> tuple[ast.stmt, str] | None:
    """The handler of another spin-sdk generation, and which one it is, when the module has no
    ``IncomingHandler`` class: people copy examples from whichever SDK version a search finds."""
    for node in module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {_qualified(base, names) for base in node.bases}
        written = f"`class {node.name}({', '.join(_shown(b) for b in node.bases)})`"
        if SPIN_BASE in bases:
            return node, (f"a spin-sdk 3.4.1 handler named {node.name}: {written}; spin-sdk's spin-http world "
                          "calls the class named IncomingHandler, so rename it")
        is_async = any(isinstance(item, ast.AsyncFunctionDef) and item.name == "handle_request" for item in node.body)
        if bases & NEW_SDK_BASES or (node.name == "HttpHandler" and (is_async or any(b and b.startswith("spin_sdk.") for b in bases))):
            return node, f"a spin-sdk 4/5 handler ({written}, the async wasi:http 0.3 API)"
        if OLD_SIMPLE_BASE in bases:
            return node, (f"a spin-sdk 2.0 pre-release handler (`class {node.name}(simple.IncomingHandler)` "
                          "from spin_sdk.http.simple)")
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "handle_request":
            uses_spin_http = any(name.split(".")[0] == "spin_http" for name in names.values())
            api = ("a spin-sdk 1.x handler (a module-level handle_request(request) with spin_http, built with "
                   "`spin py2wasm`)") if uses_spin_http else "a module-level handle_request function, as in spin-sdk 1.x"
            return node, api
    return None


def _imported_names(body: list[ast.stmt]) -> dict[str, str]:
    """What each module-level imported name refers to: ``{"http": "spin_sdk.http"}``.

    Follows imports inside top-level ``if``/``try`` blocks too (``try: from spin_sdk import http``)."""
    names: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in _blocks(node):
                names.update(_imported_names(block))
    return names


def _blocks(node: ast.If | ast.Try | ast.With) -> list[list[ast.stmt]]:
    if isinstance(node, ast.Try):
        return [node.body, *(handler.body for handler in node.handlers), node.orelse, node.finalbody]
    if isinstance(node, ast.If):
        return [node.body, node.orelse]
    return [node.body]


def _qualified(expr: ast.expr, names: dict[str, str]) -> str | None:
    """The dotted name a base class expression refers to through the imports, if it can be told."""
    # A loop, not recursion: a base class may be written ``a.b.c…`` hundreds of names deep.
    attributes: list[str] = []
    while isinstance(expr, ast.Attribute):
        attributes.append(expr.attr)
        expr = expr.value
    owner = names.get(expr.id) if isinstance(expr, ast.Name) else None
    return ".".join([owner, *reversed(attributes)]) if owner else None


def _base_problem(handler: ast.ClassDef, names: dict[str, str]) -> str | None:
    qualified = {_qualified(base, names) for base in handler.bases}
    if SPIN_BASE in qualified:
        return None
    if OLD_SIMPLE_BASE in qualified:
        return ("class IncomingHandler inherits from simple.IncomingHandler: this is a spin-sdk 2.0 pre-release "
                f"handler (spin_sdk.http.simple); {TARGET_API}")
    if qualified & NEW_SDK_BASES:
        return f"class IncomingHandler inherits from a spin-sdk 4/5 base class (the async wasi:http 0.3 API); {TARGET_API}"
    fix = "write `class IncomingHandler(http.IncomingHandler):` after `from spin_sdk import http`"
    if not handler.bases:
        return f"class IncomingHandler has no base class; it must inherit from spin_sdk's http.IncomingHandler: {fix}"
    written = ", ".join(_shown(base) for base in handler.bases)
    for base in handler.bases:
        # Looks right but the name isn't bound to spin_sdk: say which import is missing.
        if isinstance(base, ast.Attribute) and base.attr == "IncomingHandler" and isinstance(base.value, ast.Name):
            module = base.value.id
            if module == "http":
                return f"class IncomingHandler inherits from {written}, but `http` is not imported from spin_sdk here: add `from spin_sdk import http`"
            return f"class IncomingHandler inherits from {written}, but `{module}` is not spin_sdk.http: {fix}"
        if isinstance(base, ast.Name) and base.id == "IncomingHandler":
            return f"class IncomingHandler inherits from {written}, which is not imported from spin_sdk.http: {fix}"
    return f"class IncomingHandler must inherit from spin_sdk's http.IncomingHandler, not {written}: {fix}"


def _method_problem(method: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    if isinstance(method, ast.AsyncFunctionDef):
        return (
            "handle_request must not be async: spin-sdk 3.4.1 handlers are synchronous "
            "(async handlers are spin-sdk 5's different API); write `def handle_request(self, request):`"
        )
    decorators = {decorator.id for decorator in method.decorator_list if isinstance(decorator, ast.Name)}
    if decorators & {"staticmethod", "classmethod"}:
        return "handle_request must be a plain method, not a staticmethod or classmethod: `def handle_request(self, request):`"
    args = method.args
    positional = args.posonlyargs + args.args
    if len(positional) != 2 or args.vararg or args.kwarg or args.kwonlyargs:
        return (
            "handle_request must take exactly one argument besides self: `def handle_request(self, request):` "
            f"(found `handle_request({_shown(args)})`)"
        )
    return None


def _shown(node: ast.AST) -> str:
    """``node`` as source text for a message, cut short when it is absurdly long."""
    try:
        text = ast.unparse(node)
    except RecursionError:
        return "(an expression nested too deeply to show)"
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 1] + "…"


def _whole_file(display_file: str, message: str) -> Problem:
    return Problem(display_file, 0, 0, "", message)


def _char_col(lines: list[str], lineno: int, byte_offset: int) -> int:
    """1-based character column from ast's UTF-8 byte offset."""
    if not 0 < lineno <= len(lines):
        return byte_offset + 1
    return len(lines[lineno - 1].encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1
