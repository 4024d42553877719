"""Many integrations at once: memory per integration in the bridge and in RyzeAPI, idle CPU, and
how long the bridge takes to re-link every integration after RyzeAPI restarts.

Runs on its own fresh system so that memory deltas are not blurred by what the throughput phases
allocated (CPython keeps freed arenas, which would hide part of the growth).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import client_session, run_pool, wall
from bench.procstats import CpuSnapshot, rss_kib
from ryze.devstack import LocalSystem


@dataclass
class ScaleConfig:
    integrations: int = 2000
    setup_concurrency: int = 16
    setup_seconds: float = 120.0  # creation stops here: the figure is then for the K reached
    link_seconds: float = 60.0
    settle_seconds: float = 3.0
    idle_seconds: float = 10.0
    relink_seconds: float = 60.0
    probe_concurrency: int = 32


class LinkProbe:
    """Asks the bridge which integrations have their link to RyzeAPI up (``GET /v1/integrations/{id}``)."""

    def __init__(self, system: LocalSystem, http: aiohttp.ClientSession, concurrency: int) -> None:
        self.system = system
        self.http = http
        self.concurrency = concurrency
        self.headers = {"Authorization": f"Bearer {system.bridge_token}"}
        self.rounds = 0
        self.timeline: list[tuple[float, int]] = []

    async def connected(self, ids: list[str]) -> set[str]:
        up: set[str] = set()

        async def probe(integration_id: str) -> None:
            url = f"{self.system.bridge_url}/v1/integrations/{integration_id}"
            try:
                async with self.http.get(url, headers=self.headers) as resp:
                    if resp.status == 200 and (await resp.json(content_type=None)).get("link_connected"):
                        up.add(integration_id)
            except (aiohttp.ClientError, TimeoutError):
                pass  # the bridge is busy re-linking: the next round asks again

        await run_pool(ids, probe, concurrency=self.concurrency, deadline=time.monotonic() + 60)
        self.rounds += 1
        return up

    async def until_all(self, ids: list[str], deadline: float, *, want_up: bool = True) -> tuple[bool, float]:
        """Probe rounds over the integrations not yet in the wanted state; returns (all reached, when).
        ``timeline`` keeps (wall time, how many reached) after each round."""
        waiting = list(ids)
        reached_at = wall()
        self.timeline = []
        while waiting:
            if time.monotonic() > deadline:
                return False, reached_at
            up = await self.connected(waiting)
            now = wall()
            waiting = [i for i in waiting if (i in up) != want_up]
            reached_at = now
            self.timeline.append((now, len(ids) - len(waiting)))
            if waiting:
                await asyncio.sleep(0.1)
        return True, reached_at


async def create_integrations(system: LocalSystem, config: ScaleConfig) -> list[str]:
    """Instances with inline activation, connect requested but not awaited one by one (the
    per-instance wait of ``LocalSystem.create_instance`` polls RyzeAPI and would dominate); the
    links are awaited all together afterwards. Returns the bridge integration ids."""
    ids: list[str] = []

    async def make(index: int) -> None:
        name = f"bench-scale-{index:05d}"
        body = {"name": name, **system.chatwoot_block()}
        created = await system.api("POST", "/api/instance/new", json=body, expect=201)
        await system.api("GET", f"/api/instance/connect/{name}", expect=200)
        integration_id = (created.get("chatwoot") or {}).get("bridge_integration_id")
        if integration_id:
            ids.append(integration_id)

    deadline = time.monotonic() + config.setup_seconds
    await run_pool(range(config.integrations), make, concurrency=config.setup_concurrency, deadline=deadline)
    return ids


def _per_integration(before: int, after: int, count: int) -> float | None:
    return round((after - before) / count, 1) if count else None


async def run_scale(system: LocalSystem, config: ScaleConfig) -> dict[str, Any]:
    services = {name: svc.pid for name, svc in system.stack.services.items()}
    await asyncio.sleep(config.settle_seconds)
    rss_before = {name: rss_kib(pid) for name, pid in services.items()}
    began = wall()
    ids = await create_integrations(system, config)
    created_in = wall() - began
    made = ids
    result: dict[str, Any] = {
        "requested": config.integrations,
        "created": len(made),
        "create_seconds": round(created_in, 1),
        "create_rate": round(len(made) / created_in, 1) if created_in > 0 else None,
        "fits_budget": len(made) == config.integrations,
    }
    async with client_session(config.probe_concurrency) as http:
        probe = LinkProbe(system, http, config.probe_concurrency)
        all_up, _ = await probe.until_all(ids, time.monotonic() + config.link_seconds)
        result["linked"] = all_up
        await asyncio.sleep(config.settle_seconds)
        rss_after = {name: rss_kib(pid) for name, pid in services.items()}
        result["rss_kib_before"] = rss_before
        result["rss_kib_after"] = rss_after
        result["rss_kib_per_integration"] = {
            name: _per_integration(rss_before[name], rss_after[name], len(ids)) for name in services
        }

        # Idle: nothing happens but pings and timers; a core-percent per process.
        idle_before = CpuSnapshot.take(services)
        await asyncio.sleep(config.idle_seconds)
        idle = CpuSnapshot.take(services).since(idle_before)
        result["idle_cpu_percent"] = {n: round(100 * s / config.idle_seconds, 2) for n, s in idle.items()}

        # RyzeAPI dies (SIGKILL: no goodbye frames) and comes back; the bridge must re-link all.
        spec = system.stack.services["api"].spec
        await system.stack.kill("api")
        await probe.until_all(ids[: min(50, len(ids))], time.monotonic() + 15, want_up=False)
        spawned = wall()
        await system.stack.start(spec)
        healthy = wall()
        rounds_before = probe.rounds
        all_back, at = await probe.until_all(ids, time.monotonic() + config.relink_seconds)
        api_pid = system.stack.services["api"].pid
        result["relink"] = {
            "complete": all_back,
            "seconds_from_spawn": round(at - spawned, 2),
            "seconds_from_healthy": round(at - healthy, 2),
            "api_start_seconds": round(healthy - spawned, 2),
            "probe_rounds": probe.rounds - rounds_before,
            # How the re-link progressed: (seconds since the respawn, integrations linked).
            "timeline": [(round(t - spawned, 2), n) for t, n in probe.timeline],
        }
        result["api_rss_kib_after_restart"] = rss_kib(api_pid)
    return result
