"""Per-token rate limits: headers on every response, the documented 429."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.api.ratelimit import RateLimiter

from .harness import Api, make_settings, start_api


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(tmp_path, rate_limit_per_minute=3, rate_limit_create_per_minute=2)
    async for api in start_api(settings):
        yield api


async def test_headers_on_success_and_error(api: Api, account_token: str) -> None:
    ok = await api.client.get("/api/instance/list", headers={"token": account_token})
    assert ok.headers["X-RateLimit-Limit"] == "100"
    assert ok.headers["X-RateLimit-Remaining"] == "99"
    assert int(ok.headers["X-RateLimit-Reset"]) % 60 == 0
    denied = await api.client.get("/api/instance/list")
    assert denied.status_code == 401
    assert "X-RateLimit-Remaining" in denied.headers
    missing = await api.client.get("/api/instance/connect/ghost", headers={"token": account_token})
    assert missing.status_code == 404
    assert missing.headers["X-RateLimit-Remaining"] == "98"


async def test_429_after_the_limit(limited: Api) -> None:
    token = await limited.account()
    for remaining in ("2", "1", "0"):
        resp = await limited.client.get("/api/instance/list", headers={"token": token})
        assert resp.status_code == 200
        assert resp.headers["X-RateLimit-Remaining"] == remaining
    resp = await limited.client.get("/api/instance/list", headers={"token": token})
    assert resp.status_code == 429
    assert resp.json() == {"success": False, "error": {"message": "Rate limit exceeded. Try again later."}}
    assert resp.headers["X-RateLimit-Limit"] == "3"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    # the bucket is per token: another token is unaffected, however it is sent
    other = await limited.account("other")
    resp = await limited.client.get("/api/instance/list", headers={"Authorization": f"Bearer {other}"})
    assert resp.status_code == 200


async def test_instance_creation_has_its_own_limit(limited: Api) -> None:
    token = await limited.account()
    for name in ("a1", "a2"):
        resp = await limited.client.post("/api/instance/new", json={"name": name}, headers={"token": token})
        assert resp.status_code == 201
        assert resp.headers["X-RateLimit-Limit"] == "2"
    resp = await limited.client.post("/api/instance/new", json={"name": "a3"}, headers={"token": token})
    assert resp.status_code == 429
    assert resp.json()["error"]["message"] == "Rate limit exceeded. Try again later."


async def test_probes_and_simulator_are_not_limited(limited: Api) -> None:
    for _ in range(5):
        resp = await limited.client.get("/healthz")
        assert resp.status_code == 200
        assert "X-RateLimit-Limit" not in resp.headers


def test_window_resets_each_minute() -> None:
    limiter = RateLimiter(per_minute=2, create_per_minute=1)
    t0 = 1_700_000_040.0  # 0 s into a minute
    assert limiter.hit("k", "global", 2, now=t0).remaining == 1
    assert limiter.hit("k", "global", 2, now=t0 + 10).remaining == 0
    denied = limiter.hit("k", "global", 2, now=t0 + 59)
    assert not denied.allowed and denied.reset == 1_700_000_100
    assert limiter.hit("k", "global", 2, now=t0 + 60).allowed


async def test_the_bridge_link_is_not_limited(limited: Api) -> None:
    for _ in range(5):
        resp = await limited.client.get("/ws/chatwoot/orion", headers={"token": "bridge-token-xyz"})
        assert "X-RateLimit-Limit" not in resp.headers


async def test_failed_authentications_are_counted_per_client_address(limited: Api) -> None:
    """Every unknown token used to get a fresh bucket: guessing tokens was never limited."""
    known = await limited.account()
    assert (await limited.client.get("/api/instance/list", headers={"token": known})).status_code == 200
    for attempt in range(3):
        resp = await limited.client.get("/api/instance/list", headers={"token": f"guess-{attempt}"})
        assert resp.status_code == 401
    for attempt in range(3, 6):  # a new token, a new transport: still the same address
        resp = await limited.client.get(
            "/api/instance/list", headers={"Authorization": f"Bearer guess-{attempt}"}
        )
        assert resp.status_code == 429, resp.text
        assert resp.json()["error"]["message"] == "Rate limit exceeded. Try again later."
    # A token that authenticated this window is not locked out by its address's failures.
    assert (await limited.client.get("/api/instance/list", headers={"token": known})).status_code == 200


def test_failed_authentications_lock_out_for_the_rest_of_the_window_only() -> None:
    limiter = RateLimiter(per_minute=2, create_per_minute=1)
    t0 = 1_700_000_040.0
    for _ in range(2):
        limiter.auth_failed("ip:10.0.0.1", now=t0)
    assert limiter.locked_out("ip:10.0.0.1", "t:guess", now=t0 + 30)
    assert not limiter.locked_out("ip:10.0.0.2", "t:guess", now=t0 + 30)  # other addresses are not
    limiter.authenticated("t:known", now=t0 + 30)
    assert not limiter.locked_out("ip:10.0.0.1", "t:known", now=t0 + 31)
    assert not limiter.locked_out("ip:10.0.0.1", "t:guess", now=t0 + 60)  # the next window


@pytest.fixture
async def limited_with_module(tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(
        tmp_path, rate_limit_per_minute=3, bridge_url="http://127.0.0.1:9", bridge_token="b" * 32
    )
    async for api in start_api(settings):
        yield api


async def test_bridge_token_guesses_are_counted_on_the_unlimited_internal_routes(
    limited_with_module: Api,
) -> None:
    """/internal/* and the bridge link are not limited per token, so BRIDGE_TOKEN could be guessed
    there without end; their 401s now count per address like everywhere else."""
    limited = limited_with_module
    for attempt in range(3):
        resp = await limited.client.get(
            "/internal/media/orion/x", headers={"Authorization": f"Bearer guess-{attempt}"}
        )
        assert resp.status_code == 401
    resp = await limited.client.get("/internal/media/orion/x", headers={"Authorization": "Bearer guess-9"})
    assert resp.status_code == 429
    assert resp.json()["error"]["message"] == "Rate limit exceeded. Try again later."
