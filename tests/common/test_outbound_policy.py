"""The outbound-fetch policy judged on itself: no test here opens a connection or asks DNS.

Every address spelling the issue lists (hex, octal, integer, short, bracketed and IPv4-mapped IPv6)
and every internal range, the metadata names, credentials, schemes and malformed URLs. Whatever the
policy lets through is only *parsed* here, so a broken guard cannot make this file send a request.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from ryze.common.outbound import FetchPolicy, InvalidURL, PolicyResolver, TargetRefused, parse_url
from ryze.common.outbound.policy import LOOPBACK_ALLOW, AllowList, refusal_reason

STRICT = FetchPolicy(setting="FETCH_ALLOW")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything here tries to resolve or connect."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the policy tests must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/metrics", "loopback"),
        ("http://0x7f000001/", "loopback"),  # hex integer
        ("http://0x7F.0.0.1/", "loopback"),  # hex octet
        ("http://0177.0.0.1/", "loopback"),  # octal octet
        ("http://2130706433/", "loopback"),  # plain integer
        ("http://127.1/", "loopback"),  # short form
        ("http://127.0.1/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[0:0:0:0:0:0:0:1]:8080/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://0xa9fea9fe/", "link-local"),  # 169.254.169.254 as hex
        ("http://10.0.0.1/", "private"),
        ("http://10.255.255.255/", "private"),
        ("http://012.0.0.1/", "private"),  # octal 10.0.0.1
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.254/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fc00::1]/", "private"),  # unique-local
        ("http://[fd00:ec2::254]/", "private"),  # AWS IMDS over IPv6
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
        ("http://[fe80::1]/", "link-local"),
        ("http://[febf::1]/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://100.127.255.254/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://0.1.2.3/", "unspecified"),  # 0.0.0.0/8
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "reserved"),
        ("http://198.18.0.1/", "private"),  # benchmarking range (Python lists it as private)
        ("http://localhost/", "local or cloud-metadata host"),
        ("http://LOCALHOST./", "local or cloud-metadata host"),
        ("http://api.localhost/", "local or cloud-metadata host"),
        ("http://metadata.google.internal/computeMetadata/v1/", "local or cloud-metadata host"),
        ("http://metadata/", "local or cloud-metadata host"),
        ("HTTP://127.0.0.1/", "loopback"),
    ],
)
def test_internal_targets_are_refused_in_every_spelling(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused) as caught:
        STRICT.check_url(url)
    message = str(caught.value)
    assert reason in message
    assert "FETCH_ALLOW" in message  # the refusal names the setting that allows it
    if reason != "local or cloud-metadata host":  # no echo of the address
        assert url.split("//", 1)[1].split("/", 1)[0].strip("[]").lower() not in message.lower()


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "http://93.184.216.34/a.png",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",
        "https://cdn.example.com:8443/x?y=1",
        "http://100.63.255.255/",  # just below 100.64/10
        "http://172.32.0.1/",  # just above 172.16/12
        "http://8.8.8.8/",
    ],
)
def test_public_targets_pass(url: str) -> None:
    assert STRICT.check_url(url).url


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://0x7f000001:9000/a", "http://127.0.0.1:9000/a"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://[::ffff:127.0.0.1]:81/", "http://127.0.0.1:81/"),
        ("HTTP://Example.COM./p?q=1#frag", "http://example.com/p?q=1"),
        ("https://example.com:443", "https://example.com/"),
    ],
)
def test_urls_are_rebuilt_with_the_checked_address(url: str, canonical: str) -> None:
    """The connection goes to the address that was judged, not to a spelling a later parser reads
    differently."""
    policy = FetchPolicy.from_setting(LOOPBACK_ALLOW, setting="FETCH_ALLOW")
    assert policy.check_url(url).url == canonical


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://alice:s3cr3t@example.com/", "credentials"),
        ("http://alice@example.com/", "credentials"),
        ("http://:s3cr3t@example.com/", "credentials"),
        ("http://example.com@127.0.0.1/", "credentials"),
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1:6379/_INFO", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("//example.com/x", "http or https"),
        ("example.com/x", "http or https"),
        ("http:///x", "http or https"),
        ("", "http or https"),
        ("http://[::1", "not a valid URL"),
        ("http://[zz]/", "not a valid URL"),
        ("http://[127.0.0.1]/", "not a valid URL"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://example.com:65536/", "not a valid URL"),
        ("http://example.com:99999999/", "not a valid URL"),
        ("http://example.com:abc/", "not a valid URL"),
        ("http://example.com:0/", "not a valid URL"),
        ("http://exa\r\nmple.com/", "control characters"),
        ("http://example.com/\r\nHost: evil", "control characters"),
        ("http://example.com\\@127.0.0.1/", "backslashes"),
        ("http://ex ample.com/", "host name"),
        ("http://-bad-.example/", "host name"),
        ("http://" + "a" * 2100 + ".com/", "at most"),
    ],
)
def test_malformed_urls_are_invalid_and_never_echoed(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        STRICT.check_url(url)
    assert reason in str(caught.value)
    assert "s3cr3t" not in str(caught.value) and "alice" not in str(caught.value)


def test_query_can_be_refused_for_base_urls() -> None:
    with pytest.raises(InvalidURL, match="query or fragment"):
        parse_url("https://chatwoot.example.com/?x=1", allow_query=False)
    assert parse_url("https://chatwoot.example.com/base/", allow_query=False).url == (
        "https://chatwoot.example.com/base/"
    )


def test_allow_list_opens_exactly_what_it_names() -> None:
    policy = FetchPolicy(
        ["127.0.0.0/8", "::1", "chatwoot.internal", "*.corp.example", "10.1.2.3"], setting="X"
    )
    for url in (
        "http://127.0.0.1:3000/",
        "http://0x7f000001/",  # the allowed range in disguise is still the allowed range
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::1]:3000/",
        "http://chatwoot.internal/",
        "http://a.b.corp.example/",
        "http://10.1.2.3/",
    ):
        policy.check_url(url)
    for url in ("http://10.1.2.4/", "http://192.168.0.1/", "http://localhost/", "http://169.254.169.254/"):
        with pytest.raises(TargetRefused, match="allow it with X"):
            policy.check_url(url)


def test_a_bad_allow_list_entry_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a host name"):
        AllowList.parse(["127.0.0.0/33"])
    with pytest.raises(ValueError, match="not a host name"):
        AllowList.parse(["bad host"])


def test_a_bad_allow_list_stops_the_settings() -> None:
    from pydantic import ValidationError

    from ryze.api.settings import ApiSettings
    from ryze.bridge.settings import BridgeSettings

    with pytest.raises(ValidationError):
        ApiSettings(fetch_allow="10.0.0.0/99")
    with pytest.raises(ValidationError):
        BridgeSettings(fetch_allow="not a host")


def test_resolved_addresses_are_all_judged() -> None:
    """A public name that also resolves to an internal address is refused: connecting would pick
    either."""
    STRICT.check_resolved("cdn.example.com", ["93.184.216.34", "2606:2800:220:1::1"])
    for bad in (["93.184.216.34", "127.0.0.1"], ["10.0.0.5"], ["::ffff:169.254.169.254"], ["fe80::1%eth0"]):
        with pytest.raises(TargetRefused):
            STRICT.check_resolved("cdn.example.com", bad)
    FetchPolicy(["cdn.example.com"], setting="X").check_resolved("cdn.example.com", ["10.0.0.5"])


def test_every_address_in_the_default_refused_ranges() -> None:
    for net in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                "100.64.0.0/10", "0.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"):  # fmt: skip
        network = ipaddress.ip_network(net)
        for ip in {network[0], network[-1], network[network.num_addresses // 2]}:
            assert refusal_reason(ip) is not None, ip
    assert refusal_reason(ipaddress.ip_address("1.1.1.1")) is None


class _Resolver:
    """A stand-in DNS: a fixed answer per name, and a count of the questions."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, Any]]:
        self.asked.append(host)
        return [
            {"hostname": host, "host": a, "port": port, "family": 0, "proto": 0, "flags": 0}
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_refuses_internal_answers_and_metadata_names_without_asking() -> None:
    fake = _Resolver({"cdn.example.com": ["93.184.216.34"], "evil.example.com": ["169.254.169.254"]})
    resolver = PolicyResolver(STRICT, fake)  # type: ignore[arg-type]
    assert [r["host"] for r in await resolver.resolve("cdn.example.com", 80)] == ["93.184.216.34"]
    with pytest.raises(TargetRefused, match="link-local"):
        await resolver.resolve("evil.example.com", 80)
    with pytest.raises(TargetRefused, match="cloud-metadata"):
        await resolver.resolve("metadata.google.internal", 80)
    assert fake.asked == ["cdn.example.com", "evil.example.com"]  # the metadata name was never looked up
