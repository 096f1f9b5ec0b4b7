"""Imports a component can't satisfy, found from the source's syntax trees before any build.

The modules checked are those the handler module reaches: the handler module, then every module
of the source directory it imports (absolute or relative), and so on — not tests or scripts lying
next to them. An absolute import is satisfied by a module or package of the source directory, the
standard library, the builder's toolchain (spin-sdk and the modules componentize-py generates)
or the declared dependencies (``requirements.txt``, or faas.yaml's ``dependencies:``).

Which modules a distribution provides is known only once it is installed (``PyYAML`` is imported
as ``yaml``, and ``requests`` brings ``urllib3`` along). So ``faasops validate`` flags third-party
imports when no dependencies are declared, or when an earlier build left an install of exactly
these requirements in the build cache; the build always checks against the installed
distributions' RECORDs, before componentize-py runs.
Imports guarded by ``try: … except ImportError`` (an app's fallback) and under ``if
TYPE_CHECKING:`` are never flagged, nor is anything once the source changes ``sys.path``. Nothing
is imported or executed.
"""

from __future__ import annotations

import ast
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from faasops.dependencies import (
    DEPENDENCIES_FIELD,
    REQUIREMENTS_FILE,
    Requirements,
    function_requirements,
    installed_in,
    read_requirements,
)
from faasops.errors import Problem
from faasops.handler_contract import MAX_SOURCE_BYTES

# spin-sdk, and what componentize-py adds to every component (the bindings' runtime support).
TOOLCHAIN_MODULES = frozenset({
    "spin_sdk", "componentize_py_runtime", "componentize_py_types", "componentize_py_async_support",
})
STANDARD_LIBRARY = frozenset(sys.stdlib_module_names)
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
# Where statements nest: bodies of compound statements, except handlers and match cases.
_STATEMENT_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")
# `sys.path.insert(…)`, `from sys import path`: the source chooses its own module search path.
_SYS_PATH = re.compile(r"\bsys\s*\.\s*path\b|\bfrom\s+sys\s+import\b[^\n]*\bpath\b")


@dataclass(frozen=True)
class ImportStatement:
    """An absolute import of a module from outside the source directory."""

    file: str
    line: int
    col: int
    module: str
    guarded: bool

    @property
    def top_level(self) -> str:
        return self.module.split(".", 1)[0]


@dataclass(frozen=True)
class SourceImports:
    """What the handler module reaches: the outside imports, and whether ``sys.path`` changes."""

    imports: tuple[ImportStatement, ...]
    changes_sys_path: bool


def check_function_imports(source_dir: Path, handler: str, display_prefix: str = "",
                           build_caches: tuple[Path, ...] = (), dependencies: tuple[str, ...] = ()) -> list[Problem]:
    """``faasops validate``'s check of one function: its requirements file's problems, and the
    imports nothing provides — when it declares dependencies (requirements file, or faas.yaml's
    ``dependencies``), only if an earlier build installed them into one of ``build_caches``
    (see the module doc)."""
    requirements, problems = read_requirements(source_dir, display_prefix)
    if problems:
        return problems
    requirements, problems = function_requirements(dependencies, requirements)
    if problems:
        return problems
    installed = installed_in(build_caches, requirements) if requirements is not None else None
    return unresolved_imports(source_dir, handler, requirements, installed.modules if installed else None,
                              display_prefix)


def unresolved_imports(source_dir: Path, handler: str, requirements: Requirements | None,
                       installed: dict[str, str] | None, display_prefix: str = "") -> list[Problem]:
    """A problem at every unguarded import that nothing provides. ``installed`` maps the
    top-level modules of the installed dependencies to their distributions; None means the
    dependencies are not installed (then only a source without dependencies is checked)."""
    if installed is None and requirements is not None and requirements.installable:
        return []
    reached = reached_imports(source_dir, handler, display_prefix)
    if reached.changes_sys_path:
        return []
    provided = set(installed or ())
    problems = []
    for statement in reached.imports:
        top = statement.top_level
        if statement.guarded or top in STANDARD_LIBRARY or top in TOOLCHAIN_MODULES or top in provided:
            continue
        if _local(source_dir, top):
            continue
        problems.append(Problem(statement.file, statement.line, statement.col, "",
                                _message(statement, installed, requirements)))
    return problems


def _message(statement: ImportStatement, installed: dict[str, str] | None, requirements: Requirements | None) -> str:
    top = statement.top_level
    listed = requirements is not None and requirements.file == DEPENDENCIES_FIELD
    declared_in = "`dependencies:`" if listed else REQUIREMENTS_FILE
    if installed is None:
        where = f"the standard library or spin-sdk (no {REQUIREMENTS_FILE} declares dependencies)"
    else:
        where = (f"the standard library, spin-sdk or what {declared_in} installed "
                 f"({', '.join(sorted(set(installed.values()))) or 'nothing'})")
    add_to = "the function's `dependencies:` in faas.yaml" if listed else f"{REQUIREMENTS_FILE} in the source directory"
    return (f"imports `{statement.module}`, but no module `{top}` is in the source directory, {where}; add the "
            f"package that provides `{top}` to {add_to} (its pure-Python wheel goes into the component), or remove "
            "the import")


