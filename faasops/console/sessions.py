"""Signed-in browser sessions of the console.

Signing in with an API token makes a session: an opaque random id (the only thing in the
cookie) mapped, in this process's memory, to the token's principal (name and scopes) and a
per-session CSRF token. The token itself is never stored, nor sent back to the browser. A
session ends on sign-out, after :data:`IDLE_TIMEOUT_S` without a request, after
:data:`MAX_AGE_S` in any case, and when the server restarts.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from faasops.api.access import Principal

COOKIE_NAME = "faasops_console"
IDLE_TIMEOUT_S = 8 * 3600.0
MAX_AGE_S = 24 * 3600.0
#: Most sessions kept at once; signing in past it ends the least recently used one.
MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One signed-in browser: who it acts as and the CSRF token its forms carry."""

    principal: Principal
    csrf_token: str
    created: float
    last_seen: float


class SessionStore:
    """Sessions by the SHA-256 of their id (a dump of this memory holds no usable cookie)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def create(self, principal: Principal) -> tuple[str, Session]:
        """A new session for ``principal``: its id (for the cookie) and the session."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(principal, secrets.token_urlsafe(32), now, now)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_seen)
                del self._sessions[oldest]
            self._sessions[self._key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session ``session_id`` names (its idle clock restarted), or None."""
        if not session_id:
            return None
        key = self._key(session_id)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.last_seen > IDLE_TIMEOUT_S or now - session.created > MAX_AGE_S:
                del self._sessions[key]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(self._key(session_id), None)
