"""The contract a function's handler module must meet, checked from its syntax tree alone.

The platform runs handlers written for spin-sdk 3.4.1 (componentize-py's ``spin-http`` world).
componentize-py calls ``IncomingHandler().handle(request, response_out)`` on the module's
top-level ``IncomingHandler``, the export of ``wasi:http/incoming-handler``. Every shape that
serves there is accepted:

* ``class IncomingHandler(http.IncomingHandler)`` with a synchronous ``handle_request(self,
  request)`` (spin-sdk's buffered API: its ``handle`` reads the request, calls
  ``handle_request`` and writes the response), or overriding ``handle(self, request,
  response_out)`` itself to stream;
* ``class IncomingHandler(exports.IncomingHandler)`` (``spin_sdk.wit.exports``, the wasi-http
  export itself, as spin-sdk's ``streaming`` example) with a synchronous ``handle(self,
  request, response_out)``; the export is a Protocol, so a class with such a ``handle`` and any
  other base (or none) serves too;
* those through base classes of the same module, ``IncomingHandler = SomeHandler``, or
  ``from handlers import IncomingHandler`` re-exporting it from a module of the source
  directory (checked there).

Checking this before upload turns a build failure minutes later (or a component that traps on
every request) into a message with a line number. The module is parsed, never imported or
executed: manifests are validated on CI runners that must not run code from a pull request.
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
# The wasi-http export protocol, as componentize-py generated it into spin-sdk 3.4.1.
EXPORT_BASE = "spin_sdk.wit.exports.IncomingHandler"
REDIS_BASE = "spin_sdk.wit.exports.InboundRedis"
HANDLER_NAME = "IncomingHandler"
# Re-exports followed into other modules of the source directory, at most this deep.
_MAX_REEXPORTS = 8
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


def check_handler(path: Path, display_file: str, source_root: Path | None = None) -> list[Problem]:
    """Problems with the handler module at ``path`` (shown as ``display_file``); empty when it
    meets the contract. Reads the file; never imports or runs it. With ``source_root`` (the
    function's source directory), an ``IncomingHandler`` imported from another module of that
    directory is checked in that module."""
    return _check_file(path, display_file, HANDLER_NAME,
                       _Modules(source_root, path, display_file) if source_root else None, 0)


def _check_file(path: Path, display_file: str, name: str, modules: "_Modules | None",
                depth: int) -> list[Problem]:
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
    return _check_source(source, display_file, name, modules, depth)


class _Modules:
    """Finds the modules of a function's source directory that a handler module imports from,
    as componentize-py does (the source directory is on its module path)."""

    def __init__(self, root: Path, handler_path: Path, display_file: str):
        self.root = root.resolve()
        relative = handler_path.resolve().relative_to(self.root).as_posix() if _inside(self.root, handler_path) else ""
        # What the messages put before a module's path: the source directory as the user wrote it.
        self.prefix = display_file[: -len(relative)] if relative and display_file.endswith(relative) else ""

    def find(self, module: str) -> tuple[Path, str] | None:
        """The file of top-level module ``module`` (``a.b`` → ``a/b.py`` or ``a/b/__init__.py``)
        and its display name, if it is in the source directory."""
        base = module.replace(".", "/")
        for relative in (f"{base}.py", f"{base}/__init__.py"):
            path = self.root / relative
            if path.is_file() and _inside(self.root, path):
                return path, self.prefix + relative
        return None


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


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
    return _check_source(source, display_file, HANDLER_NAME, None, 0)


def _check_source(source: str, display_file: str, name: str, modules: _Modules | None,
                  depth: int) -> list[Problem]:
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for "\d": the module's own business
            warnings.simplefilter("ignore")
            module = ast.parse(source, filename=display_file)
    except SyntaxError as exc:
        return [Problem(display_file, exc.lineno or 0, exc.offset or 0, "", f"Python syntax error: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return [_whole_file(display_file, f"Python cannot parse this module: {exc}")]
    try:
        return _Contract(module, source, display_file, modules, depth).problems(name)
    except RecursionError:
        # ast.parse accepts expressions (``a.a.a…``) nested deeper than the recursive walks here
        # (and ast.unparse) can follow.
        return [_whole_file(display_file, "an expression in this module is nested too deeply to check; simplify it")]


class _Contract:
    """The contract check of one parsed module."""

    def __init__(self, module: ast.Module, source: str, display_file: str,
                 modules: _Modules | None, depth: int):
        self.module = module
        self.lines = source.splitlines()
        self.display_file = display_file
        self.modules = modules
        self.depth = depth
        self.names = _imported_names(module.body)
        self.classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}

    def at(self, node: ast.stmt | ast.expr, message: str) -> Problem:
        return Problem(self.display_file, node.lineno, _char_col(self.lines, node.lineno, node.col_offset), "", message)

    def problems(self, name: str) -> list[Problem]:
        """Problems with what the module's top-level ``name`` is bound to, as componentize-py
        would call it."""
        binding = _last_binding(self.module.body, name)
        if binding is None:
            other = _other_sdk_handler(self.module, self.names)
            if other is not None:
                node, api = other
                return [self.at(node, f"this is {api}; {TARGET_API}")]
            message = f"no top-level class IncomingHandler(http.IncomingHandler) found; a Spin handler looks like: {HANDLER_EXAMPLE}"
            return [_whole_file(self.display_file, message)]
        if isinstance(binding, ast.ClassDef):
            return self.class_problems(binding)
        if isinstance(binding, ast.ImportFrom):
            return self.import_problems(binding, name)
        return self.assignment_problems(binding, name)

    def assignment_problems(self, node: ast.Assign | ast.AnnAssign, name: str) -> list[Problem]:
        value = node.value
        target = _qualified(value, self.names) if value is not None else None
        if target in (SPIN_BASE, EXPORT_BASE):
            return [self.at(node, _base_itself(name, target))]
        if isinstance(value, ast.Name) and value.id in self.classes and value.id != name:
            return self.class_problems(self.classes[value.id])
        if isinstance(value, ast.Name) and value.id in self.names:
            module, _, imported = self.names[value.id].rpartition(".")
            return self.imported_problems(node, module, imported)
        shown = _shown(value) if value is not None else "nothing"
        return [self.at(node, f"{name} is bound to `{shown}`, which faasops cannot check without running it: "
                              f"define `class {name}(http.IncomingHandler):` in the module (or bind it to such a class)")]

    def import_problems(self, node: ast.ImportFrom, name: str) -> list[Problem]:
        alias = next(alias for alias in reversed(node.names) if (alias.asname or alias.name) == name)
        if node.level:
            return [self.at(node, f"{name} is imported relatively (`from {'.' * node.level}{node.module or ''} "
                                  f"import …`); componentize-py loads the handler as a top-level module: "
                                  f"import it absolutely")]
        return self.imported_problems(node, node.module or "", alias.name)

    def imported_problems(self, node: ast.stmt, module: str, imported: str) -> list[Problem]:
        qualified = f"{module}.{imported}"
        if qualified in (SPIN_BASE, EXPORT_BASE):
            return [self.at(node, _base_itself(HANDLER_NAME, qualified))]
        if module.split(".")[0] == "spin_sdk":
            return [self.at(node, f"{qualified} is not a handler class of spin-sdk 3.4.1; {TARGET_API}")]
        found = self.modules.find(module) if self.modules is not None else None
        if found is None:
            where = "of the function's source directory" if self.modules is not None else "faasops can check here"
            return [self.at(node, f"{HANDLER_NAME} is imported from {module!r}, which is not a module {where}; "
                                  f"define `class {HANDLER_NAME}(http.IncomingHandler):` in the handler module")]
        if self.depth >= _MAX_REEXPORTS:
            return [self.at(node, f"{HANDLER_NAME} is re-exported through more than {_MAX_REEXPORTS} modules; "
                                  "import it from the module that defines it")]
        path, display = found
        return _check_file(path, display, imported, self.modules, self.depth + 1)

    def class_problems(self, handler: ast.ClassDef) -> list[Problem]:
        kind = self.kind(handler, set())
        if kind in ("other-sdk", "redis"):
            return [self.at(handler, self.base_problem(handler, kind))]
        handle = self.method(handler, "handle", set())
        if handle is not None:
            # The class (or a base class of this module) implements the export itself: that
            # handle is what componentize-py calls, whatever the base.
            problem = _method_problem(handle, "handle", "request, response_out")
            return [self.at(handle, problem)] if problem else []
        problems = []
        if kind == "export":
            message = (f"class {handler.name} implements the wasi-http export (spin_sdk.wit.exports.IncomingHandler) "
                       "but has no handle method: add `def handle(self, request, response_out):`, or inherit "
                       "from http.IncomingHandler (spin_sdk.http) to write `def handle_request(self, request):`")
            return [self.at(handler, message)]
        if kind != "sdk":
            problems.append(self.at(handler, self.base_problem(handler, kind)))
        method = self.method(handler, "handle_request", set())
        if method is None:
            message = (f"class {handler.name} has no handle_request method; add `def handle_request(self, request):` "
                       "returning an http.Response (or override `def handle(self, request, response_out):` to stream)")
            problems.append(self.at(handler, message))
            return problems
        method_problem = _method_problem(method, "handle_request", "request")
        if method_problem:
            problems.append(self.at(method, method_problem))
        return problems

    def kind(self, cls: ast.ClassDef, seen: set[str]) -> str:
        """Which handler base ``cls`` derives from: "sdk" (spin_sdk.http.IncomingHandler),
        "export" (the wasi-http export protocol), "other-sdk" (another spin-sdk generation's),
        "redis", or "none"; through base classes of this module too."""
        seen.add(cls.name)
        kinds = []
        for base in cls.bases:
            qualified = _qualified(base, self.names)
            if qualified == SPIN_BASE:
                kinds.append("sdk")
            elif qualified == EXPORT_BASE:
                kinds.append("export")
            elif qualified == REDIS_BASE:
                kinds.append("redis")
            elif qualified == OLD_SIMPLE_BASE or qualified in NEW_SDK_BASES:
                kinds.append("other-sdk")
            elif isinstance(base, ast.Name) and base.id in self.classes and base.id not in seen:
                kinds.append(self.kind(self.classes[base.id], seen))
        for kind in ("sdk", "export", "other-sdk", "redis"):
            if kind in kinds:
                return kind
        return "none"

    def method(self, cls: ast.ClassDef, name: str, seen: set[str]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The method ``name`` that ``cls`` gets from its own body or (in method resolution
        order, near enough) from base classes of this module."""
        seen.add(cls.name)
        own = [node for node in cls.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name]
        if own:
            return own[-1]  # as in Python, the last definition wins
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in self.classes and base.id not in seen:
                if _qualified(base, self.names) in (SPIN_BASE, EXPORT_BASE):
                    continue
                found = self.method(self.classes[base.id], name, seen)
                if found is not None:
                    return found
        return None

    def base_problem(self, handler: ast.ClassDef, kind: str) -> str:
        qualified = {_qualified(base, self.names) for base in handler.bases}
        if kind == "redis":
            return (f"class {handler.name} is a Spin Redis trigger handler (exports.InboundRedis); faasops serves "
                    f"HTTP functions: {TARGET_API}")
        if OLD_SIMPLE_BASE in qualified:
            return (f"class {handler.name} inherits from simple.IncomingHandler: this is a spin-sdk 2.0 pre-release "
                    f"handler (spin_sdk.http.simple); {TARGET_API}")
        if kind == "other-sdk":
            return f"class {handler.name} inherits from a spin-sdk 4/5 base class (the async wasi:http 0.3 API); {TARGET_API}"
        return _base_problem(handler, self.names)


def _last_binding(body: list[ast.stmt], name: str) -> ast.ClassDef | ast.ImportFrom | ast.Assign | ast.AnnAssign | None:
    """The top-level statement that last binds ``name``: a class, an import or an assignment."""
    found = None
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            found = node
        elif isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            found = node
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            found = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name and node.value:
            found = node
    return found


def _base_itself(name: str, qualified: str) -> str:
    if qualified == SPIN_BASE:
        return (f"{name} is spin-sdk's base class itself, whose handle_request raises NotImplementedError: "
                f"subclass it, `class {name}(http.IncomingHandler):` with `def handle_request(self, request):`")
    return (f"{name} is the wasi-http export protocol itself, which has no handle: subclass it, "
            f"`class {name}(exports.IncomingHandler):` with `def handle(self, request, response_out):`")


def _other_sdk_handler(module: ast.Module, names: dict[str, str]) -> tuple[ast.stmt, str] | None:
    """The handler of another spin-sdk generation, and which one it is, when the module has no
    ``IncomingHandler`` class: people copy examples from whichever SDK version a search finds."""
    for node in module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {_qualified(base, names) for base in node.bases}
        written = f"`class {node.name}({', '.join(_shown(b) for b in node.bases)})`"
        if SPIN_BASE in bases or EXPORT_BASE in bases:
            return node, (f"a spin-sdk 3.4.1 handler named {node.name}: {written}; spin-sdk's spin-http world "
                          "calls the class named IncomingHandler, so rename it")
        if REDIS_BASE in bases:
            return node, (f"a Spin Redis trigger handler ({written}); faasops serves HTTP functions "
                          "(the spin-http world)")
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


def _base_problem(handler: ast.ClassDef, names: dict[str, str]) -> str:
    """Why a class without a known handler base (and without its own ``handle``) can't serve."""
    fix = "write `class IncomingHandler(http.IncomingHandler):` after `from spin_sdk import http`"
    if not handler.bases:
        return f"class {handler.name} has no base class; it must inherit from spin_sdk's http.IncomingHandler: {fix}"
    written = ", ".join(_shown(base) for base in handler.bases)
    for base in handler.bases:
        # Looks right but the name isn't bound to spin_sdk: say which import is missing.
        if isinstance(base, ast.Attribute) and base.attr == "IncomingHandler" and isinstance(base.value, ast.Name):
            module = base.value.id
            if module == "http":
                return f"class {handler.name} inherits from {written}, but `http` is not imported from spin_sdk here: add `from spin_sdk import http`"
            return f"class {handler.name} inherits from {written}, but `{module}` is not spin_sdk.http: {fix}"
        if isinstance(base, ast.Name) and base.id == "IncomingHandler":
            return f"class {handler.name} inherits from {written}, which is not imported from spin_sdk.http: {fix}"
    return f"class {handler.name} must inherit from spin_sdk's http.IncomingHandler, not {written}: {fix}"


def _method_problem(method: ast.FunctionDef | ast.AsyncFunctionDef, name: str, params: str) -> str | None:
    """Why ``method`` (``handle_request`` or ``handle``) can't be called as componentize-py and
    spin-sdk call it: synchronously, on an instance, with ``params`` besides self."""
    signature = f"`def {name}(self, {params}):`"
    if isinstance(method, ast.AsyncFunctionDef):
        if name == "handle":
            return ("handle must not be async: componentize-py calls it synchronously; run a coroutine inside it "
                    "as spin-sdk's streaming example does (`loop = poll_loop.PollLoop(); asyncio.set_event_loop(loop); "
                    f"loop.run_until_complete(...)`) in {signature}")
        return (
            "handle_request must not be async: spin-sdk 3.4.1 handlers are synchronous "
            "(async handlers are spin-sdk 5's different API); write `def handle_request(self, request):`"
        )
    decorators = {decorator.id for decorator in method.decorator_list if isinstance(decorator, ast.Name)}
    if decorators & {"staticmethod", "classmethod"}:
        return f"{name} must be a plain method, not a staticmethod or classmethod: {signature}"
    args = method.args
    positional = args.posonlyargs + args.args
    wanted = len(params.split(", ")) + 1
    if len(positional) != wanted or args.vararg or args.kwarg or args.kwonlyargs:
        count = "exactly one argument" if wanted == 2 else "exactly two arguments"
        return (
            f"{name} must take {count} besides self: {signature} "
            f"(found `{name}({_shown(args)})`)"
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
