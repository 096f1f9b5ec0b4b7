"""Rendering untrusted Jinja templates in bounded time and memory, and reading what they render.

A project's ``templates:`` directory arrives in pull requests, and ``plan`` renders it. Jinja's
:class:`~jinja2.sandbox.SandboxedEnvironment` already refuses private attributes
(``''.__class__``) and unsafe callables, and caps one ``range()`` at 100,000 items, but nested
loops multiply, ``"x" * 10**9`` and ``"x"|center(10**9)`` allocate a gigabyte in one step, and a
macro that calls itself twice per level runs for ever without a single loop. A Python render
cannot be interrupted from outside, so :class:`TemplateSandbox` makes the template check itself:

* every loop iteration, call, filter, intercepted operator and output chunk is one **step**, and
  the compiled code checks the step count and the **deadline** at each of them;
* every character of text a template writes (into the output, a macro, a ``{% set %}`` block) and
  every value an operator, filter or method builds is charged to one **produced** budget, and
  the operations that can build a large value in one step (``*``, ``**``, ``%``, ``center``,
  ``ljust``/``rjust``/``zfill``, ``replace``, ``join``, ``indent``, ``format``, ``batch``,
  ``slice``, ``tojson``, ``to_bytes``, ``expandtabs``, ``translate``, ``lipsum``) are checked
  *before* they run;
* calls (macros, ``caller()``, recursive loops) may nest only so deep;
* templates are read only from the template directories, as regular files of bounded size;
  ``..``, absolute paths and symlinks leading out are refused.

Any failure, whatever the template did to cause it, is a :class:`TemplateRenderError` naming the
template file and, when known, its line. :func:`read_rendered` then reads the output with the
same event-based reader and limits as ``faas.yaml`` (aliases, values, text, nesting), one YAML
document at a time.

The limits are the constants below (see :class:`TemplateLimits`). They are deliberately not
settings of ``faas.yaml``: the repository is the untrusted input they protect against.
"""

from __future__ import annotations

import contextvars
import functools
import os
import re
import stat
import string
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import yaml
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.loaders import split_template_path
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum

from faasops.errors import ProviderError
from faasops.manifest.yaml_source import plain, read_yaml_text

#: Largest template file (each of ``spinapp.yaml.j2``, what it includes, imports or extends).
MAX_TEMPLATE_BYTES = 256 * 1024
#: Characters (and collection items) one render may produce in all: its output, text written
#: into macros and ``{% set %}`` blocks, and values built by operators, filters and methods.
MAX_OUTPUT_CHARS = 1 << 20
#: Loop iterations, calls, filters, operators and output chunks of one render (the built-in
#: templates take about 40; a step costs about a microsecond).
MAX_STEPS = 100_000
#: How deep macro calls, ``caller()`` and recursive loops may nest.
MAX_CALL_DEPTH = 64
#: Wall-clock time one render may take (checked at every step).
MAX_RENDER_SECONDS = 2.0
#: Largest integer an operator may build (``10**10**6`` would take minutes to compute).
MAX_INTEGER_BITS = 1 << 16
#: YAML documents one template may render.
MAX_DOCUMENTS = 16


@dataclass(frozen=True)
class TemplateLimits:
    """The bounds of one render; the defaults are the module's constants."""

    max_template_bytes: int = MAX_TEMPLATE_BYTES
    max_output_chars: int = MAX_OUTPUT_CHARS
    max_steps: int = MAX_STEPS
    max_call_depth: int = MAX_CALL_DEPTH
    max_seconds: float = MAX_RENDER_SECONDS
    max_integer_bits: int = MAX_INTEGER_BITS


class TemplateRenderError(ProviderError):
    """A template could not be rendered or its output read; the message names the file (and line)."""


class TemplateLimitError(SecurityError):
    """A render went past one of its :class:`TemplateLimits`."""


class _Budget:
    """What one render has used so far."""

    def __init__(self, limits: TemplateLimits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.steps = 0
        self.produced = 0
        self.depth = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise TemplateLimitError(
                f"the template takes more than {self.limits.max_steps} steps (loop iterations, calls, "
                "filters); is a loop nested too deep?"
            )
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"the template took longer than {self.limits.max_seconds:g} s to render")

    def charge(self, size: int) -> None:
        self.produced += size
        if self.produced > self.limits.max_output_chars:
            raise TemplateLimitError(
                f"the template produces more than {self.limits.max_output_chars} characters "
                "(output, macro and set-block text, built values)"
            )

    def remaining(self) -> int:
        return self.limits.max_output_chars - self.produced


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("faasops_template_budget", default=None)


