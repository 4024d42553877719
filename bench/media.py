"""WhatsApp → Chatwoot media: images (200 of 100 KiB by default) injected through the simulated
engine, fetched by the bridge from RyzeAPI's media route and uploaded into the emulator as
attachments. Throughput (images/s and MiB/s), latency from injection to the message existing in
the emulator, CPU per image per service and resident-memory growth per image.

Every image has its own bytes, and the emulator reports each attachment's SHA-256 (its bench
endpoint), so a message counts only when the bytes that arrived equal the bytes sent. While the
bridge still relays media as a text placeholder (``[image]``), the run says so
(``relayed_as``) and reports no media figure: a placeholder's speed is not a media figure.
Bounded in count (``images``) and in time (``inject_seconds``, ``drain_seconds``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.common import client_session, emulator_messages_after, last_message_id, run_pool, wall
from bench.inbound import BenchInstance, create_instances
from bench.procstats import CpuSnapshot, rss_kib, watched_pids
from bench.stats import latency_summary, steady_rate
from ryze.devstack import LocalSystem

JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # enough for a content sniffer to say image/jpeg
SERVICES = ("api", "bridge", "emulator")


@dataclass
class MediaConfig:
    images: int = 200
    image_kib: int = 100
    concurrency: int = 8  # injections in flight (each one image)
    instances: int = 2  # only when no instances are handed over by the inbound phase
    contacts: int = 2
    setup_seconds: float = 30.0
    inject_seconds: float = 30.0
    drain_seconds: float = 60.0
    sample_interval: float = 0.1  # RSS sampling while the images relay


@dataclass
class MediaTracker:
    prefix: str
    expected: dict[str, str] = field(default_factory=dict)  # WhatsApp id -> SHA-256 of the image
    sent: dict[str, float] = field(default_factory=dict)  # WhatsApp id -> injection time
    found: dict[str, float] = field(default_factory=dict)  # WhatsApp id -> emulator created_at
    matched: set[str] = field(default_factory=set)  # arrived with an attachment of the same bytes
    placeholders: set[str] = field(default_factory=set)  # arrived as text, without an attachment
    mismatched: set[str] = field(default_factory=set)  # arrived with other bytes
    duplicates: int = 0
    post_errors: int = 0
    cursor: int = 0

    def absorb(self, rows: list[dict[str, Any]]) -> None:
        marker = "WAID:" + self.prefix
        for row in rows:
            self.cursor = max(self.cursor, int(row["id"]))
            source = row.get("source_id") or ""
            if not source.startswith(marker):
                continue
            wa_id = source[5:]
            if wa_id not in self.sent:
                continue
            if wa_id in self.found:
                self.duplicates += 1
                continue
            self.found[wa_id] = float(row["created_at"])
            digests = [a.get("sha256") for a in row.get("attachments") or []]
            if not digests:
                self.placeholders.add(wa_id)
            elif self.expected[wa_id] in digests:
                self.matched.add(wa_id)
            else:
                self.mismatched.add(wa_id)

    def done(self) -> bool:
        return all(i in self.found for i in self.sent)


def make_images(prefix: str, count: int, kib: int, seed: int = 13) -> dict[str, bytes]:
    """Distinct images (a JPEG header, then pseudo-random bytes: incompressible, as photos are)."""
    rng = random.Random(seed)
    size = max(len(JPEG_HEADER), kib * 1024)
    return {f"{prefix}{n:06d}": JPEG_HEADER + rng.randbytes(size - len(JPEG_HEADER)) for n in range(count)}


async def _post(
    http: aiohttp.ClientSession, system: LocalSystem, instance: str, items: list[dict[str, Any]]
) -> None:
    url = f"{system.api_url}/_simulator/{instance}/messages"
    async with http.post(url, json={"messages": items}, headers={"token": system.account_token}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"inject into {instance} -> {resp.status}: {await resp.text()}")
        await resp.read()


async def _warm_up(
    http: aiohttp.ClientSession, system: LocalSystem, instances: list[BenchInstance], config: MediaConfig
) -> None:
    """One text per contact, so contacts and conversations exist before the measured images."""
    prefix = "3EB0" + uuid.uuid4().hex[:8].upper() + "W"
    tracker = MediaTracker(prefix=prefix, cursor=await last_message_id(http, system))
    for i, inst in enumerate(instances):
        items = []
        for c, number in enumerate(inst.contacts):
            wa_id = f"{prefix}{i:04d}{c:03d}"
            tracker.sent[wa_id], tracker.expected[wa_id] = wall(), ""
            items.append({"id": wa_id, "from": number, "pushName": "Bench", "text": "hello"})
        await _post(http, system, inst.name, items)
    deadline = time.monotonic() + config.setup_seconds
    while not tracker.done() and time.monotonic() < deadline:
        tracker.absorb(await emulator_messages_after(http, system, tracker.cursor))
        await asyncio.sleep(0.05)


async def run_media(
    system: LocalSystem, config: MediaConfig, instances: list[BenchInstance] | None = None
) -> dict[str, Any]:
    pids = watched_pids({name: svc.pid for name, svc in system.stack.services.items()})
    prefix = "3EB0" + uuid.uuid4().hex[:8].upper() + "M"
    images = make_images(prefix, config.images, config.image_kib)
    # Encoded before the clock starts: the load generator's base64 is not the relay's cost.
    bodies = {wa_id: base64.b64encode(data).decode() for wa_id, data in images.items()}
    async with client_session(config.concurrency + 2) as http:
        if instances is None:
            instances = await create_instances(
                system, "bench-media", config.instances, config.contacts, 4, config.setup_seconds
            )
            if not instances:
                raise RuntimeError("media: no instance could be created")
            await _warm_up(http, system, instances, config)
        tracker = MediaTracker(prefix=prefix, cursor=await last_message_id(http, system))
        tracker.expected = {wa_id: hashlib.sha256(data).hexdigest() for wa_id, data in images.items()}
        chats = [(inst.name, number) for inst in instances for number in inst.contacts]
        jobs = [(wa_id, chats[n % len(chats)]) for n, wa_id in enumerate(images)]

        rss_before = {name: rss_kib(pid) for name, pid in pids.items()}
        rss_peak = dict(rss_before)
        stop = asyncio.Event()
        all_in = asyncio.Event()  # set by the watcher whenever everything sent so far has arrived

        async def watch() -> None:
            """Poll the emulator for arrivals and sample every service's RSS meanwhile."""
            while not stop.is_set():
                tracker.absorb(await emulator_messages_after(http, system, tracker.cursor))
                if tracker.done():
                    all_in.set()
                for name, pid in pids.items():
                    rss_peak[name] = max(rss_peak[name], rss_kib(pid))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=config.sample_interval)

        async def inject(job: tuple[str, tuple[str, str]]) -> None:
            wa_id, (instance, number) = job
            item = {"id": wa_id, "from": number, "pushName": "Bench", "type": "image",
                    "mimetype": "image/jpeg", "mediaBase64": bodies[wa_id]}  # fmt: skip
            tracker.sent[wa_id] = wall()  # before the POST: the relay may beat the response
            try:
                await _post(http, system, instance, [item])
            except aiohttp.ClientError:
                tracker.sent.pop(wa_id, None)
                tracker.post_errors += 1

        cpu_before = CpuSnapshot.take(pids)
        began = wall()
        watcher = asyncio.create_task(watch())
        try:
            await run_pool(
                jobs,
                inject,
                concurrency=config.concurrency,
                deadline=time.monotonic() + config.inject_seconds,
            )
            all_in.clear()  # the watcher sets it again once the last injected image has arrived
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), timeout=config.drain_seconds)
        finally:
            stop.set()
            await watcher
        cpu = CpuSnapshot.take(pids).since(cpu_before)
        rss_after = {name: rss_kib(pid) for name, pid in pids.items()}
    return summarize(tracker, config, began, cpu, rss_before, rss_peak, rss_after)


