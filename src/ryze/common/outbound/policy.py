"""The outbound-fetch policy: which hosts and addresses Ryze may connect to on someone's behalf.

Public (globally routable) addresses are allowed; loopback, private, link-local (cloud metadata
at 169.254.169.254 included), unique-local, carrier-grade NAT, multicast, unspecified and every
other special-purpose range are refused, whichever way the address is spelled (the URL parser
reads hex, octal, integer and short IPv4 forms as the C library does, and IPv4 carried in IPv6 is
checked as the IPv4 address it stands for). An operator allow-list (host names and CIDR ranges,
e.g. ``127.0.0.0/8,::1,localhost`` for a Chatwoot on the same host) opens exactly what it names.

The policy makes no connection itself: :meth:`FetchPolicy.check_url` judges the URL as written
(IP literals and refused names), :meth:`FetchPolicy.check_resolved` judges the addresses a name
resolved to. :class:`ryze.common.outbound.resolver.PolicyResolver` applies the latter inside the
HTTP client, to the very addresses the connection then uses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ryze.common.outbound.errors import InvalidURL, TargetRefused
from ryze.common.outbound.url import IPAddress, ParsedURL, parse_host, parse_url, unwrap

# Names that mean "this machine" or "the cloud's instance metadata" without asking DNS. The
# addresses behind them are refused anyway; refusing the names too means no lookup is made.
_REFUSED_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_REFUSED_SUFFIXES = (".localhost",)  # RFC 6761: always loopback

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # not in Python 3.11's is_private list
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What the demo, `ryze up` (one host) and the test harnesses allow: their Chatwoot (or emulator)
# and their media servers listen on this machine.
LOOPBACK_ALLOW = "127.0.0.0/8,::1,localhost"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """An IPv4 address an IPv6 transition form routes to (6to4, Teredo client, NAT64)."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused by default (a short phrase), or None when it is a public address."""
    ip = unwrap(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = refusal_reason(embedded)
            if inner is not None:
                return inner
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a special-purpose address"
    return None


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str]
    suffixes: tuple[str, ...]  # from "*.example.com" entries, stored as ".example.com"
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Host names, ``*.domain`` wildcards, IP addresses and CIDR ranges; ValueError names a bad entry."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                if "/" in entry or ":" in entry:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                    continue
                if entry.startswith("*."):
                    host, _ = parse_host(entry[2:])
                    suffixes.append("." + host)
                    continue
                host, ip = parse_host(entry)
            except (ValueError, InvalidURL) as exc:
                raise ValueError(f"not a host name, address or CIDR range: {entry!r}") from exc
            if ip is not None:
                networks.append(ipaddress.ip_network(ip))
            else:
                names.add(host)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def has_name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def has_address(self, ip: IPAddress) -> bool:
        # Versions must match for ``in``; an IPv4-mapped address is judged as its IPv4 form.
        candidates = {ip, unwrap(ip)}
        return any(c.version == net.version and c in net for c in candidates for net in self.networks)


def split_setting(value: str) -> list[str]:
    return [part for part in value.replace(";", ",").split(",") if part.strip()]


class FetchPolicy:
    """Immutable; built once per service from its setting (``setting`` is its environment name,
    quoted in every refusal so an operator knows what to change)."""

    def __init__(self, allow: Iterable[str] = (), *, setting: str) -> None:
        self.allow = AllowList.parse(allow)
        self.setting = setting

    @classmethod
    def from_setting(cls, value: str, *, setting: str) -> FetchPolicy:
        return cls(split_setting(value), setting=setting)

    def _refuse(self, reason: str) -> TargetRefused:
        return TargetRefused(reason, setting=self.setting)

    def check_name(self, host: str) -> bool:
        """True when the allow-list names ``host`` (its addresses are then not judged); raises
        :class:`TargetRefused` for a name that always means this machine or cloud metadata."""
        if self.allow.has_name(host):
            return True
        if host in _REFUSED_NAMES or host.endswith(_REFUSED_SUFFIXES):
            raise self._refuse("names a local or cloud-metadata host")
        return False

    def check_address(self, ip: IPAddress) -> None:
        if self.allow.has_address(ip):
            return
        reason = refusal_reason(ip)
        if reason is not None:
            raise self._refuse(f"points to {reason}")

    def check_url(self, raw: str, *, allow_query: bool = True) -> ParsedURL:
        """Parse ``raw`` and judge what can be judged without DNS: an IP literal, a refused name.
        A host name that passes still has its resolved addresses checked at connection time."""
        parsed = parse_url(raw, allow_query=allow_query)
        if parsed.ip is not None:
            self.check_address(parsed.ip)
        else:
            self.check_name(parsed.host)
        return parsed

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Judge every address ``host`` resolved to: one refused address refuses the host (a name
        with one public and one internal address must not reach the internal one on a retry)."""
        name, ip = parse_host(host)
        if ip is not None:
            self.check_address(ip)
            return
        if self.check_name(name):
            return
        for address in addresses:
            try:
                resolved = ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError as exc:
                raise self._refuse("resolves to an address that cannot be judged") from exc
            self.check_address(resolved)
