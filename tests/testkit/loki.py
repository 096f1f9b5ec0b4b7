"""A Loki HTTP API test double: an in-process HTTP server that answers like Grafana Loki.

No Loki server is installable on the test machines, so providers that read Loki are tested
against this double, over real HTTP, with the same client code they use in production::

    from testkit.loki import LokiDouble

    with LokiDouble() as loki:                     # a free port on 127.0.0.1
        loki.push({"function_id": "demo.hello"}, [(time.time(), "GET / 200")])
        urllib.request.urlopen(f"{loki.url}/loki/api/v1/query_range?query=...")

What it follows is Loki's documented HTTP API (docs/sources/reference/loki-http-api.md) and, for
details the page leaves open, Loki 3's source (``pkg/loghttp``, ``pkg/logqlmodel``,
``pkg/util/server``):

- ``POST /loki/api/v1/push`` with ``Content-Type: application/json`` (optionally
  ``Content-Encoding: gzip``/``deflate``): ``{"streams": [{"stream": {labels}, "values":
  [["<ns>", "<line>"(, {structured metadata})], …]}]}``; 204 on success. Timestamps must be
  strings. Like Loki 3, a stream without any of the ``discover_service_name`` labels gets
  ``service_name="unknown_service"``; exact duplicates (same stream, nanosecond and line) are
  stored once; entries older than the ``reject_old_samples`` age or newer than the creation
  grace period are refused with 400 while the rest of the push is kept. The default
  snappy-compressed protobuf body is **not** decoded: it gets 415 (use JSON).
- ``GET|POST /loki/api/v1/query_range``: ``query``, ``start``, ``end``, ``since``, ``limit``
  (default 100, at most ``max_entries_limit`` = 5000), ``direction`` (``backward`` default),
  ``step`` (validated, meaningless for log queries). Entries with ``start <= ts < end``; the
  limit applies across streams after merging them in ``direction`` order; each stream's
  ``values`` are in that order; streams sorted by their label string. Timestamps: integer
  nanoseconds (10 digits or fewer: seconds), float seconds, RFC3339(Nano).
- ``GET|POST /loki/api/v1/query`` (instant): log queries answer 400 with Loki's "log queries are
  not supported as an instant query type …".
- ``GET|POST /loki/api/v1/labels``, ``/loki/api/v1/label/<name>/values`` (``start``/``end``/
  ``since``, default the last 6 h, optional ``query`` selector; ``data`` omitted when empty, as
  Loki does), ``/loki/api/v1/series`` (repeated ``match[]``).
- ``GET /ready``.
- Multi-tenancy: with ``auth_enabled=True`` every API request needs ``X-Scope-OrgID`` (else 401
  ``no org id``) and tenants see only their own data; without it everything is tenant ``fake``
  and the header is ignored, as in single-tenant Loki.
- LogQL subset: a stream selector with ``=``, ``!=``, ``=~``, ``!~`` (regexes fully anchored,
  ``(?s)``, like Prometheus matchers; a label a stream lacks reads as ``""``; at least one
  matcher must reject ``""``) followed by any number of line filters ``|=``, ``!=``, ``|~``,
  ``!~`` (unanchored). Strings are Go strings: ``"…"`` with Go escapes or `` `raw` ``.
- Errors as Loki writes them: ``text/plain`` body with the message, 400 for bad requests
  (``parse error at line 1, col 12: syntax error: unexpected …``).

Not covered, and never answered wrongly: metric queries (``rate``, ``count_over_time`` …),
parsers and other pipeline stages (``| json``, ``| logfmt``, label filters, ``line_format``),
``interval`` and line-filter ``or`` get a 400 that says the double does not support them;
``/loki/api/v1/tail`` (websocket), OTLP ingestion, index stats/volume, patterns, rules,
deletion, ``/metrics`` get 404. A multi-tenant ``a|b`` header is just a tenant name here, and
RE2 syntax is approximated by Python's ``re``.

Authorisation is not part of Loki; deployments put a gateway in front of it. ``basic_auth`` /
``bearer_token`` make the double behave like such a gateway (401 without the credentials).
``fail_next()`` injects an error answer; ``requests`` records what clients sent.
"""