def _weight(value: Any, limit: int) -> int:
    """Characters plus items of ``value``, counted until they pass ``limit`` (so the count costs
    no more than what it charges)."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            stack.extend(item)
        else:
            total += 1
    return total


def _produced(value: Any) -> Any:
    """Charge a value an operation built to the running render."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(len(value) if type(value) is str else _weight(value, budget.remaining() + 1))
    return value


def _refuse_size(size: int, what: str, limits: TemplateLimits) -> None:
    budget = _BUDGET.get()
    room = budget.remaining() if budget is not None else limits.max_output_chars
    if size > room:
        raise TemplateLimitError(f"{what} would build {size} characters; the template may produce {limits.max_output_chars}")


# ------------------------------------------------------------------- checks before an operation

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_WIDTH = re.compile(r"(\d+)")


def _check_percent_format(text: str, limits: TemplateLimits) -> None:
    """``"%09999999d" % 1`` builds ten million characters: bound every width and precision."""
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            if number == "*":
                raise TemplateLimitError("a '%' format taking its width from an argument ('*') is not allowed in a template")
            if number is not None:
                _refuse_size(int(number), f"the format width {number}", limits)


def _check_format_string(text: str, limits: TemplateLimits) -> None:
    """``"{:>999999999}".format(1)``: the same for ``str.format`` specs (nested ``{}`` specs refused)."""
    for _literal, field, spec, _conversion in string.Formatter().parse(text):
        if field is None or not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("a format spec with a nested '{}' field is not allowed in a template")
        for number in _FORMAT_WIDTH.findall(spec):
            _refuse_size(int(number), f"the format width {number}", limits)


def _check_multiply(left: Any, right: Any, limits: TemplateLimits) -> None:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, (str, bytes, list, tuple)) and isinstance(times, int):
            size = _weight(sequence, limits.max_output_chars) * max(times, 0)
            _refuse_size(size, "repeating this value", limits)
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > limits.max_integer_bits:
            raise TemplateLimitError(f"the product would have more than {limits.max_integer_bits} bits")


def _check_power(base: Any, exponent: Any, limits: TemplateLimits) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if base.bit_length() * exponent > limits.max_integer_bits:
            raise TemplateLimitError(f"the power would have more than {limits.max_integer_bits} bits")


def _occurrences(text: str | bytes, old: str | bytes, count: int | None) -> int:
    found = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]
    return found if count is None or count < 0 else min(found, count)


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any], limits: TemplateLimits) -> None:
    """Refuse a built-in method call that would build an oversized value in one step."""
    receiver = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if method is generate_lorem_ipsum:
        paragraphs = args[0] if args else kwargs.get("n", 5)
        most = args[3] if len(args) > 3 else kwargs.get("max", 100)
        if isinstance(paragraphs, int) and isinstance(most, int):
            _refuse_size(paragraphs * most * 16, "lipsum()", limits)
        return
    if isinstance(receiver, (str, bytes)):
        if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
            _refuse_size(args[0], f"{name}({args[0]})", limits)
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                _refuse_size(len(receiver) + receiver.count("\t" if isinstance(receiver, str) else b"\t") * size,  # type: ignore[arg-type]
                             f"expandtabs({size})", limits)
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            count = args[2] if len(args) > 2 else kwargs.get("count")
            if isinstance(old, type(receiver)) and isinstance(new, type(receiver)):
                grow = _occurrences(receiver, old, count) * max(len(new) - len(old), 0)
                _refuse_size(len(receiver) + grow, "replace()", limits)
        elif name == "join" and args and isinstance(args[0], list):
            _refuse_size(_join_size(receiver, args[0], limits.max_output_chars), "join()", limits)
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
            _refuse_size(len(receiver) * longest, "translate()", limits)
    elif isinstance(receiver, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int):
            _refuse_size(length, f"to_bytes({length})", limits)


def _join_size(separator: Any, items: list[Any], limit: int) -> int:
    size = len(separator) * max(len(items) - 1, 0) if isinstance(separator, (str, bytes)) else 0
    for item in items:
        if size > limit:
            break
        size += len(item) if isinstance(item, (str, bytes)) else 20
    return size


# ----------------------------------------------------------------------------------- filters

