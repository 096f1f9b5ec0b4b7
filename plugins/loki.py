"""The Loki log source (slot ``logs``, type ``loki``): ``faasops logs WS [FN] --source loki``.

faasops labels every SpinApp pod with ``function_id = <workspace>.<function>`` and
``workspace_id``; a log collector (Promtail, Alloy …) that maps pod labels to Loki labels makes
them stream labels, which is what this source selects on.

Options (``providers.logs`` with ``type: loki``, or nested under ``providers.logs.loki`` for
``--source loki``)
==========================================================================================

- ``url`` (required): Loki's base URL, e.g. ``http://loki-gateway.monitoring:3100``.
- ``org_id``: the tenant, sent as ``X-Scope-OrgID`` (multi-tenant Loki).
- ``token_env``: the environment variable holding a bearer token; or ``username`` with
  ``password_env`` (the variable holding the password) for basic auth, e.g. Grafana Cloud.
  Secrets never go into faas.yaml: ``token``/``password`` options are refused.
- ``timeout_seconds``: seconds per HTTP request (default 10).
- ``default_since``: how far back to look without ``--since`` (default ``1h``).
- ``poll_interval_seconds``: seconds between two polls of ``--follow`` (default 1).
- ``follow_overlap_seconds``: seconds ``--follow`` keeps re-reading behind the newest entry it showed,
  so entries a collector ships late still show up, once (default 5).
- ``max_entries``: entries per request, at most the server's ``max_entries_limit_per_query``
  (default 5000, Loki's default); larger ``--limit`` values are read in pages.

The names without ``_seconds`` (``timeout``, ``poll_interval``, ``follow_overlap``) still work,
with a deprecation warning: the :data:`OPTIONS_SCHEMA` lists them as aliases.

Queries
=======

``{function_id="<ws>.<fn>"}`` for one function, ``{workspace_id="<ws>"}`` for a workspace;
``--grep TEXT`` adds ``|= "TEXT"``, TEXT written as an escaped LogQL string, so whatever it
holds it can only be matched, never change the query. A read is ``query_range`` with
``direction=backward`` and ``limit``, from ``--since`` (default ``default_since``) to now,
paged backward when ``--limit`` exceeds ``max_entries``.

``--follow`` polls ``query_range`` with ``direction=forward`` from ``follow_overlap_seconds``
before the newest entry shown, and shows an entry only when its key — (nanosecond, stream
labels, line), what Loki itself de-duplicates on — is new. It continues exactly where the
preceding read of the same query stopped: entries written in between show, and in the oldest
nanosecond shown, the entries the limit left out are remembered so they never show later. Entry
timestamps come from the collectors' clocks and "now" from faasops' host: these should agree
within ``follow_overlap_seconds``, as NTP-synced hosts do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from faasops.errors import ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Project, ProviderConfig
from faasops.options import seconds_option
from faasops.providers import LogRecord

NS = 1_000_000_000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_SINCE = "1h"
DEFAULT_POLL_S = 1.0
DEFAULT_OVERLAP_S = 5.0
DEFAULT_MAX_ENTRIES = 5000
QUERY_RANGE = "/loki/api/v1/query_range"

_TEXT = {"type": "string", "minLength": 1}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {**_TEXT, "description": "Loki's base URL, e.g. http://loki-gateway.monitoring:3100"},
        "org_id": {**_TEXT, "description": "the tenant, sent as X-Scope-OrgID"},
        "token_env": {**_TEXT, "writeOnly": True, "description": "environment variable holding a bearer token"},
        "username": {**_TEXT, "description": "basic auth user (with password_env)"},
        "password_env": {**_TEXT, "writeOnly": True, "description": "environment variable holding the password"},
        "timeout_seconds": seconds_option("seconds per HTTP request", DEFAULT_TIMEOUT_S, aliases=["timeout"]),
        "default_since": {**_TEXT, "default": DEFAULT_SINCE, "description": "how far back without --since (1h, 30m …)"},
        "poll_interval_seconds": seconds_option("seconds between two polls of --follow", DEFAULT_POLL_S,
                                                aliases=["poll_interval"]),
        "follow_overlap_seconds": seconds_option("seconds --follow re-reads behind the newest entry shown",
                                                 DEFAULT_OVERLAP_S, aliases=["follow_overlap"]),
        "max_entries": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_ENTRIES,
                        "description": "entries per request (at most the server's max_entries_limit_per_query)"},
    },
    "required": ["url"],
}
_GO_ESCAPES = {"\\": "\\\\", '"': '\\"', "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v"}


def logql_string(value: str) -> str:
    """``value`` as a double-quoted LogQL (Go) string literal that matches it byte for byte."""
    out = []
    for char in value:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def selector(workspace: str, function: str | None) -> str:
    """The stream selector of a workspace or one function (labels faasops puts on pods)."""
    if function:
        return "{function_id=" + logql_string(f"{workspace}.{function}") + "}"
    return "{workspace_id=" + logql_string(workspace) + "}"


def log_query(workspace: str, function: str | None, grep: str | None) -> str:
    query = selector(workspace, function)
    return f"{query} |= {logql_string(grep)}" if grep else query


@dataclass(frozen=True)
class _Entry:
    """One Loki entry; ``key`` is unique per (nanosecond, stream, line), as Loki's entries are."""

    ts: int
    labels: dict[str, str]
    line: str
    key: str

    @classmethod
    def of(cls, ts: int, labels: dict[str, str], line: str) -> _Entry:
        stream = json.dumps(sorted(labels.items()), ensure_ascii=False)
        digest = hashlib.sha256(f"{stream}\n".encode() + line.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(ts, labels, line, f"{ts}:{digest[:16]}")

    def order(self) -> tuple[int, str]:
        return self.ts, self.key


@dataclass
class _Position:
    """Where a read left off, for a follow of the same query to continue from.

    Entries before ``floor`` are never shown; ``seen`` holds the keys at or after it that must
    not show (again), key → nanosecond; ``newest`` is the newest nanosecond shown."""

    floor: int
    newest: int
    seen: dict[str, int]


class LokiLogSource:
    """Reads function logs from Loki's HTTP API (``query_range``)."""

    def __init__(self, url: str, *, org_id: str | None = None, authorization: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, default_since_s: float = 3600.0,
                 poll_s: float = DEFAULT_POLL_S, overlap_s: float = DEFAULT_OVERLAP_S,
                 max_entries: int = DEFAULT_MAX_ENTRIES):
        import urllib3

        self.url = url.rstrip("/")
        self.org_id = org_id
        self.timeout_s = timeout_s
        self.default_since_s = default_since_s
        self.poll_s = poll_s
        self.overlap_ns = int(overlap_s * NS)
        self.max_entries = max_entries
        #: HTTP requests made, keyed by API path; for tests and benchmarks.
        self.calls: dict[str, int] = {}
        self._headers = {"Accept": "application/json", "User-Agent": "faasops"}
        if org_id:
            self._headers["X-Scope-OrgID"] = org_id
        if authorization:
            self._headers["Authorization"] = authorization
        # Connection errors and gateway hiccups are retried briefly; everything else is final.
        retries = urllib3.Retry(total=3, connect=2, read=0, status=2, backoff_factor=0.2,
                                status_forcelist=(502, 503, 504), allowed_methods={"GET"}, raise_on_status=False)
        pool = {"retries": retries, "timeout": urllib3.Timeout(connect=timeout_s, read=timeout_s)}
        proxy = _proxy_for(self.url)
        self._http = urllib3.ProxyManager(proxy, **pool) if proxy else urllib3.PoolManager(**pool)
        self._positions: dict[tuple[str, str | None, str | None, int | None], _Position] = {}

    # ------------------------------------------------------------ LogSource

    def read(self, workspace: str, function: str | None, *, limit: int, since: float | None = None,
             grep: str | None = None) -> list[LogRecord]:
        since_ns = _ns(since) if since is not None else None
        start = since_ns if since_ns is not None else time.time_ns() - int(self.default_since_s * NS)
        entries, position = self._newest(log_query(workspace, function, grep), start, limit)
        self._positions[(workspace, function, grep, since_ns)] = position
        return [_record(e, workspace, function) for e in entries]

    def follow(self, workspace: str, function: str | None, *, since: float | None = None,
               grep: str | None = None, poll_s: float | None = None) -> Iterator[LogRecord]:
        # Where to start is settled here, not at the first next(): what is written from now on shows.
        query = log_query(workspace, function, grep)
        since_ns = _ns(since) if since is not None else None
        position = self._positions.pop((workspace, function, grep, since_ns), None)
        if position is None:  # nothing read before: start from now, ignoring what is already there
            now = time.time_ns()
            position = self._newest(query, max(now - self.overlap_ns, since_ns or 0), self.max_entries)[1]
            position.newest = max(position.newest, now)
        return self._tail(query, position, workspace, function, self.poll_s if poll_s is None else poll_s)

    def _tail(self, query: str, position: _Position, workspace: str, function: str | None,
              poll_s: float) -> Iterator[LogRecord]:
        while True:
            for entry in sorted(self._poll(query, position), key=_Entry.order):
                yield _record(entry, workspace, function)
            time.sleep(poll_s)

    # ------------------------------------------------------------ reading

    def _newest(self, query: str, start: int, limit: int) -> tuple[list[_Entry], _Position]:
        """The newest ``limit`` entries at or after ``start`` (newest first), paging backward,
        and the position a follow continues from."""
        end = time.time_ns() + 1
        found: list[_Entry] = []
        keys: set[str] = set()
        exhausted = False
        while len(found) < limit:
            want = min(limit - len(found) + len(keys), self.max_entries)
            page = self._query_range(query, start, end, want, "backward")
            found += [e for e in page if e.key not in keys][:limit - len(found)]
            if len(page) < want:
                exhausted = True
                break
            oldest = page[-1].ts
            # The next page ends just after the oldest nanosecond seen (end is exclusive), and the
            # keys of that nanosecond tell its entries apart from those already found. A page
            # holding a single nanosecond cannot be split further: move past it.
            end = oldest + 1 if oldest + 1 < end else oldest
            keys = {e.key for e in found if e.ts == oldest}
        seen = {e.key: e.ts for e in found}
        floor = start
        if not exhausted and found:
            # Older entries were left out, some maybe in the oldest nanosecond shown: remember
            # every key of that nanosecond, so a follow shows only the ones written later.
            floor = found[-1].ts
            seen.update((e.key, e.ts) for e in self._query_range(query, floor, floor + 1, self.max_entries, "forward"))
        newest = found[0].ts if found else start
        return found, _Position(floor, newest, seen)

    def _window(self, position: _Position, now: int) -> int:
        """Where a poll starts: ``follow_overlap`` before the newest entry shown (entry clocks,
        not ours), but never further back than ``default_since`` while nothing arrives."""
        lookback = max(int(self.default_since_s * NS), self.overlap_ns)
        return max(position.floor, position.newest - self.overlap_ns, now - lookback)

    def _poll(self, query: str, position: _Position) -> list[_Entry]:
        """Entries not shown yet, from :meth:`_window` to now."""
        end = time.time_ns() + 1
        start = self._window(position, end)
        fresh: list[_Entry] = []
        while True:
            page = self._query_range(query, start, end, self.max_entries, "forward")
            for entry in page:
                if entry.key not in position.seen:
                    position.seen[entry.key] = entry.ts
                    fresh.append(entry)
            if len(page) < self.max_entries:
                break
            # A full page: go on from its last nanosecond (keys drop what was seen). Only more
            # than max_entries entries in one nanosecond could make a page that cannot advance.
            last = page[-1].ts
            start = last if last > start else last + 1
        if fresh:
            position.newest = max(position.newest, max(e.ts for e in fresh))
        window = self._window(position, end)
        position.seen = {k: ts for k, ts in position.seen.items() if ts >= window}
        return fresh

    def _query_range(self, query: str, start: int, end: int, limit: int, direction: str) -> list[_Entry]:
        """One ``query_range``, its streams merged into one list in ``direction`` order."""
        payload = self._get(QUERY_RANGE, {"query": query, "start": str(start), "end": str(end),
                                           "limit": str(limit), "direction": direction}, query)
        try:
            data = payload["data"]
            if data["resultType"] != "streams":
                raise ValueError(data["resultType"])
            entries = [_Entry.of(int(ts), dict(stream["stream"]), line)
                       for stream in data["result"] for ts, line, *_ in stream["values"]]
        except (KeyError, TypeError, ValueError):
            raise ProviderError(f"Loki at {self.url} answered {QUERY_RANGE} with JSON that is not a streams result; "
                                "is `url` a Loki server?") from None
        entries.sort(key=_Entry.order, reverse=direction == "backward")
        return entries[:limit]

    def _get(self, path: str, params: dict[str, str], query: str) -> dict[str, Any]:
        import urllib3

        self.calls[path] = self.calls.get(path, 0) + 1
        try:
            response = self._http.request("GET", self.url + path, fields=params, headers=self._headers)
        except urllib3.exceptions.MaxRetryError as exc:
            raise ProviderError(f"cannot reach Loki at {self.url} ({_reason(exc.reason)}); check `url` under "
                                "providers.logs (loki) and the network") from None
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderError(f"cannot reach Loki at {self.url} ({_reason(exc)})") from None
        body = _one_line(response.data.decode("utf-8", errors="replace"))
        if response.status != 200:
            raise ProviderError(self._status_error(response.status, body, path, query))
        try:
            payload = json.loads(response.data)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise ProviderError(f"Loki at {self.url} answered {path} with something that is not Loki's JSON "
                                f"({body[:120] or 'an empty body'}); is `url` a Loki server?")
        return payload

    def _status_error(self, status: int, body: str, path: str, query: str) -> str:
        said = f": {body}" if body else ""
        if status == 400:
            return f"Loki rejected the query {query}{said}"
        if status == 401:
            if "no org id" in body:
                return (f"Loki at {self.url} is multi-tenant and needs a tenant (401{said}); set `org_id` "
                        "under providers.logs (loki)")
            return (f"Loki at {self.url} refused the credentials (401 Unauthorized{said}); check `token_env`, or "
                    "`username` and `password_env`, under providers.logs (loki)")
        if status == 403:
            tenant = f" tenant {self.org_id!r}" if self.org_id else ""
            return f"Loki at {self.url} denied access to{tenant or ' these logs'} (403 Forbidden{said})"
        if status == 404:
            return (f"Loki at {self.url} has no {path} (404{said}); `url` must be Loki's base URL, "
                    "without /loki/api/v1")
        if status == 429:
            return f"Loki at {self.url} is rate-limiting queries (429{said}); retry later"
        return f"Loki at {self.url} failed to answer {path} ({status}{said})"

    def close(self) -> None:
        self._http.clear()


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000) * 1000