def summarize(
    tracker: MediaTracker,
    config: MediaConfig,
    began: float,
    cpu: dict[str, float],
    rss_before: dict[str, int],
    rss_peak: dict[str, int],
    rss_after: dict[str, int],
) -> dict[str, Any]:
    sent = len(tracker.sent)
    matched = sorted(tracker.matched, key=lambda i: tracker.found[i])
    if tracker.placeholders and not tracker.matched:
        relayed_as = "text placeholders: the bridge does not relay media as attachments yet"
    elif tracker.placeholders or tracker.mismatched:
        relayed_as = "mixed: some images arrived without their bytes"
    elif matched:
        relayed_as = "attachments"
    else:
        relayed_as = "nothing arrived"
    result: dict[str, Any] = {
        "images": config.images,
        "image_kib": config.image_kib,
        "concurrency": config.concurrency,
        "sent": sent,
        "found": len(tracker.found),
        "bytes_match": len(matched),
        "placeholders": len(tracker.placeholders),
        "mismatched": len(tracker.mismatched),
        "lost": sent - len(tracker.found),
        "duplicates": tracker.duplicates,
        "post_errors": tracker.post_errors,
        "relayed_as": relayed_as,
        "complete": sent == config.images and len(matched) == sent and tracker.duplicates == 0,
    }
    if not matched:
        # No image arrived as an attachment: any speed measured here would be a text figure.
        return {
            **result,
            "rate": None,
            "steady_rate": None,
            "mib_per_s": None,
            "latency": latency_summary([]),
        }
    created = [tracker.found[i] for i in matched]
    span = max(created) - began
    rate = len(matched) / span if span > 0 else None
    return {
        **result,
        "seconds": round(span, 3),
        "rate": None if rate is None else round(rate, 1),
        "steady_rate": _round(steady_rate(created)),
        "mib_per_s": None if rate is None else round(rate * config.image_kib / 1024, 2),
        "latency": latency_summary([tracker.found[i] - tracker.sent[i] for i in matched]),
        "cpu_seconds": cpu,
        "cpu_ms_per_image": {name: round(1000 * secs / len(matched), 2) for name, secs in cpu.items()},
        "rss_kib": {"before": rss_before, "peak": rss_peak, "after": rss_after},
        # Peak growth over the run divided by the images: what relaying one image holds at once,
        # amortized (buffers are freed after each upload, so this falls as the run grows).
        "rss_peak_growth_kib_per_image": {
            name: round((rss_peak[name] - rss_before[name]) / len(matched), 1) for name in rss_before
        },
        "rss_kept_kib_per_image": {
            name: round((rss_after[name] - rss_before[name]) / len(matched), 1) for name in rss_before
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
