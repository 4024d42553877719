"""Reproducible load + profile driver for the inbound relay (WhatsApp → bridge → Chatwoot emulator)
and the bridge's webhook receiver. Not a benchmark (that is ``make bench``): a quick, fixed workload
to compare one change against the previous state of the code.

    .venv/bin/python tools/profile_relay.py                       # 20 instances, 4,000 messages
    .venv/bin/python tools/profile_relay.py --profile pyspy       # + py-spy summaries of api/bridge
    .venv/bin/python tools/profile_relay.py --webhooks 3000       # + webhook ack latency at c=50

Phases: start the system (``ryze.devstack``), create the instances (inline Chatwoot activation),
warm up one message per chat, then inject ``--messages`` in batches of ``--batch`` with at most
``--concurrency`` injection calls in flight, and wait until every chat's last message exists in the
emulator (order per chat is guaranteed, so the last one present means all are). Reports msgs/s and
CPU seconds per 1,000 messages of the ``api`` and ``bridge`` processes, then verifies that every
message exists exactly once. With ``--webhooks N``: N signed ``message_created`` (outgoing) webhooks
posted straight to the bridge at ``--webhook-concurrency``, ack latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ryze.devstack import EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_TOKEN, LocalSystem, start_system

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread kind: the event loop (main thread) and the rest (aiosqlite workers...)."""
    out: dict[str, float] = {"loop": 0.0, "threads": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        out["loop" if int(tid) == pid else "threads"] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def slowest(points: list[tuple[float, float]], n: int = 4) -> list[tuple[float, float]]:
    """The ``n`` slowest (start offset s, latency ms): a shared stall shows as one start time."""
    return [(round(t, 2), round(1000 * lat, 1)) for t, lat in sorted(points, key=lambda x: -x[1])[:n]]


# -- py-spy ---------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def summarise(raw: Path, top: int) -> str:
    """Self time by function and inclusive time by ryze function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        names = []
        for frame in frames:
            m = _FRAME.match(frame)
            names.append(f"{m['func']} ({m['file']})" if m else frame)
        own[names[-1]] += count
        for name in set(names):
            if "ryze/" in name:
                incl[name] += count
    out = [f"  samples: {total}", "  self time:"]
    out += [f"    {100 * c / total:5.1f}%  {n}" for n, c in own.most_common(top)]
    out.append("  inclusive (ryze):")
    out += [f"    {100 * c / total:5.1f}%  {n}" for n, c in incl.most_common(top)]
    return "\n".join(out)


def py_spy_exe() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else (shutil.which("py-spy") or str(exe))


async def pyspy(pids: dict[str, int], seconds: int, outdir: Path) -> dict[str, Path]:
    exe = await asyncio.to_thread(py_spy_exe)
    outputs = {name: outdir / f"pyspy-{name}.txt" for name in pids}
    procs = []
    for name, pid in pids.items():
        args = ["record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--format", "raw",
                "--nonblocking", "--output", str(outputs[name])]  # fmt: skip
        procs.append(
            await asyncio.create_subprocess_exec(
                exe, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
        )
    await asyncio.gather(*(p.wait() for p in procs))
    return {n: p for n, p in outputs.items() if await asyncio.to_thread(p.exists)}


# -- the workload ---------------------------------------------------------------------------------


class Driver:
    def __init__(self, system: LocalSystem, args: argparse.Namespace) -> None:
        self.system = system
        self.args = args
        self.prefix = "P" + os.urandom(3).hex().upper()
        self.instances = [f"prof-{i:03d}" for i in range(args.instances)]
        self.contacts = {
            name: [f"5511{900000000 + i * 100 + c}" for c in range(args.contacts)]
            for i, name in enumerate(self.instances)
        }
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=120)
        )

    async def emu(self, method: str, path: str, json_body: Any = None) -> Any:
        url = f"{self.system.emulator_url}{path}"
        headers = {"api_access_token": EMULATOR_ADMIN_TOKEN}
        async with self.http.request(method, url, json=json_body, headers=headers) as resp:
            resp.raise_for_status()
            return await resp.json(content_type=None)

    async def setup(self) -> None:
        await self.emu("POST", "/_emulator/settings", {"message_per_minute_limit": 10**9})
        sem = asyncio.Semaphore(4)

        async def make(name: str) -> None:
            async with sem:
                await self.system.create_instance(name)

        await asyncio.gather(*(make(n) for n in self.instances))

    async def last_sources(self) -> set[str]:
        convs = await self.system.conversations()
        return {str((c.get("messages") or [{}])[0].get("source_id") or "") for c in convs}

    async def wait_sources(self, wanted: set[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while True:
            missing = wanted - await self.last_sources()
            if not missing:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(missing)} chats still missing their last message")
            await asyncio.sleep(0.1)

    async def warm_up(self) -> None:
        wanted = set()
        for name in self.instances:
            batch = []
            for c, sender in enumerate(self.contacts[name]):
                wa_id = f"{self.prefix}W{name[-3:]}{c:02d}"
                batch.append({"id": wa_id, "from": sender, "pushName": f"C{c}", "text": "hello"})
                wanted.add("WAID:" + wa_id)
            await self.system.inject(name, batch)
        await self.wait_sources(wanted, 120)

    def batches(self) -> tuple[list[tuple[str, list[dict[str, Any]]]], set[str]]:
        jobs: list[tuple[str, list[dict[str, Any]]]] = []
        last: dict[tuple[str, str], str] = {}
        seq = 0
        turn = 0
        while seq < self.args.messages:
            name = self.instances[turn % len(self.instances)]
            items = []
            for _ in range(min(self.args.batch, self.args.messages - seq)):
                sender = self.contacts[name][seq % self.args.contacts]
                wa_id = f"{self.prefix}M{seq:07d}"
                items.append({"id": wa_id, "from": sender, "pushName": "Bench", "text": f"message {seq}"})
                last[(name, sender)] = wa_id
                seq += 1
            jobs.append((name, items))
            turn += 1
        return jobs, {"WAID:" + v for v in last.values()}

    async def inbound(self) -> dict[str, Any]:
        jobs, wanted = self.batches()
        pids = {n: self.system.stack.services[n].pid for n in ("api", "bridge", "emulator")}
        sem = asyncio.Semaphore(self.args.concurrency)

        async def send(name: str, items: list[dict[str, Any]]) -> None:
            async with sem:
                await self.system.inject(name, items)

        profile_task = None
        if self.args.profile == "pyspy":
            outdir = Path(self.args.out)
            await asyncio.to_thread(outdir.mkdir, parents=True, exist_ok=True)
            profile_task = asyncio.create_task(
                pyspy({"api": pids["api"], "bridge": pids["bridge"]}, self.args.profile_seconds, outdir)
            )
        cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
        thr0 = {n: thread_cpu(pids[n]) for n in ("api", "bridge")}
        t0 = time.monotonic()
        await asyncio.gather(*(send(n, items) for n, items in jobs))
        t_injected = time.monotonic()
        t_done = await self.wait_sources(wanted, 300)
        cpu1 = {n: cpu_seconds(p) for n, p in pids.items()}
        thr1 = {n: thread_cpu(pids[n]) for n in ("api", "bridge")}
        n = self.args.messages
        result: dict[str, Any] = {
            "messages": n,
            "seconds": round(t_done - t0, 3),
            "inject_seconds": round(t_injected - t0, 3),
            "msgs_per_s": round(n / (t_done - t0), 1),
            "cpu_s_per_1000": {k: round(1000 * (cpu1[k] - cpu0[k]) / n, 3) for k in pids},
            "cpu_s_per_1000_by_thread": {
                k: {t: round(1000 * (thr1[k][t] - thr0[k][t]) / n, 3) for t in thr0[k]} for k in thr0
            },
        }
        if profile_task is not None:
            files = await profile_task
            result["profiles"] = {k: str(v) for k, v in files.items()}
        return result

    async def ceiling(self) -> dict[str, Any]:
        """The same number of message creations posted straight to the emulator (aiohttp, bounded
        concurrency), spread over the chats the relay created: what the relay is judged against."""
        convs = [int(c["id"]) for c in await self.system.conversations()]
        sem = asyncio.Semaphore(self.args.ceiling_concurrency)
        headers = {"api_access_token": EMULATOR_ADMIN_TOKEN}
        base = f"{self.system.emulator_url}/api/v1/accounts/{EMULATOR_ACCOUNT_ID}/conversations"

        async def create(i: int) -> None:
            body = {"content": f"ceiling {i}", "message_type": "incoming", "source_id": f"WAID:CEIL{i:07d}"}
            async with sem, self.http.post(f"{base}/{convs[i % len(convs)]}/messages", json=body,
                                           headers=headers) as resp:  # fmt: skip
                await resp.read()
                resp.raise_for_status()

        cpu0 = cpu_seconds(self.system.stack.services["emulator"].pid)
        t0 = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(self.args.messages)))
        elapsed = time.monotonic() - t0
        cpu1 = cpu_seconds(self.system.stack.services["emulator"].pid)
        return {
            "messages": self.args.messages,
            "concurrency": self.args.ceiling_concurrency,
            "msgs_per_s": round(self.args.messages / elapsed, 1),
            "emulator_cpu_s_per_1000": round(1000 * (cpu1 - cpu0) / self.args.messages, 3),
        }

    async def verify(self) -> dict[str, int]:
        convs = await self.system.conversations()
        seen: Counter[str] = Counter()
        for conv in convs:
            for m in await self.system.messages(int(conv["id"])):
                source = m.get("source_id") or ""
                if source.startswith("WAID:" + self.prefix + "M"):
                    seen[source] += 1
        dupes = sum(c - 1 for c in seen.values() if c > 1)
        return {"present": len(seen), "expected": self.args.messages, "duplicates": dupes}

    async def webhooks(self) -> dict[str, Any]:
        """Signed outgoing ``message_created`` webhooks straight to the bridge; ack latency."""
        inboxes = (await self.emu("GET", f"/api/v1/accounts/{EMULATOR_ACCOUNT_ID}/inboxes"))["payload"]
        convs = await self.system.conversations()
        by_inbox: dict[int, list[dict[str, Any]]] = {}
        for conv in convs:
            by_inbox.setdefault(int(conv["inbox_id"]), []).append(conv)
        targets = []
        for inbox in inboxes:
            for conv in by_inbox.get(int(inbox["id"]), []):
                targets.append((inbox, conv))
        if not targets:
            raise RuntimeError("no conversation to post webhooks for")
        latencies: list[float] = []
        timeline: list[tuple[float, float]] = []  # (start offset, latency): where the tail sits
        statuses: Counter[int] = Counter()
        sem = asyncio.Semaphore(self.args.webhook_concurrency)
        base_id = 50_000_000 + int.from_bytes(os.urandom(2), "big") * 1000

        async def post(i: int) -> None:
            inbox, conv = targets[i % len(targets)]
            payload = {
                "event": "message_created",
                "id": base_id + i,
                "content": f"agent reply {i}",
                "message_type": "outgoing",
                "private": False,
                "source_id": None,
                "content_type": "text",
                "content_attributes": {},
                "created_at": "2026-11-25T12:00:00.000Z",
                "sender": {"id": 1, "name": "Agent", "type": "user"},
                "inbox": {"id": inbox["id"], "name": inbox["name"]},
                "conversation": {
                    "id": conv["id"],
                    "inbox_id": inbox["id"],
                    "status": conv["status"],
                    "contact_inbox": {"source_id": conv["meta"]["sender"].get("identifier")},
                    "meta": conv["meta"],
                },
                "account": {"id": EMULATOR_ACCOUNT_ID, "name": "local"},
            }
            raw = orjson.dumps(payload)
            ts = str(int(time.time()))
            headers = {"content-type": "application/json", "x-chatwoot-timestamp": ts}
            secret = inbox.get("secret")
            if secret:
                sig = hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
                headers["x-chatwoot-signature"] = "sha256=" + sig
            async with sem:
                started = time.perf_counter()
                async with self.http.post(inbox["webhook_url"], data=raw, headers=headers) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - started)
                timeline.append((started - t_start, latencies[-1]))
                statuses[resp.status] += 1

        probes: list[tuple[float, float]] = []  # GET /healthz meanwhile: is the bridge's loop stalled?
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with self.http.get(f"{self.system.bridge_url}/healthz") as resp:
                    await resp.read()
                probes.append((started - t_start, time.perf_counter() - started))
                await asyncio.sleep(0.01)

        t_start = time.perf_counter()
        t0 = time.monotonic()
        prober = asyncio.create_task(probe())
        rate = self.args.webhook_rate
        if rate > 0:  # open loop: one post every 1/rate s, whatever the answers take
            tasks = []
            for i in range(self.args.webhooks):
                delay = t_start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(i)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(post(i) for i in range(self.args.webhooks)))
        done.set()
        await prober
        elapsed = time.monotonic() - t0
        return {
            "webhooks": self.args.webhooks,
            "concurrency": self.args.webhook_concurrency,
            "rate": self.args.webhook_rate or "flat out",
            "per_s": round(self.args.webhooks / elapsed, 1),
            "statuses": dict(statuses),
            "ack_ms": {p: round(1000 * pct(latencies, p), 1) for p in (50, 95, 99)} | {
                "max": round(1000 * max(latencies), 1)},
            # the slowest acks and when they started (s after the first post)
            "slowest": slowest(timeline),
            "healthz_slowest": slowest(probes),
        }  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ryze-prof-"))
    system = await start_system(workdir, bridge_env={"BRIDGE_LOG_LEVEL": args.log_level})
    driver = Driver(system, args)
    try:
        t0 = time.monotonic()
        await driver.setup()
        await driver.warm_up()
        say(f"setup: {args.instances} instances in {time.monotonic() - t0:.1f}s (workdir {workdir})")
        results: dict[str, Any] = {"inbound": await driver.inbound()}
        say(json.dumps(results["inbound"], indent=2))
        results["verify"] = await driver.verify()
        say("verify:", results["verify"])
        if args.ceiling:
            results["ceiling"] = await driver.ceiling()
            ratio = results["inbound"]["msgs_per_s"] / results["ceiling"]["msgs_per_s"]
            say("ceiling:", json.dumps(results["ceiling"]), f"relay/ceiling = {ratio:.2f}")
        if args.webhooks:
            results["webhooks"] = await driver.webhooks()
            say("webhooks:", json.dumps(results["webhooks"]))
        for name, path in results["inbound"].get("profiles", {}).items():
            say(f"\n== py-spy {name} ==\n{summarise(Path(path), args.top)}")
    finally:
        await driver.http.close()
        await system.aclose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=20)
    p.add_argument("--contacts", type=int, default=4, help="contacts (chats) per instance")
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--batch", type=int, default=20, help="messages per injection call")
    p.add_argument("--concurrency", type=int, default=8, help="injection calls in flight")
    p.add_argument("--profile", choices=("none", "pyspy"), default="none")
    p.add_argument("--profile-seconds", type=int, default=4)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--ceiling", action="store_true", help="also post the messages straight to the emulator")
    p.add_argument("--ceiling-concurrency", type=int, default=50)
    p.add_argument("--webhooks", type=int, default=0, help="signed webhooks to post after the inbound run")
    p.add_argument("--webhook-concurrency", type=int, default=50, help="posts in flight (cap)")
    p.add_argument("--webhook-rate", type=float, default=0.0, help="paced posts per second (0: flat out)")
    p.add_argument("--log-level", default="INFO", help="BRIDGE_LOG_LEVEL")
    p.add_argument("--workdir", default=None)
    p.add_argument(
        "--out", default=str(Path(tempfile.gettempdir()) / "ryze-profile"), help="where py-spy outputs go"
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