def _record(entry: _Entry, workspace: str, function: str | None) -> LogRecord:
    """A Loki entry as a log record; the function comes from its ``function_id`` label (the
    part after the first dot), else the function asked for, else its pod's name."""
    labels = entry.labels
    label_ws, dot, label_fn = labels.get("function_id", "").partition(".")
    ws = labels.get("workspace_id") or (label_ws if dot else "") or workspace
    fn = (label_fn if dot else "") or function or _pod_function(labels.get("pod", "")) or "?"
    return LogRecord(entry.ts / NS, ws, fn, entry.line, labels=dict(labels), id=entry.key)


def _pod_function(pod: str) -> str:
    """``hello-7d9f8b6c5d-x2x4z`` (a Deployment's pod) → ``hello``."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""


def _proxy_for(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` give for ``url``, as curl does."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    return proxy if proxy and not proxy_bypass(parts.hostname or "") else None


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _reason(error: BaseException | None) -> str:
    """A short, credential-free description of a connection failure."""
    import urllib3

    if isinstance(error, urllib3.exceptions.NameResolutionError):
        return "its host name does not resolve"
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        # "<HTTPConnection …>: Failed to establish a new connection: [Errno 111] Connection refused"
        return str(error).rsplit("] ", 1)[-1].lower() if "] " in str(error) else "connection failed"
    if isinstance(error, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)):
        return "timed out"
    if isinstance(error, urllib3.exceptions.SSLError):
        return f"TLS error: {_one_line(str(error), 120)}"
    return _one_line(str(error) or type(error).__name__, 120) if error else "connection failed"


# -------------------------------------------------------------------- configuration


def _options(config: ProviderConfig) -> dict[str, Any]:
    """The options, checked against OPTIONS_SCHEMA by the plugin manager, and what a schema
    can't say."""
    where = f"providers.{config.slot} ({config.type})"
    options = {k: v for k, v in config.options.items() if v is not None}
    url = options.get("url")
    if not url:
        raise ProviderError(f"{where}: option `url` is required (Loki's base URL, e.g. http://loki:3100); set it "
                            "under providers.logs, or under providers.logs.loki for --source loki")
    if not re.match(r"^https?://[^/?#]+", url):
        raise ProviderError(f"{where}: `url` must be an http:// or https:// URL, not {url!r}")
    if "@" in url.split("/", 3)[2]:
        raise ProviderError(f"{where}: remove the credentials from `url`; use `username` and `password_env`")
    if "token_env" in options and ("username" in options or "password_env" in options):
        raise ProviderError(f"{where}: use either `token_env` or `username` with `password_env`, not both")
    if ("username" in options) != ("password_env" in options):
        raise ProviderError(f"{where}: basic auth needs both `username` and `password_env`")
    return options