def _filter_checks(limits: TemplateLimits) -> dict[str, Callable[[list[Any], dict[str, Any]], None]]:
    """The filters that can build a large value in one step → a check of their arguments
    (positional ones after Jinja's context argument), run before the filter."""

    def width(position: int, keyword: str, what: str) -> Callable[[list[Any], dict[str, Any]], None]:
        def check(args: list[Any], kwargs: dict[str, Any]) -> None:
            value = args[position] if len(args) > position else kwargs.get(keyword)
            if isinstance(value, int):
                _refuse_size(value, f"{what}({value})", limits)
        return check

    def indent(args: list[Any], kwargs: dict[str, Any]) -> None:
        text = args[0] if args and isinstance(args[0], str) else ""
        value = args[1] if len(args) > 1 else kwargs.get("width", 4)
        step = len(value) if isinstance(value, str) else value if isinstance(value, int) else 0
        _refuse_size(len(text) + (text.count("\n") + 1) * step, "indent", limits)

    def join(args: list[Any], kwargs: dict[str, Any]) -> None:
        items = args[0] if args else []
        separator = args[1] if len(args) > 1 else kwargs.get("d", "")
        if isinstance(items, list):
            _refuse_size(_join_size(separator, items, limits.max_output_chars), "join", limits)

    def replace(args: list[Any], kwargs: dict[str, Any]) -> None:
        if len(args) >= 3 and all(isinstance(a, str) for a in args[:3]):
            count = args[3] if len(args) > 3 else kwargs.get("count")
            grow = _occurrences(args[0], args[1], count) * max(len(args[2]) - len(args[1]), 0)
            _refuse_size(len(args[0]) + grow, "replace", limits)

    def percent(args: list[Any], kwargs: dict[str, Any]) -> None:
        if args and isinstance(args[0], str):
            _check_percent_format(args[0], limits)

    return {
        "center": width(1, "width", "center"),
        "indent": indent,
        "batch": width(1, "linecount", "batch"),
        "slice": width(1, "slices", "slice"),
        "tojson": width(1, "indent", "tojson"),
        "join": join,
        "replace": replace,
        "format": percent,
    }


def _is_lazy(value: Any) -> bool:
    """An iterable whose size is only known by going through it (a range, a generator…)."""
    return isinstance(value, (Iterator, range, map, filter, zip, reversed))


def _bounded_filter(filter_function: Callable[..., Any], check: Callable[[list[Any], dict[str, Any]], None] | None,
                    context_args: int) -> Callable[..., Any]:
    """``filter_function`` counting a step, checked before and charged after."""

    @functools.wraps(filter_function)  # keeps jinja_pass_arg: Jinja still passes the context
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
        if check is not None:
            if len(args) > context_args and _is_lazy(args[context_args]):
                # Measured before the filter runs, so built first (a range is at most 100,000 items).
                args = (*args[:context_args], list(args[context_args]), *args[context_args + 1:])
            check(list(args[context_args:]), kwargs)
        return _produced(filter_function(*args, **kwargs))

    return bounded