from __future__ import annotations

import base64
import calendar
import gzip
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
import zlib
from bisect import insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NS = 1_000_000_000
FAKE_TENANT = "fake"  # Loki's tenant when auth_enabled is false
DEFAULT_LIMIT = 100
DEFAULT_QUERY_SINCE_NS = 3600 * NS  # query_range without start: the last hour
DEFAULT_LABELS_SINCE_NS = 6 * 3600 * NS  # labels/series without start: the last 6 hours (documented)
MAX_ENTRIES_LIMIT = 5000  # limits_config.max_entries_limit_per_query
REJECT_OLD_SAMPLES_MAX_AGE_NS = 7 * 24 * 3600 * NS  # limits_config.reject_old_samples_max_age (1w)
CREATION_GRACE_PERIOD_NS = 600 * NS  # limits_config.creation_grace_period (10m)
# limits_config.discover_service_name (Loki 3 default).
DEFAULT_DISCOVER_SERVICE_NAME = (
    "service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
    "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
)
SERVICE_NAME_LABEL = "service_name"
UNKNOWN_SERVICE = "unknown_service"

ERR_EMPTY_COMPATIBLE = (
    "queries require at least one regexp or equality matcher that does not have an empty-compatible "
    'value. For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)
ERR_INSTANT_LOG_QUERY = (
    "log queries are not supported as an instant query type, please change your query to a range query type"
)
ERR_MISSING_LABELS = "error at least one label pair is required per stream"
ERR_END_BEFORE_START = "end timestamp must not be before or equal to start time"
ERR_ZERO_STEP = "zero or negative query resolution step widths are not accepted. Try a positive integer"
ERR_STEP_TOO_SMALL = ("exceeded maximum resolution of 11,000 points per time series. "
                      "Try increasing the value of the step parameter")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS_NS = (365 * 86400 * NS, 7 * 86400 * NS, 86400 * NS, 3600 * NS, 60 * NS, NS, 1_000_000)
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


class BadRequest(Exception):
    """An error answer: ``status`` and Loki's plain-text message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class LokiPushError(RuntimeError):
    """:meth:`LokiDouble.push` was refused (``status``, ``body``)."""

    def __init__(self, status: int, body: str):
        super().__init__(f"push refused with {status}: {body}")
        self.status = status
        self.body = body


# ============================================================================ LogQL subset


def label_string(labels: Mapping[str, str]) -> str:
    """Loki's canonical label string: ``{a="1", b="2"}``, names sorted, values Go-quoted."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def go_quote(value: str) -> str:
    """``value`` as a Go (and LogQL) double-quoted string literal."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # a lone surrogate is not valid UTF-8
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_GO_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_GO_UNESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a stream selector."""

    name: str
    op: str  # = != =~ !~
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", re.compile(f"(?s:{self.value})"))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.matches_value(labels.get(self.name, ""))

    def matches_value(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._regex.fullmatch(value) is not None  # type: ignore[attr-defined]
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class LineFilter:
    op: str  # |= != |~ !~
    value: str

    def __post_init__(self) -> None:
        if self.op in ("|~", "!~"):
            object.__setattr__(self, "_regex", re.compile(self.value))

    def keeps(self, line: str) -> bool:
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        hit = self._regex.search(line) is not None  # type: ignore[attr-defined]
        return hit if self.op == "|~" else not hit


@dataclass(frozen=True)
class LogQuery:
    """A parsed log query: stream selector plus line filters."""

    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...] = ()

    def keeps(self, line: str) -> bool:
        return all(f.keeps(line) for f in self.filters)


@dataclass(frozen=True)
class _Token:
    kind: str  # { } , ( ) [ ] IDENT STRING OP NUMBER EOF
    text: str
    value: str
    col: int


_OPERATORS = ("|=", "|~", "|>", "!=", "!~", "=~", "==", "=", "|", ">", "<")
_PUNCTUATION = "{},()[]"


def _parse_error(col: int, message: str) -> BadRequest:
    return BadRequest(f"parse error at line 1, col {col}: {message}")


def _tokenize(text: str) -> list[_Token]:
    # LogQL queries are one line in practice; multi-line queries report columns on line 1.
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        col = i + 1
        if char.isspace():
            i += 1
        elif char == "#":  # a comment runs to the end of the line
            while i < len(text) and text[i] != "\n":
                i += 1
        elif char in _PUNCTUATION:
            tokens.append(_Token(char, char, char, col))
            i += 1
        elif char == '"':
            value, end = _go_unquote(text, i)
            tokens.append(_Token("STRING", text[i:end], value, col))
            i = end
        elif char == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _parse_error(col, "literal not terminated")
            tokens.append(_Token("STRING", text[i:end + 1], text[i + 1:end], col))
            i = end + 1
        elif char.isalpha() or char == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(_Token("IDENT", text[i:j], text[i:j], col))
            i = j
        elif char.isdigit():
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "."):
                j += 1
            tokens.append(_Token("NUMBER", text[i:j], text[i:j], col))
            i = j
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise _parse_error(col, f"syntax error: unexpected character {go_quote(char)}")
            tokens.append(_Token("OP", op, op, col))
            i += len(op)
    tokens.append(_Token("EOF", "", "", len(text) + 1))
    return tokens


