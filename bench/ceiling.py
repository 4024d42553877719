"""The ceiling: the same message creations the bridge makes, posted straight to the emulator's
``POST /api/v1/accounts/1/conversations/{id}/messages`` with the same client and concurrency.

It is measured in the same run as the relay (same machine state, same emulator process), so the
ratio relay/ceiling stays meaningful on a noisy machine. The ceiling inbox has no webhook: the
emulator does strictly less work here than during the relay, which keeps the ratio conservative.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import account_api, admin_headers, client_session, run_pool, wall
from bench.procstats import ActivitySnapshot, CpuSnapshot, watched_pids
from bench.stats import latency_summary, steady_rate
from ryze.devstack import LocalSystem


@dataclass
class CeilingConfig:
    conversations: int = 200  # as many chats as the relay run (instances x contacts)
    messages: int = 4000
    concurrency: int = 50
    seconds: float = 20.0  # hard cap on each round's posting loop
    repeats: int = 3


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body, headers=admin_headers()) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"POST {url} -> {resp.status}: {await resp.text()}")
        data: dict[str, Any] = await resp.json(content_type=None)
        return data


async def create_conversations(
    http: aiohttp.ClientSession, system: LocalSystem, count: int, concurrency: int
) -> list[int]:
    """An API inbox (no webhook) with ``count`` contacts, one open conversation each."""
    tag = uuid.uuid4().hex[:6]
    inbox = await _post(
        http, account_api(system, "/inboxes"), {"name": f"bench-ceiling-{tag}", "channel": {"type": "api"}}
    )
    inbox_id = int(inbox["id"])
    conversations: list[int] = []

    async def make(index: int) -> None:
        phone = f"+5521{900000000 + index}"
        contact = await _post(
            http,
            account_api(system, "/contacts"),
            {"inbox_id": inbox_id, "name": f"Ceiling {index}", "phone_number": phone, "identifier": phone},
        )
        payload = contact["payload"]
        conv = await _post(
            http,
            account_api(system, "/conversations"),
            {
                "inbox_id": inbox_id,
                "contact_id": payload["contact"]["id"],
                "source_id": payload["contact_inbox"]["source_id"],
            },
        )
        conversations.append(int(conv["id"]))

    await run_pool(range(count), make, concurrency=concurrency, deadline=time.monotonic() + 60)
    return conversations


async def run_ceiling(system: LocalSystem, config: CeilingConfig) -> dict[str, Any]:
    """``repeats`` rounds of the same creations; the round with the median steady rate is reported
    (the machine is shared: one round can land on a burst of someone else's work)."""
    async with client_session(config.concurrency) as http:
        conversations = await create_conversations(http, system, config.conversations, config.concurrency)
        if not conversations:
            raise RuntimeError("ceiling: no conversation could be created in the emulator")
        rounds = [await _round_of(system, http, conversations, config) for _ in range(max(1, config.repeats))]
    ordered = sorted(rounds, key=lambda r: r["steady_rate"] or 0.0)
    median = dict(ordered[len(ordered) // 2])
    median["conversations"] = len(conversations)
    median["rounds_steady_rate"] = [r["steady_rate"] for r in rounds]
    return median


async def _round_of(
    system: LocalSystem, http: aiohttp.ClientSession, conversations: list[int], config: CeilingConfig
) -> dict[str, Any]:
    completions: list[float] = []
    latencies: list[float] = []
    chats = itertools.cycle(conversations)
    tag = uuid.uuid4().hex[:8]

    async def create(index: int) -> None:
        # The body the bridge sends for an incoming text (ryze.chatwoot.client.create_message).
        body = {
            "content": f"ceiling message {index}",
            "message_type": "incoming",
            "private": False,
            "source_id": f"WAID:CEIL{tag}{index:07d}",
        }
        started = wall()
        await _post(http, account_api(system, f"/conversations/{next(chats)}/messages"), body)
        done = wall()
        latencies.append(done - started)
        completions.append(done)

    pids = watched_pids({name: svc.pid for name, svc in system.stack.services.items()})
    cpu_before = CpuSnapshot.take(pids)
    io_before = ActivitySnapshot.take(pids)
    began = wall()
    deadline = time.monotonic() + config.seconds
    sent = await run_pool(range(config.messages), create, concurrency=config.concurrency, deadline=deadline)
    elapsed = wall() - began
    cpu = CpuSnapshot.take(pids).since(cpu_before)
    io_after = ActivitySnapshot.take(pids)
    return {
        "messages": sent,
        "concurrency": config.concurrency,
        "seconds": round(elapsed, 3),
        "rate": round(sent / elapsed, 1) if elapsed > 0 else None,
        "steady_rate": _round(steady_rate(completions)),
        "latency": latency_summary(latencies),
        "cpu_seconds": cpu,
        "per_message_activity": io_after.per_message(io_before, sent),
        "cpu_seconds_per_1000": {n: round(1000 * c / sent, 3) for n, c in cpu.items()} if sent else {},
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
