"""``chatwootBaseUrl`` bad input at ``set``: each of these was a 500 from RyzeAPI (``urlsplit`` or
``.port`` raising) or a bridge crash shown as 502; now a 400 ``invalid body: …`` before the bridge
is called. Whether the address may be reached is the bridge's outbound-fetch policy
(tests/bridge/test_activation_ssrf.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .fake_bridge import FakeBridge
from .harness import Ryze

BASE = {"chatwootAccountId": 5, "chatwootApiToken": "cw-token-1"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "is not a valid URL (check the host and the port)"),
        ("http://[zz]/", "is not a valid URL (check the host and the port)"),
        ("http://chatwoot.example.com:65536", "is not a valid URL (check the host and the port)"),
        ("http://chatwoot.example.com:99999999999", "is not a valid URL (check the host and the port)"),
        ("http://chatwoot.example.com:http", "is not a valid URL (check the host and the port)"),
        ("http://chatwoot.example.com\r\nX-Evil: 1", "must not contain control characters or backslashes"),
        ("http://chatwoot.example.com/a\nb", "must not contain control characters or backslashes"),
        ("http://chatwoot.example.com\\@10.0.0.1", "must not contain control characters or backslashes"),
        ("https://admin:s3cr3t@chatwoot.example.com", "must not carry credentials (user or password)"),
        ("HTTPS://", "must be an http or https URL"),
        ("https://chatwoot.example.com/?a=1", "must not carry a query or fragment"),
        ("https://bad_host!/", "has an invalid host name"),
    ],
)
async def test_malformed_base_urls_are_400(
    ryze_lite: Ryze, fake_bridge: FakeBridge, url: str, reason: str
) -> None:
    await ryze_lite.new_instance("val")
    async with ryze_lite.client() as c:
        r = await c.post("/api/chatwoot/set/val", json={**BASE, "chatwootBaseUrl": url})
    assert r.status_code == 400, r.text
    assert r.json() == {"success": False, "error": {"message": f"invalid body: chatwootBaseUrl {reason}"}}
    assert "s3cr3t" not in r.text
    assert fake_bridge.calls("POST") == []


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("HTTP://Chatwoot.Example.COM/", "http://chatwoot.example.com"),
        ("https://chatwoot.example.com:443/base/", "https://chatwoot.example.com/base"),
        ("http://0x7f000001:3000", "http://127.0.0.1:3000"),
    ],
)
async def test_base_urls_are_normalised_before_the_bridge_sees_them(
    ryze_lite: Ryze, fake_bridge: FakeBridge, url: str, stored: str
) -> None:
    """The bridge judges (and connects to) the canonical form: no spelling is read one way by the
    check and another by the connection."""
    await ryze_lite.new_instance("norm")
    async with ryze_lite.client() as c:
        r = await c.post("/api/chatwoot/set/norm", json={**BASE, "chatwootBaseUrl": url})
    assert r.status_code == 201, r.text
    body: Any = fake_bridge.calls("POST")[0].body
    assert body["chatwoot_base_url"] == stored
