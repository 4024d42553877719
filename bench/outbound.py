"""Chatwoot → WhatsApp: agent messages created in the emulator → webhook → bridge → RyzeAPI →
the simulated phone's outbox. Throughput, latency, and how fast the bridge acknowledges
Chatwoot's webhooks (target: p99 < 100 ms under load).

The outbox only has one-second timestamps (WhatsApp's), so arrival is observed by polling
``GET /_simulator/{instance}/outbox?after=<seq>`` for the instances that still await messages; the
latencies are upper bounds with the reported polling resolution. Webhook acknowledgement times come
from the emulator, which times each webhook POST it makes (``duration_ms`` in /_emulator/webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import client_session, run_pool, wall, webhook_log
from bench.inbound import BenchInstance
from bench.procstats import ActivitySnapshot, CpuSnapshot, cpu_seconds, watched_pids
from bench.stats import latency_summary, paced_count, pacing_rate, percentile, steady_rate
from ryze.devstack import EMULATOR_ACCOUNT_ID, LocalSystem


@dataclass
class OutboundConfig:
    messages: int = 1000
    concurrency: int = 50  # agent POSTs in flight
    backlog: int = 500  # created in the emulator but not yet in an outbox
    latency_load: float = 0.5
    latency_seconds: float = 10.0
    send_seconds: float = 40.0
    drain_seconds: float = 30.0
    poll_concurrency: int = 8
    poll_interval: float = 0.05


class OutboxWatcher:
    """Polls the outboxes of the instances that still await messages; notes when each arrives."""

    def __init__(self, system: LocalSystem, http: aiohttp.ClientSession, tag: str, concurrency: int) -> None:
        self.system = system
        self.http = http
        self.marker = f"out {tag} "
        self.concurrency = concurrency
        self.sent: dict[str, float] = {}  # content -> time the agent POST left
        self.pending: dict[str, int] = defaultdict(int)  # instance -> messages not yet seen
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self.post_errors = 0
        self.cursor: dict[str, int] = defaultdict(int)
        self.rounds: list[float] = []
        self.requests = 0
        self.requests_flat = 0  # polls made during the flat-out run (its CPU window)
        self.progress = asyncio.Event()

    async def _poll(self, name: str) -> None:
        url = f"{self.system.api_url}/_simulator/{name}/outbox"
        params = {"after": str(self.cursor[name]), "limit": "10000"}
        async with self.http.get(url, params=params, headers={"token": self.system.account_token}) as resp:
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        seen = wall()
        self.requests += 1
        self.cursor[name] = int(body.get("last") or self.cursor[name])
        for item in body.get("items", []):
            text = item.get("text") or ""
            if not text.startswith(self.marker) or text not in self.sent:
                continue
            if text in self.arrived:
                self.duplicates += 1
                continue
            self.arrived[text] = seen
            self.pending[name] -= 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            began = time.monotonic()
            names = [n for n, count in self.pending.items() if count > 0]
            if names:
                await run_pool(names, self._poll, concurrency=self.concurrency, deadline=began + 10)
                self.rounds.append(time.monotonic() - began)
                self.progress.set()
                self.progress = asyncio.Event()
            rest = self.interval - (time.monotonic() - began)
            if rest > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=rest)

    interval = 0.05

    @property
    def outstanding(self) -> int:
        return len(self.sent) - len(self.arrived)

    async def wait(self, until_below: int, deadline: float) -> bool:
        while self.outstanding > until_below:
            if time.monotonic() > deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), timeout=0.2)
        return True


async def run_outbound(
    system: LocalSystem, chats: list[tuple[BenchInstance, int]], config: OutboundConfig
) -> dict[str, Any]:
    """Flat out first (throughput, CPU, webhook acks under load), then paced at ``latency_load`` of
    that rate for the latency figures (see ``InboundConfig.latency_load`` for why)."""
    if not chats:
        raise RuntimeError("outbound: no conversation to answer in (the inbound warm-up created none)")
    tag = uuid.uuid4().hex[:8]
    pids = watched_pids({name: svc.pid for name, svc in system.stack.services.items()})
    base = f"{system.emulator_url}/_emulator/accounts/{EMULATOR_ACCOUNT_ID}/conversations"
    call_latencies: list[float] = []
    message_ids: set[int] = set()
    async with client_session(config.concurrency + config.poll_concurrency) as http:
        watcher = OutboxWatcher(system, http, tag, config.poll_concurrency)
        watcher.interval = config.poll_interval
        stop = asyncio.Event()
        poller = asyncio.create_task(watcher.run(stop))
        deadline = time.monotonic() + config.send_seconds

        async def post(seq: int, started: float) -> str:
            inst, conversation_id = chats[seq % len(chats)]
            content = f"{watcher.marker}{seq:07d}"
            watcher.sent[content] = started
            watcher.pending[inst.name] += 1
            try:
                async with http.post(f"{base}/{conversation_id}/messages", json={"content": content}) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"agent reply -> {resp.status}: {await resp.text()}")
                    body = await resp.json(content_type=None)
            except aiohttp.ClientError:
                # Unknown whether the emulator created it: out of the books (see inbound).
                watcher.sent.pop(content, None)
                watcher.arrived.pop(content, None)
                watcher.pending[inst.name] -= 1
                watcher.post_errors += 1
                return content
            message_ids.add(int(body["id"]))
            call_latencies.append(wall() - started)
            return content

        async def flat_out(seq: int) -> None:
            if await watcher.wait(config.backlog - 1, deadline):
                await post(seq, wall())

        cpu_before = CpuSnapshot.take(pids)
        io_before = ActivitySnapshot.take(pids)
        began = wall()
        paced: list[str] = []
        paced_ok = False
        try:
            await run_pool(
                range(config.messages), flat_out, concurrency=config.concurrency, deadline=deadline
            )
            drained = await watcher.wait(0, time.monotonic() + config.drain_seconds)
            cpu = CpuSnapshot.take(pids).since(cpu_before)
            io_after = ActivitySnapshot.take(pids)
            watcher.requests_flat = watcher.requests
            saturated = list(watcher.sent)
            arrivals = [watcher.arrived[c] for c in saturated if c in watcher.arrived]
            # Arrivals are seen by polling: a small run can land in one poll round.
            offered = pacing_rate(arrivals, began) * config.latency_load
            if offered > 0 and config.latency_seconds > 0:
                # Only what the emulator certainly took: a transport failure is out of the books.
                paced = [c for c in await _paced(post, offered, config) if c in watcher.sent]
                paced_ok = await watcher.wait(0, time.monotonic() + config.drain_seconds)
        finally:
            stop.set()
            await poller
        poll_cost = await _poll_cost(system, http, chats[0][0].name, pids["api"], config.poll_concurrency)
    arrived = [watcher.arrived[c] for c in saturated if c in watcher.arrived]
    # The harness's own outbox polls run on RyzeAPI too: their cost, measured apart, is taken out.
    api_net = max(0.0, cpu.get("api", 0.0) - poll_cost * watcher.requests_flat)
    span = (max(arrived) - began) if arrived else 0.0
    rounds = sorted(watcher.rounds)
    deliveries = await webhook_log(system)
    ours = [
        d for d in deliveries if d.get("event") == "message_created" and d.get("message_id") in message_ids
    ]

    def latencies(contents: list[str]) -> list[float]:
        return [watcher.arrived[c] - watcher.sent[c] for c in contents if c in watcher.arrived]

    paced_latency = latency_summary(latencies(paced))
    return {
        "chats": len(chats),
        "concurrency": config.concurrency,
        "messages": len(saturated),
        "delivered": len(arrived),
        "lost": len(saturated) - len(arrived),
        "duplicates": watcher.duplicates,
        "post_errors": watcher.post_errors,
        "complete": drained and len(arrived) == len(saturated) and watcher.post_errors == 0,
        "seconds": round(span, 3),
        "rate": round(len(arrived) / span, 1) if span > 0 else None,
        "steady_rate": None if (r := steady_rate(arrived)) is None else round(r, 1),
        "latency_saturated": latency_summary(latencies(saturated)),
        "latency": paced_latency,
        "paced": {
            "load": config.latency_load,
            "offered_rate": round(offered, 1),
            "messages": len(paced),
            "delivered": paced_latency["count"],
            "complete": paced_ok and paced_latency["count"] == len(paced),
        },
        "latency_resolution_ms": round(1000 * percentile(rounds, 50), 1) if rounds else None,
        "outbox_polls": watcher.requests,
        "agent_call": latency_summary(call_latencies),
        "webhook_ack": webhook_ack_summary(ours),
        "cpu_seconds": cpu,
        "per_message_activity": io_after.per_message(io_before, len(arrived)),
        "cpu_seconds_per_1000": (
            {name: round(1000 * secs / len(arrived), 3) for name, secs in cpu.items()} if arrived else {}
        ),
        "api_cpu_ms_per_outbox_poll": round(1000 * poll_cost, 3),
        "api_cpu_seconds_per_1000_net_of_polls": round(1000 * api_net / len(arrived), 3) if arrived else None,
    }


async def _poll_cost(
    system: LocalSystem, http: aiohttp.ClientSession, instance: str, api_pid: int, concurrency: int
) -> float:
    """RyzeAPI CPU seconds per empty outbox poll (the same request the watcher makes)."""
    count = 300
    url = f"{system.api_url}/_simulator/{instance}/outbox"
    params = {"after": str(10**9), "limit": "10000"}
    headers = {"token": system.account_token}

    async def poll(_: int) -> None:
        async with http.get(url, params=params, headers=headers) as resp:
            await resp.read()

    before = cpu_seconds(api_pid)
    await run_pool(range(count), poll, concurrency=concurrency, deadline=time.monotonic() + 20)
    return max(0.0, cpu_seconds(api_pid) - before) / count


async def _paced(
    post: Callable[[int, float], Awaitable[str]], rate: float, config: OutboundConfig
) -> list[str]:
    """Open loop at ``rate``: message k is due at t0 + k / rate, and that due time is its send time
    (no coordinated omission when the server, or the client, falls behind)."""
    total = paced_count(rate, config.latency_seconds, config.messages)
    slots = asyncio.Semaphore(config.concurrency)
    t0, w0 = time.monotonic(), wall()
    first = 1_000_000  # sequence numbers apart from the flat-out run's

    async def send(k: int) -> str:
        async with slots:
            return await post(first + k, w0 + k / rate)

    tasks = []
    for k in range(total):
        delay = t0 + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(k)))
    return list(await asyncio.gather(*tasks))


def webhook_ack_summary(deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """How long the receiver took to answer the emulator's webhook POSTs, and how many failed."""
    durations = [float(d["duration_ms"]) / 1000 for d in deliveries if d.get("duration_ms") is not None]
    failed = sum(1 for d in deliveries if d.get("error"))
    summary = latency_summary(durations)
    summary["deliveries"] = len(deliveries)
    summary["failed"] = failed
    summary["timed"] = bool(durations)
    return summary