def _go_unquote(text: str, start: int) -> tuple[str, int]:
    """The Go double-quoted string literal at ``text[start]``: (value, index after it)."""
    out: list[str] = []
    i = start + 1
    while True:
        if i >= len(text) or text[i] == "\n":
            raise _parse_error(start + 1, "literal not terminated")
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = text[i + 1] if i + 1 < len(text) else ""
        if escape in _GO_UNESCAPES:
            out.append(_GO_UNESCAPES[escape])
            i += 2
        elif escape in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = text[i + 2:i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise _parse_error(i + 1, "invalid char escape")
            out.append(chr(int(digits, 16)) if escape != "x" else bytes([int(digits, 16)]).decode("latin-1"))
            i += 2 + width
        elif escape in "01234567" and escape:
            digits = text[i + 1:i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise _parse_error(i + 1, "invalid char escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise _parse_error(i + 1, "invalid char escape")


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def unexpected(self, token: _Token, expecting: str = "") -> BadRequest:
        what = "$end" if token.kind == "EOF" else ("IDENTIFIER" if token.kind == "IDENT" else token.kind
                                                  if token.kind in ("STRING", "NUMBER") else token.text)
        expected = f", expecting {expecting}" if expecting else ""
        return _parse_error(token.col, f"syntax error: unexpected {what}{expected}")

    def selector(self) -> tuple[Matcher, ...]:
        token = self.take()
        if token.kind == "IDENT":
            raise _parse_error(token.col, f"metric queries ({token.text}) are not supported by the Loki test double")
        if token.kind != "{":
            raise self.unexpected(token, "{")
        matchers: list[Matcher] = []
        while True:
            token = self.take()
            if token.kind == "}" and not matchers:
                break
            if token.kind != "IDENT" or not _LABEL_NAME.match(token.text):
                raise self.unexpected(token, "IDENTIFIER")
            op = self.take()
            if op.kind != "OP" or op.text not in ("=", "!=", "=~", "!~"):
                raise self.unexpected(op, "= or != or =~ or !~")
            value = self.take()
            if value.kind != "STRING":
                raise self.unexpected(value, "STRING")
            try:
                matchers.append(Matcher(token.text, op.text, value.value))
            except re.error as exc:
                raise _parse_error(value.col, f"error parsing regexp: {exc}: `{value.value}`") from None
            token = self.take()
            if token.kind == "}":
                break
            if token.kind != ",":
                raise self.unexpected(token, ", or }")
        if not any(not m.matches_value("") for m in matchers):
            raise BadRequest(f"parse error : {ERR_EMPTY_COMPATIBLE}")
        return tuple(matchers)

    def log_query(self) -> LogQuery:
        matchers = self.selector()
        filters: list[LineFilter] = []
        while self.peek().kind != "EOF":
            op = self.take()
            if op.kind == "OP" and op.text in ("|=", "!=", "|~", "!~"):
                value = self.take()
                if value.kind != "STRING":
                    raise self.unexpected(value, "STRING")
                if self.peek().kind == "IDENT" and self.peek().text == "or":
                    raise _parse_error(self.peek().col, "line filter `or` is not supported by the Loki test double")
                try:
                    filters.append(LineFilter(op.text, value.value))
                except re.error as exc:
                    raise _parse_error(value.col, f"error parsing regexp: {exc}: `{value.value}`") from None
            elif op.kind == "OP" and op.text in ("|", "|>"):
                stage = self.peek().text or op.text
                raise _parse_error(op.col, f"pipeline stage `{op.text} {stage}` is not supported by the Loki test "
                                           "double (only line filters |= != |~ !~)")
            elif op.kind == "[":
                raise _parse_error(op.col, "metric queries are not supported by the Loki test double")
            else:
                raise self.unexpected(op)
        return LogQuery(matchers, tuple(filters))


def parse_query(text: str) -> LogQuery:
    """Parse the LogQL subset; raise :class:`BadRequest` with Loki's error text."""
    return _Parser(text).log_query()


def parse_selector(text: str) -> tuple[Matcher, ...]:
    """Parse a bare stream selector (``match[]``, the ``query`` of labels endpoints)."""
    parser = _Parser(text)
    matchers = parser.selector()
    if parser.peek().kind != "EOF":
        raise parser.unexpected(parser.peek())
    return matchers


# ============================================================================ parameters


def _go_parse_int(name: str, value: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", value):
        raise BadRequest(f"could not parse '{name}' parameter: strconv.ParseInt: parsing {go_quote(value)}: "
                         "invalid syntax")
    return int(value)


def parse_timestamp(value: str, default_ns: int, name: str = "time") -> int:
    """Loki's ``parseTimestamp``: nanoseconds (10 digits or fewer: seconds), float seconds
    (millisecond precision) or RFC3339Nano → nanoseconds since the epoch."""
    if value == "":
        return default_ns
    if "." in value:
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            whole = int(seconds)
            return whole * NS + int(round((seconds - whole) * 1000) / 1000 * NS)
    if re.fullmatch(r"[+-]?\d+", value):
        number = int(value)
        return number * NS if len(value) <= 10 else number
    match = _RFC3339.match(value)
    if not match:
        _go_parse_int(name, value)  # raises with Go's message
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(9, "0")
    offset = 0
    if match.group(9):
        offset = (int(match.group(10)) * 3600 + int(match.group(11)) * 60) * (1 if match.group(9) == "+" else -1)
    epoch = calendar.timegm((year, month, day, hour, minute, second)) - offset
    return epoch * NS + int(fraction)


def parse_duration_ns(value: str) -> int | None:
    """A Prometheus duration (``1h30m``, ``5m``, ``250ms``) in nanoseconds, or None."""
    match = _DURATION.match(value)
    if not value or not match:
        return None
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS_NS) if g)


def _seconds_or_duration_ns(value: str) -> int:
    try:
        return int(float(value) * NS)
    except ValueError:
        pass
    duration = parse_duration_ns(value)
    if duration is None:
        raise BadRequest(f"cannot parse {go_quote(value)} to a valid duration")
    return duration


def _bounds(params: Mapping[str, str], default_since_ns: int) -> tuple[int, int]:
    """Loki's ``determineBounds``: ``end`` (default now), then ``start`` (default ``end`` — or
    now when ``end`` is in the future — minus ``since``)."""
    now = time.time_ns()
    since = default_since_ns
    if params.get("since"):
        parsed = parse_duration_ns(params["since"])
        if parsed is None:
            raise BadRequest("could not parse 'since' parameter: not a valid duration string: "
                             + go_quote(params["since"]))
        since = parsed
    end = parse_timestamp(params.get("end", ""), now, "end")
    start = parse_timestamp(params.get("start", ""), min(end, now) - since, "start")
    return start, end


def _limit(params: Mapping[str, str]) -> int:
    value = params.get("limit", "")
    if value == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[+-]?\d+", value):
        raise BadRequest(f"strconv.Atoi: parsing {go_quote(value)}: invalid syntax")
    limit = int(value)
    if limit <= 0:
        raise BadRequest("limit must be a positive value")
    return limit


def _direction(params: Mapping[str, str]) -> str:
    value = params.get("direction", "") or "backward"
    if value.upper() not in ("FORWARD", "BACKWARD"):
        raise BadRequest(f"invalid direction '{value}'")
    return value.lower()


# ============================================================================ storage


@dataclass(order=True)
class _Entry:
    ts: int
    seq: int
    line: str = field(compare=False)
    metadata: dict[str, str] = field(compare=False, default_factory=dict)


@dataclass
class _Stream:
    labels: dict[str, str]
    key: str
    entries: list[_Entry] = field(default_factory=list)
    seen: set[tuple[int, str]] = field(default_factory=set)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the double received (query parameters and form fields merged)."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class _Fault:
    status: int
    body: str
    path: str | None
    times: int


class LokiDouble:
    """An in-process Loki HTTP API on ``host``:``port`` (0 picks a free port).

    ``start()`` (or ``with``) returns once it listens; ``url`` is its base URL; ``push()``
    ingests through ``POST /loki/api/v1/push``; ``reset()`` forgets all data, faults and
    recorded requests; ``stop()`` closes it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, auth_enabled: bool = False,
                 basic_auth: tuple[str, str] | None = None, bearer_token: str | None = None,
                 max_entries_limit: int = MAX_ENTRIES_LIMIT,
                 discover_service_name: Iterable[str] = DEFAULT_DISCOVER_SERVICE_NAME,
                 reject_old_samples: bool = True):
        self.host = host
        self.port = port
        self.auth_enabled = auth_enabled
        self.basic_auth = basic_auth
        self.bearer_token = bearer_token
        self.max_entries_limit = max_entries_limit
        self.discover_service_name = tuple(discover_service_name)
        self.reject_old_samples = reject_old_samples
        #: Every request received, oldest first (``/ready`` included).
        self.requests: list[RecordedRequest] = []
        self._tenants: dict[str, dict[str, _Stream]] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self._mutex = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Loki double is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> LokiDouble:
        double = self

        class Handler(_Handler):
            loki = double

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="loki-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LokiDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._mutex:
            self._tenants.clear()
            self._faults.clear()
            self.requests.clear()

    # ------------------------------------------------------------ test helpers

    def push(self, labels: Mapping[str, str], lines_with_times: Iterable[tuple[float | int | datetime, str]],
             *, tenant: str | None = None) -> list[int]:
        """Push one stream through the HTTP API; return the nanosecond timestamps sent.

        Times: ``float`` seconds since the epoch, ``int`` nanoseconds, or an aware ``datetime``.
        Raises :class:`LokiPushError` when the double refuses the push."""
        pairs = list(lines_with_times)
        stamps = [_to_ns(t) for t, _ in pairs]
        lines = [line for _, line in pairs]
        body = json.dumps({"streams": [{"stream": dict(labels),
                                        "values": [[str(ts), line] for ts, line in zip(stamps, lines)]}]})
        headers = {"Content-Type": "application/json", **self._client_headers(tenant)}
        request = urllib.request.Request(f"{self.url}/loki/api/v1/push", data=body.encode(), headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise LokiPushError(exc.code, exc.read().decode(errors="replace")) from None
        return stamps

    def _client_headers(self, tenant: str | None) -> dict[str, str]:
        headers = {}
        if tenant is not None or self.auth_enabled:
            headers["X-Scope-OrgID"] = tenant or FAKE_TENANT
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        elif self.basic_auth:
            token = base64.b64encode(f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers

    def fail_next(self, status: int, body: str = "", *, path: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests (to ``path``, if given) with ``status`` and
        ``body`` instead of serving them: outages, 429s and 5xx for client tests."""
        with self._mutex:
            self._faults.append(_Fault(status, body, path, times))

    def streams(self, tenant: str = FAKE_TENANT) -> dict[str, list[tuple[int, str]]]:
        """What a tenant holds: ``{label string: [(ns, line), …]}`` oldest first."""
        with self._mutex:
            return {key: [(e.ts, e.line) for e in s.entries] for key, s in self._tenants.get(tenant, {}).items()}

    # ------------------------------------------------------------ ingestion

    def _ingest(self, tenant: str, body: dict[str, Any]) -> list[str]:
        """Store a decoded push; return the messages of refused entries."""
        streams = body.get("streams") if isinstance(body, dict) else None
        if not isinstance(streams, list):
            raise BadRequest("loghttp.PushRequest.Streams: []*loghttp.Stream: decode slice: expect [ or n")
        decoded = [(self._stream_labels(labels), values) for labels, values in map(_decode_stream, streams)]
        now = time.time_ns()
        refused: list[str] = []
        with self._mutex:
            store = self._tenants.setdefault(tenant, {})
            for labels, values in decoded:
                key = label_string(labels)
                stream = store.setdefault(key, _Stream(labels, key))
                for ts, line, metadata in values:
                    if self.reject_old_samples and ts < now - REJECT_OLD_SAMPLES_MAX_AGE_NS:
                        oldest = _rfc3339(now - REJECT_OLD_SAMPLES_MAX_AGE_NS)
                        refused.append(f"entry for stream '{key}' has timestamp too old: {_rfc3339(ts)}, "
                                       f"oldest acceptable timestamp is: {oldest}")
                        continue
                    if ts > now + CREATION_GRACE_PERIOD_NS:
                        refused.append(f"entry for stream '{key}' has timestamp too new: {_rfc3339(ts)}")
                        continue
                    if (ts, line) in stream.seen:  # the ingester drops exact duplicates
                        continue
                    stream.seen.add((ts, line))
                    self._seq += 1
                    insort(stream.entries, _Entry(ts, self._seq, line, metadata))
        return refused

    def _stream_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """A pushed stream's labels as stored: ``service_name`` discovered, names checked."""
        if SERVICE_NAME_LABEL not in labels and self.discover_service_name:
            found = next((labels[n] for n in self.discover_service_name if labels.get(n)), UNKNOWN_SERVICE)
            labels = {**labels, SERVICE_NAME_LABEL: found}
        if not labels:
            raise BadRequest(ERR_MISSING_LABELS)
        for name in labels:
            if not _LABEL_NAME.match(name):
                raise BadRequest(f"couldn't parse labels: invalid label name {go_quote(name)}")
        return labels

    # ------------------------------------------------------------ queries

    def _select(self, tenant: str, matchers: tuple[Matcher, ...], start: int, end: int) -> list[_Stream]:
        """Snapshots of the streams of ``tenant`` matching ``matchers``, holding only their
        entries in ``[start, end)`` (streams without any are left out)."""
        with self._mutex:
            snapshot = [_Stream(s.labels, s.key, [e for e in s.entries if start <= e.ts < end])
                        for s in self._tenants.get(tenant, {}).values() if all(m.matches(s.labels) for m in matchers)]
        return [s for s in snapshot if s.entries]

    def query_range(self, tenant: str, params: Mapping[str, str]) -> dict[str, Any]:
        started = time.perf_counter()
        start, end = _bounds(params, DEFAULT_QUERY_SINCE_NS)
        if end < start:
            raise BadRequest(ERR_END_BEFORE_START)
        limit = _limit(params)
        direction = _direction(params)
        default_step = max((end - start) // NS // 250, 1) * NS  # Loki's: the range / 250, at least 1 s
        step = _seconds_or_duration_ns(params["step"]) if params.get("step") else default_step
        if step <= 0:
            raise BadRequest(ERR_ZERO_STEP)
        if (end - start) // step > 11000:
            raise BadRequest(ERR_STEP_TOO_SMALL)
        if params.get("interval") and _seconds_or_duration_ns(params["interval"]) != 0:
            raise BadRequest("the Loki test double does not support `interval`")
        query = parse_query(params.get("query", ""))
        if limit > self.max_entries_limit:
            raise BadRequest(f"max entries limit per query exceeded, limit > max_entries_limit_per_query "
                             f"({limit} > {self.max_entries_limit})")
        candidates: list[tuple[int, str, int, _Stream, _Entry]] = []
        lines = size = 0
        for stream in self._select(tenant, query.matchers, start, end):
            for entry in stream.entries:
                lines += 1
                size += len(entry.line.encode())
                if query.keeps(entry.line):
                    candidates.append((entry.ts, stream.key, entry.seq, stream, entry))
        candidates.sort(key=lambda c: c[:3], reverse=direction == "backward")
        chosen = candidates[:limit]
        grouped: dict[str, tuple[_Stream, list[_Entry]]] = {}
        for _, key, _, stream, entry in chosen:
            grouped.setdefault(key, (stream, []))[1].append(entry)
        result = [{"stream": dict(sorted(stream.labels.items())), "values": [_value(e) for e in entries]}
                  for key, (stream, entries) in sorted(grouped.items())]
        return {"status": "success", "data": {
            "resultType": "streams", "result": result,
            "stats": _stats(lines, size, len(chosen), time.perf_counter() - started),
        }}

    def label_names(self, tenant: str, params: Mapping[str, str], name: str | None) -> dict[str, Any]:
        start, end = _bounds(params, DEFAULT_LABELS_SINCE_NS)
        matchers = parse_selector(params["query"]) if params.get("query") else ()
        streams = self._select(tenant, matchers, start, end)
        if name is None:
            values = sorted({label for s in streams for label in s.labels})
        else:
            values = sorted({s.labels[name] for s in streams if name in s.labels})
        return {"status": "success", **({"data": values} if values else {})}

    def series(self, tenant: str, params: Mapping[str, str], groups: list[str]) -> dict[str, Any]:
        if not groups:
            raise BadRequest("0 matcher groups supplied")
        start, end = _bounds(params, DEFAULT_LABELS_SINCE_NS)
        found: dict[str, dict[str, str]] = {}
        for group in groups:
            for stream in self._select(tenant, parse_selector(group), start, end):
                found[stream.key] = dict(sorted(stream.labels.items()))
        return {"status": "success", "data": [found[k] for k in sorted(found)]}

    def take_fault(self, path: str) -> _Fault | None:
        with self._mutex:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


def _to_ns(moment: float | datetime) -> int:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("use an aware datetime (UTC), not a naive one")
        return calendar.timegm(moment.utctimetuple()) * NS + moment.microsecond * 1000
    if isinstance(moment, bool):
        raise TypeError("a time is float seconds, int nanoseconds or a datetime")
    if isinstance(moment, int):
        return moment
    return round(moment * 1_000_000) * 1000  # float seconds carry microseconds at best


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % NS:09d}Z"


def _value(entry: _Entry) -> list[Any]:
    return [str(entry.ts), entry.line, entry.metadata] if entry.metadata else [str(entry.ts), entry.line]


def _stats(lines: int, size: int, returned: int, seconds: float) -> dict[str, Any]:
    rate = lambda n: int(n / seconds) if seconds > 0 else 0
    return {
        "summary": {
            "bytesProcessedPerSecond": rate(size), "linesProcessedPerSecond": rate(lines),
            "totalBytesProcessed": size, "totalLinesProcessed": lines, "execTime": seconds, "queueTime": 0,
            "subqueries": 0, "totalEntriesReturned": returned, "splits": 0, "shards": 0,
        },
        "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0}},
        "ingester": {"totalReached": 1, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": returned,
                     "store": {"chunk": {"headChunkBytes": size, "headChunkLines": lines}}},
    }


def _decode_stream(stream: Any) -> tuple[dict[str, str], list[tuple[int, str, dict[str, str]]]]:
    if not isinstance(stream, dict):
        raise BadRequest("loghttp.Stream: expect { or n")
    labels = stream.get("stream") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("couldn't parse labels: label values must be strings")
    values: list[tuple[int, str, dict[str, str]]] = []
    for value in stream.get("values") or []:
        if not isinstance(value, list) or len(value) not in (2, 3):
            raise BadRequest("loghttp.Entry: each value must be [\"<ns>\", \"<line>\"(, {metadata})]")
        ts, line = value[0], value[1]
        if not isinstance(ts, str) or not isinstance(line, str):
            raise BadRequest("Value is not a string")  # jsonparser.MalformedStringError
        if not re.fullmatch(r"-?\d+", ts):
            raise BadRequest(f"strconv.ParseInt: parsing {go_quote(ts)}: invalid syntax")
        metadata = value[2] if len(value) == 3 else {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise BadRequest("Value is not an object of strings")  # jsonparser.MalformedObjectError
        values.append((int(ts), line, metadata))
    return dict(labels), values


# ============================================================================ HTTP


class _Handler(BaseHTTPRequestHandler):
    loki: LokiDouble
    protocol_version = "HTTP/1.1"
    server_version = "loki-test-double"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        body = self._body()
        params = parse_qs(url.query, keep_blank_values=True)
        form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if self.command == "POST" and form:
            for name, values in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items():
                params.setdefault(name, []).extend(values)
        with self.loki._mutex:
            self.loki.requests.append(RecordedRequest(self.command, path, params, dict(self.headers.items())))
        fault = self.loki.take_fault(path)
        if fault is not None:
            return self._text(fault.status, fault.body)
        try:
            self._route(path, {k: v[0] for k, v in params.items()}, params, body)
        except BadRequest as exc:
            self._text(exc.status, exc.message)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self, path: str, params: dict[str, str], multi: dict[str, list[str]], body: bytes) -> None:
        if path == "/ready":
            return self._text(200, "ready\n")
        if not path.startswith("/loki/api/v1/"):
            return self._text(404, "404 page not found\n")
        if not self._gateway_allows():
            return self._text(401, "401 Unauthorized\n")
        tenant = FAKE_TENANT
        if self.loki.auth_enabled:
            tenant = self.headers.get("X-Scope-OrgID", "")
            if not tenant:
                return self._text(401, "no org id\n")
        endpoint = path[len("/loki/api/v1/"):]
        values = re.fullmatch(r"label/([^/]+)/values", endpoint)
        if endpoint == "push":
            if self.command != "POST":
                return self._text(405, "")
            refused = self.loki._ingest(tenant, self._push_body(body))
            return self._text(400, "\n".join(refused)) if refused else self._empty(204)
        if endpoint == "query_range":
            return self._json(self.loki.query_range(tenant, params))
        if endpoint == "query":
            parse_query(params.get("query", ""))
            raise BadRequest(ERR_INSTANT_LOG_QUERY)
        if endpoint == "labels":
            return self._json(self.loki.label_names(tenant, params, None))
        if values:
            return self._json(self.loki.label_names(tenant, params, unquote(values.group(1))))
        if endpoint == "series":
            return self._json(self.loki.series(tenant, params, multi.get("match[]", [])))
        return self._text(404, "404 page not found\n")

    def _gateway_allows(self) -> bool:
        if not self.loki.basic_auth and not self.loki.bearer_token:
            return True
        given = self.headers.get("Authorization", "")
        if self.loki.bearer_token and given == f"Bearer {self.loki.bearer_token}":
            return True
        if self.loki.basic_auth:
            expected = base64.b64encode(":".join(self.loki.basic_auth).encode()).decode()
            return hmac.compare_digest(given.encode(), f"Basic {expected}".encode())
        return False

    def _push_body(self, body: bytes) -> Any:
        encoding = self.headers.get("Content-Encoding", "")
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body, -zlib.MAX_WBITS)
            elif encoding not in ("", "snappy"):
                raise BadRequest(f"Content-Encoding {go_quote(encoding)} not supported")
        except (OSError, zlib.error) as exc:
            raise BadRequest(f"{encoding}: invalid body: {exc}") from None
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise BadRequest("the Loki test double decodes only JSON pushes (Content-Type: application/json), "
                             "not snappy-compressed protobuf", status=415)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"loghttp.PushRequest: {exc}") from None

    def _json(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