# ---------------------------------------------------------------------------------------- walking


def reached_imports(source_dir: Path, handler: str, display_prefix: str = "") -> SourceImports:
    """The outside imports of every source module the handler module reaches, in file order."""
    found: list[ImportStatement] = []
    changes_sys_path = False
    seen: set[Path] = set()
    queue = [handler]
    while queue:
        dotted = queue.pop()
        for path, is_package in _module_files(source_dir, dotted):
            if path in seen:
                continue
            seen.add(path)
            text = _read(path)
            module = _parse(text, path) if text is not None else None
            if text is None or module is None:
                continue
            changes_sys_path = changes_sys_path or bool(_SYS_PATH.search(text))
            display = display_prefix + path.relative_to(source_dir).as_posix()
            lines = text.splitlines()
            name = path.relative_to(source_dir).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
            package = name if is_package else name.rpartition(".")[0]
            for node, guarded in _import_nodes(module):
                col = _char_col(lines, node.lineno, node.col_offset)
                for target, local in _targets(source_dir, node, package):
                    if local:
                        queue.append(target)
                    else:
                        found.append(ImportStatement(display, node.lineno, col, target, guarded))
    found.sort(key=lambda statement: (statement.file, statement.line, statement.col))
    return SourceImports(tuple(found), changes_sys_path)


def _targets(source_dir: Path, node: ast.Import | ast.ImportFrom, package: str) -> list[tuple[str, bool]]:
    """(module, is it in the source directory) for each module an import statement loads."""
    if isinstance(node, ast.Import):
        return [(alias.name, _local(source_dir, alias.name.split(".", 1)[0])) for alias in node.names]
    if node.level:
        parts = package.split(".") if package else []
        parts = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
        base = ".".join(parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
        if not _local(source_dir, base.split(".", 1)[0]):
            return [(base, False)]
    submodules = [f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*"]
    return [(name, True) for name in ([base] if base else []) + submodules]


def _import_nodes(module: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether a fallback guards it. Walks statements only (an import
    is one; expressions can't hold them), iteratively: a module may nest deeper than the stack."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    stack: list[tuple[ast.AST, bool]] = [(module, False)]
    while stack:
        node, guarded = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, guarded))
            continue
        if isinstance(node, ast.If) and _mentions_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, guarded) for child in node.orelse)
            continue
        body_guarded = guarded
        if isinstance(node, (ast.Try, ast.TryStar)):
            body_guarded = guarded or any(_catches_import_error(handler) for handler in node.handlers)
        for field in _STATEMENT_FIELDS:
            children = getattr(node, field, None)
            if isinstance(children, list):
                stack.extend((child, body_guarded if field == "body" else guarded) for child in children)
    return found


def _mentions_type_checking(test: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "TYPE_CHECKING" or isinstance(n, ast.Attribute) and n.attr == "TYPE_CHECKING"
               for n in ast.walk(test))


def _catches_import_error(handler: ast.excepthandler) -> bool:
    caught = handler.type  # type: ignore[attr-defined]
    if caught is None:
        return True
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any((n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else "") in _IMPORT_ERRORS
               for n in names)


def _local(source_dir: Path, top: str) -> bool:
    return bool(top) and ((source_dir / f"{top}.py").is_file() or (source_dir / top).is_dir())


def _module_files(source_dir: Path, dotted: str) -> list[tuple[Path, bool]]:
    """The files importing ``dotted`` runs, as (path, is it a package's ``__init__``): each
    package's ``__init__.py`` on the way, then the module (or package) itself."""
    parts = dotted.split(".")
    files: list[tuple[Path, bool]] = []
    here = source_dir
    for index, part in enumerate(parts):
        if not part.isidentifier():
            return files
        here = here / part
        # A package wins over a module of the same name, as in Python's own path finder.
        if (init := here / "__init__.py").is_file():
            files.append((init, True))
        elif index == len(parts) - 1 and (module := here.with_suffix(".py")).is_file():
            files.append((module, False))
    root = source_dir.resolve()
    return [(path, package) for path, package in files if path.resolve().is_relative_to(root)]


def _read(path: Path) -> str | None:
    """The module's text; None when it can't be read (the handler contract reports that)."""
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        return path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def _parse(text: str, path: Path) -> ast.Module | None:
    """The module's syntax tree; None when it doesn't parse (the handler contract and
    componentize-py report that)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _char_col(lines: list[str], lineno: int, byte_offset: int) -> int:
    """1-based character column of a UTF-8 byte offset (ast gives bytes)."""
    if not 0 < lineno <= len(lines):
        return byte_offset + 1
    return len(lines[lineno - 1].encode()[:byte_offset].decode(errors="replace")) + 1
