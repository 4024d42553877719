"""Plumbing shared by the phases: bounded worker pools, the load generator's HTTP client, the
emulator calls the harness makes, and the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import aiohttp

from ryze.devstack import EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_TOKEN, LocalSystem

T = TypeVar("T")

# Wall-clock time, not monotonic: latencies compare our send time with creation times recorded by
# another process (the emulator's ``created_at``), and all processes share this machine's clock.
wall = time.time


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """The load generator's client: aiohttp with one pooled connection per concurrent request.

    The relay's injection and its ceiling use this same client at the same concurrency, so the
    ratio compares the servers, not two clients (httpx would be the bottleneck: see
    python-stack-ceilings.md).
    """
    # keepalive_timeout below uvicorn's 5 s keep-alive: otherwise a pooled connection the server
    # has just closed gets reused and the request fails with ServerDisconnectedError.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, keepalive_timeout=3.0),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def run_pool(
    items: Iterable[T], worker: Callable[[T], Awaitable[None]], *, concurrency: int, deadline: float
) -> int:
    """Run ``worker`` over ``items`` with at most ``concurrency`` in flight; stop taking new items
    at ``deadline`` (monotonic). Returns how many items were processed. The first failure propagates."""
    source: Iterator[T] = iter(items)
    done = 0

    async def lane() -> None:
        nonlocal done
        for item in source:  # the shared iterator hands each item to exactly one lane
            if time.monotonic() > deadline:
                return
            await worker(item)
            done += 1

    try:
        # A TaskGroup cancels the other lanes when one fails: no stray load after an error.
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, concurrency)):
                group.create_task(lane())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return done


class BudgetExceeded(RuntimeError):
    """A phase ran out of its share of the time budget."""


# -- the emulator, as the harness sees it ----------------------------------------------------------


def admin_headers() -> dict[str, str]:
    return {"api_access_token": EMULATOR_ADMIN_TOKEN}


def account_api(system: LocalSystem, path: str) -> str:
    return f"{system.emulator_url}/api/v1/accounts/{EMULATOR_ACCOUNT_ID}{path}"


async def lift_flood_guard(system: LocalSystem) -> None:
    """Chatwoot refuses more than 200 messages per conversation per minute; the emulator mimics
    it. The benchmark measures the relay, not that guard, so it is lifted for the run."""
    await system.call(
        "POST",
        f"{system.emulator_url}/_emulator/settings",
        json={"message_per_minute_limit": 10**9},
        expect=200,
    )


async def emulator_messages_after(
    http: aiohttp.ClientSession, system: LocalSystem, after_id: int, limit: int = 10_000
) -> list[dict[str, Any]]:
    """New messages of the account (``id > after_id``) with float ``created_at`` (bench endpoint)."""
    url = f"{system.emulator_url}/_emulator/accounts/{EMULATOR_ACCOUNT_ID}/messages"
    async with http.get(url, params={"after_id": str(after_id), "limit": str(limit)}) as resp:
        if resp.status == 404:
            raise RuntimeError(
                "the emulator has no GET /_emulator/accounts/{id}/messages endpoint (needed for latencies)"
            )
        resp.raise_for_status()
        body: list[dict[str, Any]] = await resp.json(content_type=None)
        return body


async def last_message_id(http: aiohttp.ClientSession, system: LocalSystem) -> int:
    """The current highest message id, so a phase only looks at what it created."""
    last = 0
    while True:
        batch = await emulator_messages_after(http, system, last, 50_000)
        if not batch:
            return last
        last = int(batch[-1]["id"])


async def clear_webhook_log(system: LocalSystem) -> None:
    await system.call("DELETE", f"{system.emulator_url}/_emulator/webhooks", expect=200)


async def webhook_log(system: LocalSystem) -> list[dict[str, Any]]:
    _, body = await system.call("GET", f"{system.emulator_url}/_emulator/webhooks", expect=200)
    return list(body)
