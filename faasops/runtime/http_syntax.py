"""What may appear in an HTTP response head, checked before a guest's answer reaches a client.

The rules are RFC 9110's (field names are tokens; field values are visible ASCII, obs-text,
space and tab, so no CR, LF or NUL) and the ones Spin inherits from the ``http`` crate:
wasmtime-wasi-http refuses such names and values when the guest builds its fields, and hyper
never sends them. A value that passed here cannot split the response (``\\r\\nSet-Cookie: …``).
"""

from __future__ import annotations

TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# field-value = *( VCHAR / obs-text / SP / HTAB ); the http crate's HeaderValue accepts the same.
_VALUE_BYTES = frozenset([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
MIN_STATUS, MAX_STATUS = 100, 599


def wire_bytes(value: str) -> bytes:
    """A header value's bytes. faasops keeps header values as latin-1 text (one char per byte),
    as ``http.server``, ``http.client`` and urllib3 do; text beyond latin-1 can only be meant as
    characters, and is sent as UTF-8, as curl does."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def is_token(name: str) -> bool:
    """Whether ``name`` is a valid header field name (an RFC 9110 token)."""
    return bool(name) and set(name) <= TOKEN_CHARS


def is_field_value(value: bytes) -> bool:
    """Whether ``value`` may be sent as a header field value (no CR, LF, NUL or other controls)."""
    return set(value) <= _VALUE_BYTES


def response_head_problem(status: int, headers: list[tuple[str, str]]) -> str | None:
    """Why a response with this status and these headers must not be sent, or None if it may.

    Header values are the latin-1 decoding of the bytes the guest gave (one char per byte).
    """
    if not MIN_STATUS <= status <= MAX_STATUS:
        return f"status {status} is outside {MIN_STATUS}–{MAX_STATUS}"
    for name, value in headers:
        if not is_token(name):
            return f"header name {name!r} is not a valid field name"
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            return f"header {name!r} has a value that is not bytes (latin-1)"
        if not is_field_value(raw):
            return f"header {name!r} has a value with CR, LF, NUL or another control character"
    return None
