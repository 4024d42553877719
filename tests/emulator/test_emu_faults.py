"""Fault injection (Python API, /_emulator/faults, and over a real socket)."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from ryze.emulator import ChatwootEmulator, run_emulator
from ryze.emulator.faults import ConnectionResetByFault

from .conftest import A1, ADMIN, Api


async def test_status_fault_with_count_and_path_pattern(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    rule = emu.faults.add(method="POST", path=r"/conversations/\d+/messages$", status=500, count=2)
    url = f"{A1}/conversations/{conv}/messages"
    statuses = [(await client.post(url, json={"content": "x"}, headers=ADMIN)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert rule.fired == 2
    # Other methods and paths are untouched.
    assert (await client.get(url, headers=ADMIN)).status_code == 200
    assert emu.recorder.requests[-2].fault is None
    assert [r.fault for r in emu.recorder.find("POST", "/messages")][:2] == ["status 500", "status 500"]


async def test_429_with_retry_after_and_rate_zero(emu: ChatwootEmulator, client: httpx.AsyncClient) -> None:
    never = emu.faults.add(path="/inboxes", status=503, rate=0.0)
    r = await client.get(f"{A1}/inboxes", headers=ADMIN)
    assert r.status_code == 200 and never.fired == 0
    emu.faults.clear()
    emu.faults.add(path="/inboxes", status=429, retry_after=7)
    r = await client.get(f"{A1}/inboxes", headers=ADMIN)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.text == "Retry later\n"


async def test_429_by_default_is_rack_attack_s_answer_without_retry_after(
    emu: ChatwootEmulator, client: httpx.AsyncClient
) -> None:
    """Chatwoot's config/initializers/rack_attack.rb sets no throttled_responder, so Rack::Attack's
    default answers: 429, text/plain "Retry later", and no Retry-After header."""
    emu.faults.add(path="/inboxes", status=429)
    r = await client.get(f"{A1}/inboxes", headers=ADMIN)
    assert r.status_code == 429
    assert "retry-after" not in r.headers
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "Retry later\n"


async def test_latency_only_rule_passes_the_request_through(
    emu: ChatwootEmulator, client: httpx.AsyncClient
) -> None:
    rule = emu.faults.add(path="/inboxes", latency=0.01, latency_max=0.02)
    r = await client.get(f"{A1}/inboxes", headers=ADMIN)
    assert r.status_code == 200 and rule.fired == 1


async def test_reset_without_socket_raises(emu: ChatwootEmulator, client: httpx.AsyncClient) -> None:
    emu.faults.add(path="/inboxes", reset=True, count=1)
    with pytest.raises(ConnectionResetByFault):
        await client.get(f"{A1}/inboxes", headers=ADMIN)
    assert (await client.get(f"{A1}/inboxes", headers=ADMIN)).status_code == 200


async def test_faults_api(emu: ChatwootEmulator, client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/_emulator/faults", json={"method": "GET", "path": "/inboxes", "status": 502, "count": 1}
    )
    assert r.status_code == 200
    rule_id = r.json()["id"]
    assert r.json()["remaining"] == 1
    assert [f["id"] for f in (await client.get("/_emulator/faults")).json()] == [rule_id]
    assert (await client.get(f"{A1}/inboxes", headers=ADMIN)).status_code == 502
    assert (await client.get(f"{A1}/inboxes", headers=ADMIN)).status_code == 200
    assert (await client.delete(f"/_emulator/faults/{rule_id}")).status_code == 200
    assert (await client.get("/_emulator/faults")).json() == []
    r = await client.post("/_emulator/faults", json={"bogus": 1})
    assert r.status_code == 422


async def test_reset_and_hang_over_a_real_socket() -> None:
    async with run_emulator() as running:
        emu = running.emulator
        # POST: aiohttp silently retries an idempotent GET once after a disconnect.
        emu.faults.add(method="POST", path="/contacts$", reset=True, count=1)
        emu.faults.add(method="GET", path="/contacts", hang=True, count=1)
        async with aiohttp.ClientSession(headers=ADMIN) as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.post(f"{running.url}{A1}/contacts", json={"name": "a"}) as resp:
                    await resp.read()
            async with http.post(f"{running.url}{A1}/contacts", json={"name": "a"}) as resp:
                assert resp.status == 200
            with pytest.raises(TimeoutError):
                async with http.get(
                    f"{running.url}{A1}/contacts", timeout=aiohttp.ClientTimeout(total=0.3)
                ) as resp:
                    await resp.read()
        assert [(r.status, r.fault) for r in emu.recorder.find("POST", "/contacts")] == [
            (None, "reset"),
            (200, None),
        ]