def _secret(where: str, option: str, variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ProviderError(f"{where}: the environment variable {variable} (named by `{option}`) is not set")
    return value


def _authorization(config: ProviderConfig, options: dict[str, Any]) -> str | None:
    where = f"providers.{config.slot} ({config.type})"
    if "token_env" in options:
        return f"Bearer {_secret(where, 'token_env', options['token_env'])}"
    if "username" in options:
        password = _secret(where, "password_env", options["password_env"])
        return "Basic " + base64.b64encode(f"{options['username']}:{password}".encode()).decode()
    return None


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("logs", "loki", OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("logs", "loki", "pod logs from Grafana Loki by the function_id label (LogQL, --follow)")]


@hookimpl
def faasops_log_source(config: ProviderConfig, project: Project) -> LokiLogSource | None:
    if config.type != "loki":
        return None
    from faasops.observe import parse_duration

    options = _options(config)
    return LokiLogSource(
        options["url"], org_id=options.get("org_id"), authorization=_authorization(config, options),
        timeout_s=float(options.get("timeout_seconds", DEFAULT_TIMEOUT_S)),
        default_since_s=parse_duration(options.get("default_since", DEFAULT_SINCE)),
        poll_s=float(options.get("poll_interval_seconds", DEFAULT_POLL_S)),
        overlap_s=float(options.get("follow_overlap_seconds", DEFAULT_OVERLAP_S)),
        max_entries=int(options.get("max_entries", DEFAULT_MAX_ENTRIES)),
    )
