"""WhatsApp → Chatwoot: messages injected through the simulated engine, relayed by the bridge into
the emulator. Throughput, latency from injection to the message existing in the emulator, and the
CPU the services spend per 1,000 relayed messages.

Every message gets a WhatsApp id chosen here, so its emulator copy (``source_id = WAID:<id>``) is
matched exactly and its latency is ``created_at`` (the emulator's clock) minus the moment the
injection request left (ours; same machine, same clock). Injection is closed-loop with a bounded
backlog (injected but not yet in the emulator): the relay runs flat out, yet latencies measure the
relay rather than an ever-growing queue in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.common import client_session, emulator_messages_after, last_message_id, run_pool, wall
from bench.procstats import ActivitySnapshot, CpuSnapshot, watched_pids
from bench.stats import latency_summary, paced_count, pacing_rate, steady_rate
from ryze.devstack import LocalSystem


@dataclass
class InboundConfig:
    instances: int = 50
    contacts: int = 4  # contacts per instance, each its own chat (lane) in the bridge
    messages: int = 4000  # measured messages, after one warm-up message per contact
    batch: int = 5  # messages per POST /_simulator/{instance}/messages
    concurrency: int = 50  # injection requests in flight (the ceiling uses the same)
    backlog: int = 1000  # at most this many injected but not yet in the emulator
    setup_concurrency: int = 8
    setup_seconds: float = 60.0
    inject_seconds: float = 45.0
    drain_seconds: float = 30.0
    poll_interval: float = 0.02
    # Latency is measured apart from throughput: flat out, latency is only the backlog divided by
    # the rate (Little's law). So a second, paced (open-loop) run offers a fraction of the
    # measured rate and reports latency there.
    latency_load: float = 0.5
    latency_seconds: float = 10.0


@dataclass
class BenchInstance:
    name: str
    integration_id: str | None
    inbox_id: int | None
    contacts: list[str]


@dataclass
class Tracker:
    """Pairs every injected WhatsApp id with the emulator message that carries it."""

    prefix: str
    sent: dict[str, float] = field(default_factory=dict)  # WhatsApp id -> injection time
    found: dict[str, tuple[float, int]] = field(default_factory=dict)  # id -> (created_at, conversation)
    duplicates: int = 0
    post_errors: int = 0
    cursor: int = 0
    polls: int = 0
    _progress: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def outstanding(self) -> int:
        return len(self.sent) - len(self.found)

    def absorb(self, rows: list[dict[str, Any]]) -> int:
        marker = "WAID:" + self.prefix
        new = 0
        for row in rows:
            self.cursor = max(self.cursor, int(row["id"]))
            source = row.get("source_id") or ""
            if not source.startswith(marker):
                continue
            wa_id = source[5:]
            if wa_id not in self.sent:
                continue  # its injection failed in transport: not counted either way
            if wa_id in self.found:
                self.duplicates += 1  # the relay must create each message exactly once
                continue
            self.found[wa_id] = (float(row["created_at"]), int(row["conversation_id"] or 0))
            new += 1
        if new:
            # Wake every producer waiting for room in the backlog, then arm a fresh event.
            self._progress.set()
            self._progress = asyncio.Event()
        return new

    async def poll(self, http: aiohttp.ClientSession, system: LocalSystem, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rows = await emulator_messages_after(http, system, self.cursor)
            self.polls += 1
            self.absorb(rows)
            if len(rows) < 10_000:  # a full page means more is waiting: fetch it at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.02)

    async def room(self, limit: int, deadline: float) -> bool:
        """Wait until fewer than ``limit`` messages are in flight; False once ``deadline`` passes."""
        while self.outstanding >= limit:
            if time.monotonic() > deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=0.1)
        return True

    async def drained(self, ids: list[str], deadline: float) -> bool:
        while any(i not in self.found for i in ids):
            if time.monotonic() > deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=0.1)
        return True


def warm_id(prefix: str, instance: int, contact: int) -> str:
    return f"{prefix}W{instance:04d}{contact:03d}"


def chats_of(instances: list[BenchInstance], tracker: Tracker) -> list[tuple[BenchInstance, int]]:
    """(instance, emulator conversation id) of every chat the warm-up created."""
    chats = []
    for i, inst in enumerate(instances):
        for c in range(len(inst.contacts)):
            hit = tracker.found.get(warm_id(tracker.prefix, i, c))
            if hit is not None and hit[1]:
                chats.append((inst, hit[1]))
    return chats


def contact_numbers(index: int, contacts: int) -> list[str]:
    # Brazilian mobile numbers, unique per (instance, contact): 55 11 9xxxxxxxx.
    return [f"5511{900000000 + index * 100 + c}" for c in range(contacts)]


async def create_instances(
    system: LocalSystem, prefix: str, count: int, contacts: int, concurrency: int, seconds: float
) -> list[BenchInstance]:
    """Instances with inline Chatwoot activation, connected; bounded in time."""
    made: list[BenchInstance] = []

    async def make(index: int) -> None:
        name = f"{prefix}-{index:04d}"
        created = await system.create_instance(name)
        chatwoot = created.get("chatwoot") or {}
        made.append(
            BenchInstance(
                name=name,
                integration_id=chatwoot.get("bridge_integration_id"),
                inbox_id=chatwoot.get("chatwoot_inbox_id"),
                contacts=contact_numbers(index, contacts),
            )
        )

    await run_pool(range(count), make, concurrency=concurrency, deadline=time.monotonic() + seconds)
    return made


def _batches(
    instances: list[BenchInstance], total: int, batch: int, prefix: str, start: int
) -> Iterator[tuple[BenchInstance, list[dict[str, Any]]]]:
    """Round-robin over instances, ``batch`` messages per call, rotating through the contacts."""
    seq = start
    turn = 0
    while seq < start + total:
        inst = instances[turn % len(instances)]
        size = min(batch, start + total - seq)
        items = []
        for k in range(size):
            sender = inst.contacts[(turn // len(instances) * batch + k) % len(inst.contacts)]
            items.append({"id": f"{prefix}{seq:08d}", "from": sender, "pushName": "Bench", "text": f"m{seq}"})
            seq += 1
        yield inst, items
        turn += 1


async def _inject_all(
    system: LocalSystem,
    http: aiohttp.ClientSession,
    tracker: Tracker,
    jobs: Iterator[tuple[BenchInstance, list[dict[str, Any]]]],
    config: InboundConfig,
    seconds: float,
) -> list[float]:
    call_latencies: list[float] = []
    deadline = time.monotonic() + seconds
    headers = {"token": system.account_token}

    async def inject(job: tuple[BenchInstance, list[dict[str, Any]]]) -> None:
        if not await tracker.room(config.backlog, deadline):
            return
        started = wall()
        await _post_batch(system, http, tracker, job, started, headers)
        call_latencies.append(wall() - started)

    await run_pool(jobs, inject, concurrency=config.concurrency, deadline=deadline)
    return call_latencies


async def _post_batch(
    system: LocalSystem,
    http: aiohttp.ClientSession,
    tracker: Tracker,
    job: tuple[BenchInstance, list[dict[str, Any]]],
    started: float,
    headers: dict[str, str],
) -> None:
    inst, items = job
    for item in items:  # registered before the POST: the relay may beat the response
        tracker.sent[item["id"]] = started
    url = f"{system.api_url}/_simulator/{inst.name}/messages"
    try:
        async with http.post(url, json={"messages": items}, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"inject into {inst.name} -> {resp.status}: {await resp.text()}")
            await resp.read()
    except aiohttp.ClientError:
        # A transport failure leaves it unknown whether RyzeAPI took the batch: take it out of the
        # books (a copy that still shows up is ignored) and count the error in the result.
        for item in items:
            tracker.sent.pop(item["id"], None)
            tracker.found.pop(item["id"], None)
        tracker.post_errors += 1


async def _paced(
    system: LocalSystem,
    http: aiohttp.ClientSession,
    tracker: Tracker,
    instances: list[BenchInstance],
    config: InboundConfig,
    rate: float,
) -> list[str]:
    """Open loop: batch k leaves at t0 + k * batch / rate whatever the answers do. A message's
    injection time is its *scheduled* time, so a stalled client cannot hide a slow server
    (no coordinated omission)."""
    total = max(config.batch, paced_count(rate, config.latency_seconds, config.messages))
    jobs = list(_batches(instances, total, config.batch, tracker.prefix + "P", 0))
    interval = config.batch / rate
    slots = asyncio.Semaphore(config.concurrency)
    headers = {"token": system.account_token}
    t0, w0 = time.monotonic(), wall()

    async def send(k: int, job: tuple[BenchInstance, list[dict[str, Any]]]) -> None:
        async with slots:
            await _post_batch(system, http, tracker, job, w0 + k * interval, headers)

    tasks = []
    for k, job in enumerate(jobs):
        delay = t0 + k * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(k, job)))
    await asyncio.gather(*tasks)
    return [item["id"] for _, items in jobs for item in items]


async def run_inbound(
    system: LocalSystem, config: InboundConfig, instances: list[BenchInstance] | None = None
) -> tuple[dict[str, Any], list[BenchInstance], Tracker]:
    """Warm up (one message per contact: creates contacts and conversations), then the measured run."""
    prefix = "3EB0" + uuid.uuid4().hex[:8].upper()
    if instances is None:
        instances = await create_instances(
            system,
            "bench-in",
            config.instances,
            config.contacts,
            config.setup_concurrency,
            config.setup_seconds,
        )
    if not instances:
        raise RuntimeError("inbound: no instance could be created")
    pids = watched_pids({name: svc.pid for name, svc in system.stack.services.items()})
    stop = asyncio.Event()
    async with client_session(config.concurrency + 2) as http:
        tracker = Tracker(prefix=prefix, cursor=await last_message_id(http, system))
        poller = asyncio.create_task(tracker.poll(http, system, stop))
        try:
            # Warm-up: the first message of every chat also creates its contact and conversation.
            warm_count = len(instances) * config.contacts
            warm_jobs = (
                (inst, [{"id": warm_id(prefix, i, c), "from": num, "pushName": "Bench", "text": "hello"}])
                for i, inst in enumerate(instances)
                for c, num in enumerate(inst.contacts)
            )
            warm_began = wall()
            await _inject_all(system, http, tracker, warm_jobs, config, config.setup_seconds)
            warm_ids = list(tracker.sent)
            warm_ok = await tracker.drained(warm_ids, time.monotonic() + config.drain_seconds)
            warm_latency = [tracker.found[i][0] - tracker.sent[i] for i in warm_ids if i in tracker.found]
            warm_elapsed = wall() - warm_began

            cpu_before = CpuSnapshot.take(pids)
            io_before = ActivitySnapshot.take(pids)
            began = wall()
            jobs = _batches(instances, config.messages, config.batch, prefix, 0)
            call_latencies = await _inject_all(system, http, tracker, jobs, config, config.inject_seconds)
            warm_set = set(warm_ids)
            measured = [i for i in tracker.sent if i not in warm_set]
            drained = await tracker.drained(measured, time.monotonic() + config.drain_seconds)
            cpu = CpuSnapshot.take(pids).since(cpu_before)
            io_after = ActivitySnapshot.take(pids)
            ended = wall()

            found_at = [tracker.found[i][0] for i in measured if i in tracker.found]
            offered = pacing_rate(found_at, began) * config.latency_load
            paced_ids: list[str] = []
            paced_ok = False
            if offered > 0 and config.latency_seconds > 0:
                paced_ids = [
                    i
                    for i in await _paced(system, http, tracker, instances, config, offered)
                    if i in tracker.sent
                ]
                paced_ok = await tracker.drained(paced_ids, time.monotonic() + config.drain_seconds)
        finally:
            stop.set()
            await poller
    found = [i for i in measured if i in tracker.found]
    created = [tracker.found[i][0] for i in found]
    latencies = [tracker.found[i][0] - tracker.sent[i] for i in found]
    span = (max(created) - began) if created else 0.0
    paced_found = [i for i in paced_ids if i in tracker.found]
    paced_created = [tracker.found[i][0] for i in paced_found]
    paced = {
        "load": config.latency_load,
        "offered_rate": round(offered, 1),
        "achieved_rate": _round(steady_rate(paced_created)),
        "messages": len(paced_ids),
        "found": len(paced_found),
        "complete": paced_ok and len(paced_found) == len(paced_ids),
        "latency": latency_summary([tracker.found[i][0] - tracker.sent[i] for i in paced_found]),
    }
    per_1000 = {name: round(1000 * secs / len(found), 3) for name, secs in cpu.items()} if found else {}
    result: dict[str, Any] = {
        "instances": len(instances),
        "chats": len(instances) * config.contacts,
        "batch": config.batch,
        "concurrency": config.concurrency,
        "backlog": config.backlog,
        "warmup": {
            "messages": warm_count,
            "found": len(warm_latency),
            "complete": warm_ok,
            "seconds": round(warm_elapsed, 3),
            "latency": latency_summary(warm_latency),
        },
        "messages": len(measured),
        "found": len(found),
        "lost": len(measured) - len(found),
        "duplicates": tracker.duplicates,
        "post_errors": tracker.post_errors,
        "complete": drained and len(found) == len(measured) and tracker.post_errors == 0,
        "seconds": round(span, 3),
        "rate": round(len(found) / span, 1) if span > 0 else None,
        "steady_rate": _round(steady_rate(created)),
        "latency_saturated": latency_summary(latencies),
        "latency": paced["latency"],
        "paced": paced,
        "inject_call": latency_summary(call_latencies),
        "cpu_seconds": cpu,
        "per_message_activity": io_after.per_message(io_before, len(found)),
        "cpu_seconds_per_1000": per_1000,
        "wall_seconds": round(ended - began, 3),
        "polls": tracker.polls,
    }
    return result, instances, tracker


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
