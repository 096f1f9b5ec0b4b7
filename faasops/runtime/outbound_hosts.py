"""Spin's ``allowed_outbound_hosts``: which hosts a component may reach, parsed and matched as
Spin does.

Mirrors spin ``crates/outbound-networking-config/src/allowed_hosts.rs`` (``AllowedHostConfig``,
``HostConfig``, ``PortConfig``, ``OutboundUrl``; spinframework/spin at 94a8fc8a): an entry is
``<scheme>://<host>[:<port>]`` where

* the scheme is ``*`` or letters, compared exactly (``https``, not ``HTTPS``);
* the host is ``*`` (any), ``*.example.com`` (any subdomain, not ``example.com`` itself),
  ``self``/``self.alt`` (the app itself: relative URLs), an IP network in CIDR form
  (``10.0.0.0/8``; a bare address is a /32), or a literal name or address;
* the port is ``*``, a number or a half-open range ``8000..8080``; without one, the scheme's
  well-known port (``http`` 80, ``https`` 443, ``redis`` 6379, ``mysql`` 3306, ``postgres`` 5432,
  ``mqtt`` 1883), so ``*://host`` (no port, no known scheme) is malformed.

Template entries (``{{ variable }}``) are not supported: :data:`faasops.names.ALLOWED_OUTBOUND_HOST`
refuses them at validate, and :func:`parse` here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

WELL_KNOWN_PORTS = {"postgres": 5432, "mysql": 3306, "redis": 6379, "mqtt": 1883, "http": 80, "https": 443}

# A host name as url::Host::parse takes it, narrowed to ASCII (punycode for others).
_NAME = re.compile(r"[A-Za-z0-9_]([-A-Za-z0-9_.]*[A-Za-z0-9_])?")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class MalformedAllowedHost(ValueError):
    """An ``allowed_outbound_hosts`` entry Spin would refuse to load."""


@dataclass(frozen=True)
class AllowedHost:
    """One parsed entry. ``host`` is ``"*"``, ``".suffix"`` (a ``*.`` wildcard), ``"self"``, an
    IP network or a lower-case name; ``ports`` None means any port, else ``(start, stop)``
    half-open ranges."""

    original: str
    scheme: str  # "*" or the scheme
    host: str | _Network
    ports: tuple[tuple[int, int], ...] | None

    def allows(self, scheme: str, host: str, port: int | None) -> bool:
        """Whether a request to ``scheme://host[:port]`` (port None: the scheme's default) may go."""
        if self.scheme != "*" and self.scheme != scheme:
            return False
        if not self._allows_host(host):
            return False
        if self.ports is None:
            return True
        port = port if port is not None else WELL_KNOWN_PORTS.get(scheme)
        return port is not None and any(start <= port < stop for start, stop in self.ports)

    def _allows_host(self, host: str) -> bool:
        if self.host == "*":
            return True
        if self.host == "self":
            return False  # only relative URLs, see AllowedHosts.allows_self
        address = _ip(host)
        if isinstance(self.host, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            return address is not None and address in self.host
        if address is not None:
            return False
        if self.host.startswith("."):
            return host.endswith(self.host)
        return host == self.host


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _host(text: str) -> str | _Network:
    text = text.strip()
    if text == "*":
        return "*"
    if text in ("self", "self.alt"):
        return "self"
    if text.startswith("{"):
        raise MalformedAllowedHost("host lists are not yet supported")
    try:
        # Spin's IpNetwork::from_str_truncate: host bits are dropped, a bare address is /32 or /128.
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        pass
    text = text.removesuffix("/")
    if "/" in text:
        raise MalformedAllowedHost("must not include a path")
    if text.startswith("*."):
        domain = text[2:]
        if "*" in domain or not domain or _ip(domain) is not None:
            raise MalformedAllowedHost("wildcards are allowed only as prefixes of a domain")
        return "." + domain.lower()
    if "*" in text:
        raise MalformedAllowedHost("wildcards are allowed only as subdomains")
    if not _NAME.fullmatch(text):
        raise MalformedAllowedHost(f"invalid host {text!r}")
    return text.lower()


def _ports(text: str, scheme: str) -> tuple[tuple[int, int], ...] | None:
    if not text:
        if scheme not in WELL_KNOWN_PORTS:
            raise MalformedAllowedHost(
                f"no port was provided and the scheme {scheme!r} does not have a known default port number")
        port = WELL_KNOWN_PORTS[scheme]
        return ((port, port + 1),)
    if text == "*":
        return None
    start, dots, end = text.partition("..")
    try:
        first = int(start, 10)
        last = int(end, 10) if dots else first + 1
    except ValueError:
        raise MalformedAllowedHost(f"port {text!r} is not a number") from None
    if not (0 <= first <= 65535 and 0 <= last <= 65536) or not start.isdigit() or (dots and not end.isdigit()):
        raise MalformedAllowedHost(f"port {text!r} is not a number from 0 to 65535")
    return ((first, last),)


def parse(entry: str) -> AllowedHost:
    """One ``allowed_outbound_hosts`` entry, as Spin's ``AllowedHostConfig::parse`` reads it."""
    url = entry.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise MalformedAllowedHost(f"{url!r} does not contain a scheme (such as 'https://' or '*://')")
    if "{" in url:
        raise MalformedAllowedHost(f"{url!r}: templates and lists are not supported")
    host, colon, tail = rest.rpartition(":")
    if not colon:
        host, port = rest, ""
    elif not tail:
        port = ""
    else:
        try:
            _host(rest)  # an IPv6 address or network has colons of its own
            host, port = rest, ""
        except MalformedAllowedHost:
            port, slash, path = tail.partition("/")
            if slash and path:
                raise MalformedAllowedHost(f"{url!r} has a path but is not allowed to") from None
    if scheme != "*" and not scheme.isalpha():
        raise MalformedAllowedHost(f"invalid scheme {scheme!r}: only letters are allowed")
    return AllowedHost(entry, scheme, _host(host), _ports(port, scheme))


@dataclass(frozen=True)
class AllowedHosts:
    """A component's whole list; empty allows nothing (Spin's default)."""

    entries: tuple[AllowedHost, ...] = ()

    @classmethod
    def parse(cls, entries: list[str] | tuple[str, ...]) -> "AllowedHosts":
        """Parse every entry; raises :class:`MalformedAllowedHost` naming the first bad one."""
        parsed = []
        for entry in entries:
            try:
                parsed.append(parse(entry))
            except MalformedAllowedHost as exc:
                raise MalformedAllowedHost(f"allowed_outbound_hosts entry {entry!r}: {exc}") from None
        return cls(tuple(parsed))

    def allows_url(self, url: str) -> bool:
        """Whether an absolute ``url`` may be requested (an unparsable one may not, as in Spin)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if not parts.hostname:
            return False
        return any(entry.allows(parts.scheme.lower(), parts.hostname.lower(), port)
                   for entry in self.entries)

    def allows_self(self, schemes: tuple[str, ...] = ("http", "https")) -> bool:
        """Whether relative URLs (requests to the app itself) are allowed."""
        return any(entry.host in ("*", "self") and (entry.scheme == "*" or entry.scheme in schemes)
                   for entry in self.entries)

    def __str__(self) -> str:
        return ", ".join(entry.original for entry in self.entries) or "none"