# ------------------------------------------------------------------------------- code generation


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles templates so that the code counts its own steps and output.

    Loops iterate through :meth:`_BoundedEnvironment.bounded_iteration`, ``~`` concatenations and
    literal text are charged to the budget; ``{{ … }}`` output is charged by the environment's
    ``finalize``."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        guarded = nodes.Call(nodes.EnvironmentAttribute("bounded_iteration"), [node.iter], [], None, None,
                             lineno=node.lineno)
        bounded = nodes.For(node.target, guarded, node.body, node.else_, node.test, node.recursive,
                            lineno=node.lineno)
        bounded.set_environment(self.environment)
        super().visit_For(bounded, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.produced(")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        # Literal text in a loop is written once per iteration: charge it each time.
        return f"environment.produced({super()._output_const_repr(group)})"


class _BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, counting steps and checking sizes (see the module docstring)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, limits: TemplateLimits, finalize: Callable[[Any], Any] | None, **options: Any):
        self.limits = limits
        inner = finalize or (lambda value: value)

        def charged_finalize(value: Any) -> str:
            text = inner(value)
            text = text if isinstance(text, str) else str(text)
            budget = _BUDGET.get()
            if budget is not None:
                budget.step()
                budget.charge(len(text))
            return text

        super().__init__(finalize=charged_finalize, **options)
        checks = _filter_checks(limits)
        for name, filter_function in list(self.filters.items()):
            context_args = 1 if getattr(filter_function, "jinja_pass_arg", None) is not None else 0
            self.filters[name] = _bounded_filter(filter_function, checks.get(name), context_args)

    def bounded_iteration(self, iterable: Any) -> Iterator[Any]:
        """``iterable``, one step per item."""
        budget = _BUDGET.get()
        for item in iterable:
            if budget is not None:
                budget.step()
            yield item

    def produced(self, value: Any) -> Any:
        """``value``, charged to the running render."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
            budget.charge(len(value) if type(value) is str else _weight(value, budget.remaining() + 1))
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
        if operator == "*":
            _check_multiply(left, right, self.limits)
        elif operator == "**":
            _check_power(left, right, self.limits)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, self.limits)
        return _produced(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        limits, text = self.limits, value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format_string(text, limits)
            return _produced(wrapped(*args, **kwargs))

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
        if args and getattr(__obj, "__name__", "") == "join" and _is_lazy(args[0]):
            args = (list(args[0]), *args[1:])  # measured by _check_method first
        _check_method(__obj, args, kwargs, __self.limits)
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (__self.bounded_iteration(args[0]), *args[1:])
        receiver = getattr(__obj, "__self__", None)
        if budget is not None and isinstance(receiver, (list, dict, set)):
            # append/extend/update grow a value in place: charge what they add.
            budget.charge(_weight((args, kwargs), budget.remaining() + 1))
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.depth += 1
        try:
            if budget.depth > __self.limits.max_call_depth:
                raise TemplateLimitError(f"calls nest deeper than {__self.limits.max_call_depth} levels; "
                                         "does a macro call itself without end?")
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        if isinstance(receiver, (list, dict, set)) or isinstance(__obj, Macro):
            return result  # what a macro wrote was charged as it wrote it
        return _produced(result)


# ------------------------------------------------------------------------------------ loading


class _ContainedLoader(jinja2.BaseLoader):
    """Templates from a list of directories: regular files inside them, of bounded size."""

    def __init__(self, directories: list[Path], max_bytes: int):
        self.directories = directories
        self.max_bytes = max_bytes
        self.served: set[str] = set()
        self.located: dict[str, str | None] = {}

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if "\0" in template:
            raise jinja2.TemplateNotFound(template)
        pieces = split_template_path(template)  # refuses '..'
        for directory in self.directories:
            candidate = directory.joinpath(*pieces)
            if not os.path.lexists(candidate):
                continue
            real = candidate.resolve()
            if not real.is_relative_to(directory.resolve()):
                raise jinja2.TemplateNotFound(f"{template} (it leads outside {directory})")
            info = real.stat()
            if not stat.S_ISREG(info.st_mode):
                raise jinja2.TemplateNotFound(f"{template} (not a regular file)")
            with real.open("rb") as stream:
                data = stream.read(self.max_bytes + 1)
            if len(data) > self.max_bytes:
                raise TemplateLimitError(f"template {template} is larger than {self.max_bytes} bytes")
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TemplateLimitError(f"template {template} is not UTF-8 (byte {exc.start})") from None
            self.served.add(str(candidate))
            return source, str(candidate), lambda: True
        raise jinja2.TemplateNotFound(template)

    def locate(self, template: str) -> str | None:
        """The file ``template`` would be read from, if any (remembered, like compiled templates)."""
        if template not in self.located:
            try:
                pieces = split_template_path(template)
            except jinja2.TemplateNotFound:
                return None
            found = (directory.joinpath(*pieces) for directory in self.directories)
            self.located[template] = next((str(path) for path in found if os.path.lexists(path)), None)
        return self.located[template]


# ------------------------------------------------------------------------------------ rendering


class TemplateSandbox:
    """Renders templates found in ``directories`` (first match wins) within ``limits``.

    ``finalize`` is applied to every ``{{ … }}`` value (Jinja's ``finalize``); ``root`` is what
    file names in messages are shown relative to.
    """

    def __init__(self, directories: list[Path], *, finalize: Callable[[Any], Any] | None = None,
                 root: Path | None = None, limits: TemplateLimits = TemplateLimits()):
        self.limits = limits
        self.root = root
        self._displayed: dict[str, str] = {}
        self.loader = _ContainedLoader([Path(d) for d in directories], limits.max_template_bytes)
        self.environment = _BoundedEnvironment(
            limits,
            finalize,
            loader=self.loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,  # one stat per render otherwise; templates don't change mid-run
        )

    def display(self, filename: str) -> str:
        """``filename`` as messages show it: relative to the root when inside it."""
        shown = self._displayed.get(filename)
        if shown is None:
            path = Path(filename)
            shown = str(path.relative_to(self.root)) if self.root is not None and path.is_relative_to(self.root) \
                else filename
            self._displayed[filename] = shown
        return shown

    def filename(self, name: str) -> str:
        """Where template ``name`` is read from, as messages show it (``name`` if not found)."""
        located = self.loader.locate(name)
        return self.display(located) if located else name

    def render(self, name: str, context: dict[str, Any]) -> str:
        """Template ``name`` rendered with ``context``; :class:`TemplateRenderError` on any failure."""
        budget = _Budget(self.limits)
        token = _BUDGET.set(budget)
        where = self.filename(name)
        try:
            return self.environment.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as exc:
            shown = self.display(exc.filename) if exc.filename else where
            raise TemplateRenderError(f"{shown}:{exc.lineno}: template syntax error: {_printable(exc.message or '')}") \
                from None
        except Exception as exc:  # the template is untrusted code: whatever it raised is its own error
            raise TemplateRenderError(f"{self._located(exc.__traceback__, where)}: cannot render template: "
                                      f"{_printable(_describe(exc))}") from None
        finally:
            _BUDGET.reset(token)

    def _located(self, trace: TracebackType | None, where: str) -> str:
        """``file:line`` of the innermost template frame of ``trace`` (Jinja rewrites tracebacks
        to show template lines), else ``where``."""
        found = where
        while trace is not None:
            filename = trace.tb_frame.f_code.co_filename
            if filename in self.loader.served:
                found = f"{self.display(filename)}:{trace.tb_lineno}"
            trace = trace.tb_next
        return found


def _printable(text: str) -> str:
    """``text`` with control characters escaped: a template chooses some of it (names, keys),
    and a message must stay one line that cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template not found: {exc.message}"
    if isinstance(exc, jinja2.TemplateError):
        return str(exc.message or exc)
    if isinstance(exc, RecursionError):
        return "recursion too deep (an expression nested too deep, or a template that includes, imports or extends itself)"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- reading output

_DOCUMENT_EVENTS = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Only a line starting with '---' or '...' can start or end a document after the first.
_DOCUMENT_MARKER = re.compile(r"^(---|\.\.\.)(\s|$)", re.M)


def read_rendered(text: str, display: str) -> list[Any]:
    """The YAML documents of rendered ``text`` (empty ones dropped), read like ``faas.yaml``:
    through :func:`faasops.manifest.yaml_source.read_yaml_text` with its limits on values,
    text after alias expansion and nesting, at most :data:`MAX_DOCUMENTS` documents. Problems
    are a :class:`TemplateRenderError` located in the output (``display:line:col``)."""
    if _DOCUMENT_MARKER.search(text) is None:
        pieces = [text]  # one document (or none): no need to find where documents start
    else:
        # Padding with the lines before a document keeps line numbers those of the whole output.
        pieces = ["\n" * start.line + " " * start.column + text[start.index:end.index]
                  for start, end in _document_spans(text, display)]
    documents: list[Any] = []
    for piece in pieces:
        result = read_yaml_text(piece, display)
        if result.problems:
            raise TemplateRenderError("\n".join(str(problem) for problem in result.problems))
        if result.data is not None:
            documents.append(plain(result.data))
    return documents


def _document_spans(text: str, display: str) -> list[tuple[yaml.Mark, yaml.Mark]]:
    """Where each document of ``text`` starts and ends, from the parser's events alone (no
    value is built, so nothing is expanded)."""
    spans: list[tuple[yaml.Mark, yaml.Mark]] = []
    loader = _DOCUMENT_EVENTS(text)
    start: yaml.Mark | None = None
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                start = event.start_mark
            elif isinstance(event, yaml.DocumentEndEvent) and start is not None:
                spans.append((start, event.end_mark))
                if len(spans) > MAX_DOCUMENTS:
                    raise TemplateRenderError(f"{display}:{start.line + 1}:{start.column + 1}: more than {MAX_DOCUMENTS} "
                                              "YAML documents; a template may render at most that many")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark else display
        raise TemplateRenderError(f"{where}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise TemplateRenderError(f"{display}: YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
    return spans
