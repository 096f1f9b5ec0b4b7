"""Reading one YAML manifest into plain data that remembers where every value came from.

PyYAML's loaders forget node positions and keep the last of duplicate keys, and a crafted file can
make them expand aliases without bound or recurse until the interpreter gives up. So this module
builds values itself from the parser's event stream: it keeps a :class:`Location` for every
mapping key, mapping value and list item, reports duplicate keys, and stops at fixed limits for
size, nesting and alias expansion. Only the YAML 1.1 scalar types of the safe loader are built;
nothing is ever imported or called.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from faasops.errors import Problem
from faasops.handler_contract import decode_utf8
from faasops.model import Location

MAX_FILE_BYTES = 1 << 20
MAX_VALUES = 100_000
# Characters of string values once aliases are expanded: a long string repeated through aliases
# is a bomb made of few values (8× the largest file).
MAX_TEXT_CHARS = 8 * MAX_FILE_BYTES
MAX_DEPTH = 64

_YAML_TAG = "tag:yaml.org,2002:"
_MAP_TAGS = {None, "!", _YAML_TAG + "map"}
_SEQ_TAGS = {None, "!", _YAML_TAG + "seq"}
_SCALAR_TAGS = {_YAML_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
_MERGE_TAG = _YAML_TAG + "merge"
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class YMap(dict):
    """A mapping read from YAML: string keys, with the location of itself, each key and each value.

    ``raw`` keeps the source text of plain scalars that YAML read as something other than a string
    (``8080``, ``yes``), so messages can show exactly what to quote.
    """

    def __init__(self, loc: Location):
        super().__init__()
        self.loc = loc
        self.key_locs: dict[str, Location] = {}
        self.value_locs: dict[str, Location] = {}
        self.raw: dict[str, str] = {}

    def put(self, key: str, value: Any, key_loc: Location, value_loc: Location, raw: str | None) -> None:
        self[key] = value
        self.key_locs[key] = key_loc
        self.value_locs[key] = value_loc
        if raw is None:
            self.raw.pop(key, None)
        else:
            self.raw[key] = raw

    def remove(self, key: str) -> None:
        del self[key]
        del self.key_locs[key]
        del self.value_locs[key]
        self.raw.pop(key, None)


class YSeq(list):
    """A list read from YAML, with the location of itself and of each item (and raw scalar text)."""

    def __init__(self, loc: Location):
        super().__init__()
        self.loc = loc
        self.item_locs: list[Location] = []
        self.raw: dict[int, str] = {}

    def add(self, value: Any, loc: Location, raw: str | None) -> None:
        if raw is not None:
            self.raw[len(self)] = raw
        self.append(value)
        self.item_locs.append(loc)


def copy_tree(value: Any) -> Any:
    """A deep copy of a read value that keeps every location (aliases and merges need their own)."""
    if isinstance(value, YMap):
        out = YMap(value.loc)
        for key, item in value.items():
            out.put(key, copy_tree(item), value.key_locs[key], value.value_locs[key], value.raw.get(key))
        return out
    if isinstance(value, YSeq):
        seq = YSeq(value.loc)
        for index, item in enumerate(value):
            seq.add(copy_tree(item), value.item_locs[index], value.raw.get(index))
        return seq
    return value


def format_path(path: Iterable[Any]) -> str:
    """``workspaces[0].functions[1].name``; keys that aren't simple names are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):  # a full match: "a\n" is shown quoted, on one line
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def plain(value: Any) -> Any:
    """The same data as ordinary dicts and lists, for handing to the model and to plugins."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


@dataclass
class ReadResult:
    """The document of one file (``None`` when empty or unreadable) and what was wrong with it."""

    data: Any = None
    problems: list[Problem] = field(default_factory=list)
    readable: bool = False


class _Abort(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem
        self.problems = [problem]  # with the ones found before it, once the read stops


@dataclass
class _Built:
    """A finished node: its value, location, raw scalar text, node count and nesting height."""

    value: Any
    loc: Location
    raw: str | None = None
    size: int = 1
    height: int = 0
    chars: int = 0


@dataclass
class _Open:
    """A mapping or list being built, with what it has consumed so far."""

    value: YMap | YSeq
    anchor: str | None
    size: int = 1
    height: int = 1
    chars: int = 0
    key: str | None = None
    key_loc: Location | None = None
    expect_key: bool = True
    drop: bool = False  # the pending key duplicates an earlier one: its value is not kept
    merges: list[tuple[YMap, Location]] = field(default_factory=list)
    merge_pending: bool = False


def read_yaml_file(path: Path, display: str) -> ReadResult:
    """Read ``path`` (shown as ``display`` in problems) without trusting it: size, encoding,
    syntax, duplicate keys, nesting and alias expansion are all checked and reported with their
    line and column."""
    try:
        info = path.stat()
    except OSError as exc:
        return ReadResult(problems=[Problem(display, 0, 0, "", f"cannot read the file: {exc.strerror}")])
    if not stat.S_ISREG(info.st_mode):
        return ReadResult(problems=[Problem(display, 0, 0, "", "not a regular file; a manifest must be a file")])
    if info.st_size > MAX_FILE_BYTES:
        return ReadResult(problems=[_too_big(display, info.st_size)])
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return ReadResult(problems=[Problem(display, 0, 0, "", f"cannot read the file: {exc.strerror}")])
    if len(data) > MAX_FILE_BYTES:  # grew since stat
        return ReadResult(problems=[_too_big(display, len(data))])
    text, problem = decode_utf8(data, display)
    if problem:
        return ReadResult(problems=[problem])
    return read_yaml_text(text, display)


def _too_big(display: str, size: int) -> Problem:
    return Problem(
        display, 0, 0, "", f"the file is {size} bytes; a manifest may be at most {MAX_FILE_BYTES} bytes (1 MiB)"
    )


def read_yaml_text(text: str, display: str) -> ReadResult:
    """Build located values from YAML ``text``; see :func:`read_yaml_file`.

    libyaml reads when it is there (about 10× faster than PyYAML's own parser, with the same
    marks); a text with any problem at all is read again by PyYAML's parser, whose errors the
    messages are written for."""
    if _FAST_LOADER is not None:
        try:
            fast = _read_events(text, display, _FAST_LOADER)
        except (_Abort, yaml.YAMLError):
            fast = None
        if fast is not None and not fast.problems:
            return fast
    try:
        return _read_events(text, display, yaml.SafeLoader)
    except _Abort as abort:
        return ReadResult(problems=abort.problems)
    except yaml.MarkedYAMLError as exc:
        return ReadResult(problems=[_syntax_problem(exc, display)])
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        message = f"the control character U+{exc.character:04X} is not allowed in YAML; remove it"
        return ReadResult(problems=[Problem(display, line, col, "", message)])


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _read_events(text: str, display: str, loader_class: Any) -> ReadResult:
    builder = _Builder(display)
    loader = loader_class(text)
    try:
        while loader.check_event():
            builder.feed(loader.get_event(), loader)
    except _Abort as abort:
        abort.problems = builder.problems + [abort.problem]
        raise
    finally:
        loader.dispose()
    return ReadResult(data=builder.document, problems=builder.problems, readable=True)


def _position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _syntax_problem(exc: yaml.MarkedYAMLError, display: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if exc.problem and "'\\t'" in exc.problem:
        message += "; YAML cannot indent with tabs, use spaces"
    return Problem(display, line, col, "", message)


class _Builder:
    """Turns parser events into :class:`YMap`/:class:`YSeq` trees, checking limits as it goes."""

    def __init__(self, display: str):
        self.display = display
        self.stack: list[_Open] = []
        self.anchors: dict[str, _Built] = {}
        self.open_anchors: set[str] = set()
        self.total = 0
        self.chars = 0
        self.document: Any = None
        self.documents = 0
        self.problems: list[Problem] = []

    def loc(self, mark: yaml.Mark) -> Location:
        return Location(self.display, mark.line + 1, mark.column + 1)

    def abort(self, mark: yaml.Mark, message: str) -> None:
        loc = self.loc(mark)
        raise _Abort(Problem(self.display, loc.line, loc.col, "", message))

    def count(self, mark: yaml.Mark, size: int, what: str) -> None:
        self.total += size
        if self.total > MAX_VALUES:
            self.abort(mark, f"{what} makes the document larger than {MAX_VALUES} values; is it an alias bomb?")

    def count_chars(self, mark: yaml.Mark, chars: int, what: str) -> None:
        self.chars += chars
        if self.chars > MAX_TEXT_CHARS:
            self.abort(mark, f"{what} makes the document hold more than {MAX_TEXT_CHARS} characters of text; is it an alias bomb?")

    def feed(self, event: yaml.Event, loader: yaml.SafeLoader) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.abort(event.start_mark, "a manifest holds one YAML document; remove the second '---' and what follows")
        elif isinstance(event, yaml.ScalarEvent):
            self.scalar(event, loader)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self.start(event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.end(event)
        elif isinstance(event, yaml.AliasEvent):
            self.alias(event)

    def unsupported_tag(self, event: yaml.NodeEvent) -> None:
        tag = str(getattr(event, "tag", ""))
        shown = "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag
        self.abort(event.start_mark, f"the YAML tag {shown} is not supported in a manifest; remove it")

    def start(self, event: yaml.CollectionStartEvent) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            self.unsupported_tag(event)
        if len(self.stack) >= MAX_DEPTH:
            self.abort(event.start_mark, f"the document nests deeper than {MAX_DEPTH} levels")
        self.count(event.start_mark, 1, "this value")
        loc = self.loc(event.start_mark)
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Open(YMap(loc) if is_map else YSeq(loc), event.anchor))

    def end(self, event: yaml.CollectionEndEvent) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, YMap):
            self.apply_merges(frame)
        built = _Built(frame.value, frame.value.loc, None, frame.size, frame.height, frame.chars)
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = built
        self.add(built, event.start_mark)

    def scalar(self, event: yaml.ScalarEvent, loader: yaml.SafeLoader) -> None:
        self.count(event.start_mark, 1, "this value")
        loc = self.loc(event.start_mark)
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, YMap) and top.expect_key:
            # Keys are names in this format: read them as the text written, so `on:` or `1:` stay
            # the strings "on" and "1" instead of becoming booleans and numbers.
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _MERGE_TAG and event.implicit[0]:
                top.merge_pending = True
                top.key, top.key_loc, top.expect_key = "<<", loc, False
                return
            self.count_chars(event.start_mark, len(event.value), "this key")
            top.chars += len(event.value)
            self.key(top, event.value, loc, event.start_mark)
            return
        if event.tag == "!":  # the non-specific tag of a quoted scalar
            tag = _YAML_TAG + "str"
        elif event.tag is None:
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        else:
            tag = event.tag
        if tag not in _SCALAR_TAGS:
            self.unsupported_tag(event)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.abort(event.start_mark, f"cannot read this value: {exc.problem}")
        raw = event.value if not isinstance(value, str) and event.implicit[0] else None
        self.count_chars(event.start_mark, len(event.value), "this value")
        built = _Built(value, loc, raw, chars=len(event.value))
        if event.anchor:
            self.anchors[event.anchor] = built
        self.add(built, event.start_mark)

    def alias(self, event: yaml.AliasEvent) -> None:
        name = event.anchor
        if name in self.open_anchors:
            self.abort(event.start_mark, f"alias *{name} refers to a value that contains it")
        target = self.anchors.get(name)
        if target is None:
            self.abort(event.start_mark, f"alias *{name} refers to no anchor &{name} above it")
        self.count(event.start_mark, target.size, f"alias *{name}")
        self.count_chars(event.start_mark, target.chars, f"alias *{name}")
        if len(self.stack) + target.height > MAX_DEPTH:
            self.abort(event.start_mark, f"alias *{name} makes the document nest deeper than {MAX_DEPTH} levels")
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, YMap) and top.expect_key:
            self.abort(event.start_mark, "an alias cannot be a mapping key; write the key out")
        self.add(_Built(copy_tree(target.value), target.loc, target.raw, target.size, target.height, target.chars),
                 event.start_mark)

    def key(self, frame: _Open, key: str, loc: Location, mark: yaml.Mark) -> None:
        value = frame.value
        assert isinstance(value, YMap)
        if key in value:
            # Reported here; the later value is dropped so that the rest still reads.
            first = value.key_locs[key]
            message = f"duplicate key '{key}' (first at line {first.line}); remove one of them"
            self.problems.append(Problem(self.display, loc.line, loc.col, self.path_text(key), message))
        frame.key, frame.key_loc, frame.expect_key, frame.drop = key, loc, False, key in value

    def path_text(self, key: str) -> str:
        """The manifest path of ``key`` in the innermost open mapping."""
        parts: list[Any] = []
        for frame in self.stack[:-1]:
            parts.append(frame.key if isinstance(frame.value, YMap) else len(frame.value))
        return format_path(parts + [key])

    def add(self, built: _Built, mark: yaml.Mark) -> None:
        if not self.stack:
            self.document = built.value
            return
        frame = self.stack[-1]
        frame.size += built.size
        frame.chars += built.chars
        frame.height = max(frame.height, built.height + 1)
        value = frame.value
        if isinstance(value, YSeq):
            value.add(built.value, built.loc, built.raw)
            return
        if frame.expect_key:  # a mapping or list used as a key
            self.abort(mark, "a mapping key must be a plain name, not a mapping or list")
        if frame.merge_pending:
            frame.merge_pending = False
            frame.expect_key = True
            self.collect_merge(frame, built, mark)
            return
        assert frame.key is not None and frame.key_loc is not None
        if not frame.drop:
            value.put(frame.key, built.value, frame.key_loc, built.loc, built.raw)
        frame.expect_key = True

    def collect_merge(self, frame: _Open, built: _Built, mark: yaml.Mark) -> None:
        sources = built.value if isinstance(built.value, YSeq) else [built.value]
        for source in sources:
            if not isinstance(source, YMap):
                self.abort(mark, "a merge key '<<' takes a mapping or a list of mappings")
            frame.merges.append((source, built.loc))

    def apply_merges(self, frame: _Open) -> None:
        # YAML merge keys: keys written in the mapping win, then earlier merged mappings.
        value = frame.value
        assert isinstance(value, YMap)
        for source, _loc in frame.merges:
            for key, item in source.items():
                if key not in value:
                    value.put(key, copy_tree(item), source.key_locs[key], source.value_locs[key], source.raw.get(key))

