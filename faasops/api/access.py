"""Who is calling the Platform API and what they may touch.

A token is a high-entropy random string (``fo_`` + 32 random bytes, URL-safe Base64). The tokens
file keeps only its SHA-256 — a slow password hash buys nothing for 256 random bits — one JSON
object a line: ``{"name": …, "sha256": …, "scopes": [...]}``. A scope is ``admin`` or
``ACTION:WORKSPACE`` with ACTION in ``read``/``invoke``/``write`` and WORKSPACE a name or ``*``;
``write`` and ``invoke`` include ``read``. ``FAASOPS_API_TOKEN`` in the server's environment is
one more admin token, named ``admin``.

Outside its scope a principal gets 404, exactly as for a workspace that does not exist, so a
token cannot probe which workspaces exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request

from faasops.errors import FaasopsError

TOKEN_ENV = "FAASOPS_API_TOKEN"
#: ASGI scope key of the principal an in-process caller (the web console, acting for a signed-in
#: session) has already authenticated. Only code in this process builds ASGI scopes, so no
#: network client can set it.
IN_PROCESS_PRINCIPAL = "faasops.principal"
TOKEN_PREFIX = "fo_"
MIN_TOKEN_LENGTH = 16
ADMIN_SCOPE = "admin"
ACTIONS = ("read", "invoke", "write")
# An action a scope grants also grants these (a writer can see what they write).
_IMPLIED = {"read": {"read"}, "invoke": {"invoke", "read"}, "write": {"write", "read"}}


class TokenError(FaasopsError):
    """The tokens file or a scope is malformed."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the token's name (the author of its commits) and its scopes."""

    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    def allows(self, workspace: str, action: str) -> bool:
        """Whether this principal may ``action`` (read/write/invoke) in ``workspace``."""
        if self.is_admin:
            return True
        for scope in self.scopes:
            granted, _, target = scope.partition(":")
            if target in ("*", workspace) and action in _IMPLIED.get(granted, set()):
                return True
        return False


def parse_scope(scope: str) -> str:
    """``scope`` checked (``admin`` or ``ACTION:WORKSPACE``); raises :class:`TokenError`."""
    if scope == ADMIN_SCOPE:
        return scope
    action, sep, workspace = scope.partition(":")
    if not sep or action not in ACTIONS or not workspace:
        raise TokenError(f"invalid scope {scope!r}: use `admin` or ACTION:WORKSPACE with ACTION one of "
                         f"{', '.join(ACTIONS)} and WORKSPACE a name or `*` (e.g. write:shop)")
    return scope


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(tokens_file: Path, name: str, scopes: list[str]) -> str:
    """Append a new token's hash to ``tokens_file`` (mode 0600) and return the token itself,
    which is shown once and stored nowhere."""
    if not name or any(c.isspace() for c in name) or len(name) > 100:
        raise TokenError(f"invalid token name {name!r}: 1-100 characters without spaces")
    if not scopes:
        raise TokenError("a token needs at least one --scope (e.g. admin, read:*, write:shop)")
    checked = sorted({parse_scope(s) for s in scopes})
    existing = TokenRegistry(tokens_file, env_token=None).names()
    if name in existing:
        raise TokenError(f"{tokens_file}: a token named {name!r} exists already")
    token = new_token()
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(json.dumps({"name": name, "sha256": token_digest(token), "scopes": checked}) + "\n")
    return token


@dataclass(frozen=True)
class _Entry:
    name: str
    digest: str
    scopes: frozenset[str]


class TokenRegistry:
    """The accepted tokens: the tokens file (re-read when it changes, so a new token works
    without a restart) plus the environment's admin token."""

    def __init__(self, tokens_file: Path | None, env_token: str | None):
        self._file = tokens_file
        self._env_digest = token_digest(env_token) if env_token else None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: list[_Entry] = []

    def _load(self) -> list[_Entry]:
        if self._file is None:
            return []
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            return []
        with self._lock:
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._entries = _read_entries(self._file)
                self._stamp = stamp
            return self._entries

    def names(self) -> set[str]:
        return {entry.name for entry in self._load()}

    def principal(self, token: str) -> Principal | None:
        """The principal ``token`` authenticates, or None. Compares digests in constant time."""
        digest = token_digest(token)
        found: Principal | None = None
        if self._env_digest and hmac.compare_digest(digest, self._env_digest):
            found = Principal("admin", frozenset({ADMIN_SCOPE}))
        for entry in self._load():
            if hmac.compare_digest(digest, entry.digest) and found is None:
                found = Principal(entry.name, entry.scopes)
        return found


def _read_entries(path: Path) -> list[_Entry]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(line)
            entries.append(_Entry(str(raw["name"]), str(raw["sha256"]),
                                  frozenset(parse_scope(s) for s in raw["scopes"])))
        except (ValueError, KeyError, TypeError, TokenError) as exc:
            # The message names the line, never its content: it holds a token hash.
            raise TokenError(f"{path}:{number}:1: not a token entry ({type(exc).__name__})") from None
    return entries


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def authenticated(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal from ``Authorization: Bearer <token>``;
    401 without a valid token. The registry lives on ``app.state.tokens``."""
    already = request.scope.get(IN_PROCESS_PRINCIPAL)
    if isinstance(already, Principal):
        request.state.principal = already
        return already
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise _unauthorized("missing bearer token (send `Authorization: Bearer <token>`)")
    registry: TokenRegistry = request.app.state.tokens
    principal = registry.principal(credentials.strip())
    if principal is None:
        raise _unauthorized("invalid bearer token")
    request.state.principal = principal
    return principal


def not_found(workspace: str) -> HTTPException:
    return HTTPException(404, f"workspace '{workspace}' not found")


def authorize(principal: Principal, workspace: str, action: str) -> None:
    """Raise 404 (never 403: no probing) unless ``principal`` may ``action`` in ``workspace``."""
    if not principal.allows(workspace, action):
        raise not_found(workspace)


def visible_workspaces(principal: Principal, names: list[str] | set[str] | tuple[str, ...]) -> list[str]:
    """The workspaces among ``names`` that ``principal`` may read, sorted."""
    return sorted(name for name in names if principal.allows(name, "read"))
