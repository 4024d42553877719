"""Parsing and normalising a URL Ryze is asked to fetch: what the policy and the connection see.

Every refusal here is a malformed or unacceptable *spelling*; whether the target's addresses may be
reached is :mod:`ryze.common.outbound.policy`'s question. Reasons are phrased to follow a field
name ("mediaUrl must not carry credentials") and never repeat the URL: it may hold a password.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ryze.common.outbound.errors import InvalidURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_SCHEMES = {"http": 80, "https": 443}
# Control characters (CR/LF smuggle headers) and backslashes (WHATWG parsers read "\" as "/",
# urllib does not: the two would disagree on the host) are refused anywhere in the URL. A space in
# the path is left to the client to percent-encode; in the host it fails the host-name check.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
# After IDNA encoding a host name is LDH labels separated by dots; "_" shows up in real internal
# names (docker services), so it is accepted and left to DNS.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
# The characters an IPv4 address can be spelled with in inet_aton's legacy forms (hex, octal,
# integer, "127.1"); getaddrinfo accepts the same forms, so the policy must read them the same way.
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$")


@dataclass(frozen=True)
class ParsedURL:
    """A normalised http(s) URL. ``host`` is lower case without a trailing dot; for an IP literal it
    is the canonical address (IPv4-mapped IPv6 unwrapped), and ``url`` is rebuilt with it, so the
    connection goes to exactly the address the policy checked."""

    scheme: str
    host: str
    port: int
    ip: IPAddress | None
    url: str

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if self.port == _SCHEMES[self.scheme] else f"{host}:{self.port}"


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read as the C library reads it (``0x7f000001``, ``0177.0.0.1``, ``2130706433``,
    ``127.1``), or None when it is not an IPv4 spelling."""
    if not _LEGACY_IPV4.match(host) or not any(c.isdigit() for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 spelling stands for (IPv4-mapped ``::ffff:a.b.c.d``), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_host(host: str) -> tuple[str, IPAddress | None]:
    """A URL host (brackets already removed) -> (normalised host, address when it is a literal)."""
    if not host:
        raise InvalidURL("must name a host")
    if ":" in host:
        if "%" in host:  # a zone id only means something on this machine's interfaces
            raise InvalidURL("must not use an IPv6 zone id")
        try:
            ip: IPAddress = unwrap(ipaddress.IPv6Address(host))
        except ValueError as exc:
            raise InvalidURL("has an invalid IPv6 address") from exc
        return str(ip), ip
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    legacy = legacy_ipv4(host)
    if legacy is not None:
        return str(legacy), legacy
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL("has an invalid host name") from exc
    if not _HOSTNAME.match(encoded):
        raise InvalidURL("has an invalid host name")
    return encoded, None


def parse_url(raw: str, *, allow_query: bool = True) -> ParsedURL:
    """Validate and normalise ``raw``; raises :class:`InvalidURL` with a reason."""
    if not isinstance(raw, str) or not raw:
        raise InvalidURL("must be an http or https URL")
    if len(raw) > MAX_URL_LENGTH:
        raise InvalidURL(f"must be at most {MAX_URL_LENGTH} characters")
    if _FORBIDDEN.search(raw):
        raise InvalidURL("must not contain control characters or backslashes")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:  # unbalanced brackets, a port that is not a number or above 65535
        raise InvalidURL("is not a valid URL (check the host and the port)") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not parts.netloc:
        raise InvalidURL("must be an http or https URL")
    if "@" in parts.netloc:
        raise InvalidURL("must not carry credentials (user or password)")
    if port == 0:
        raise InvalidURL("is not a valid URL (check the host and the port)")
    if not allow_query and (parts.query or parts.fragment):
        raise InvalidURL("must not carry a query or fragment")
    # urlsplit keeps the host as written (brackets stripped by .hostname, case folded); read it
    # from the netloc ourselves so "[zz]" or an empty host cannot slip through as "no host".
    netloc_host = parts.netloc.rsplit("@", 1)[-1]
    if netloc_host.startswith("["):
        end = netloc_host.find("]")
        if end < 0:
            raise InvalidURL("is not a valid URL (check the host and the port)")
        literal = netloc_host[1:end]
        if ":" not in literal:
            raise InvalidURL("has an invalid IPv6 address")
    else:
        literal = netloc_host.split(":", 1)[0]
    host, ip = parse_host(literal)
    effective_port = port if port is not None else _SCHEMES[scheme]
    parsed = ParsedURL(scheme=scheme, host=host, port=effective_port, ip=ip, url="")
    url = urlunsplit((scheme, parsed.netloc, parts.path or "/", parts.query, ""))
    return ParsedURL(scheme=scheme, host=host, port=effective_port, ip=ip, url=url)
