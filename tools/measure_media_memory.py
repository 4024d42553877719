"""RyzeAPI's memory while four sends download endless media bodies at once (issue 16).

Starts the local system (RyzeAPI on the simulated engine, with the emulator and the bridge it
always brings), serves an endless body from this process on 127.0.0.1, allows that address with
FETCH_ALLOW, and sends four `mediaUrl` messages at it in parallel. Each must end in 413 once the
body passes MEDIA_MAX_BYTES. RyzeAPI's RSS is read from /proc before, every 20 ms during, and after.

    .venv/bin/python tools/measure_media_memory.py [--parallel 4] [--max-bytes 104857600]

Run against an older tree with ``PYTHONPATH=<old>/src`` to compare (``git archive <commit> src``).
Measured on the shared 2-core dev machine (Python 3.11.7, aiohttp 3.14.5), four parallel endless
downloads, MEDIA_MAX_BYTES = 100 MiB, every send answered 413 ``Media too large``:

- before the outbound-fetch policy (commit 06300ae, a growing ``bytearray`` per download):
  RSS 110.2 MiB before, peak 509.5 MiB, 112.2 MiB after;
- with it (bodies spooled to a temporary file past 1 MiB): 110.2 MiB before, peak 115.6 MiB,
  112.1 MiB after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/ for the /proc reader

from bench.procstats import rss_kib

from ryze.devstack import LocalSystem, start_system

CHUNK = b"\0" * (256 * 1024)


async def endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    try:
        for _ in range(16 * 1024):  # 4 GiB at most, bounded even if the reader never stops
            await resp.write(CHUNK)
    except (ConnectionError, RuntimeError):
        pass  # RyzeAPI hung up at its limit: the expected end
    return resp


async def serve() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/endless.bin", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/endless.bin"


async def measure(parallel: int, max_bytes: int) -> dict[str, Any]:
    runner, url = await serve()
    workdir = Path(tempfile.mkdtemp(prefix="ryze-media-mem-"))
    env = {"FETCH_ALLOW": "127.0.0.1", "MEDIA_MAX_BYTES": str(max_bytes)}
    system: LocalSystem = await start_system(workdir, api_env=env)
    try:
        pid = system.stack.services["api"].process.pid
        await system.create_instance("mem", chatwoot=False)
        token = system.account_token

        async def send() -> tuple[int, Any]:
            return await system.call(
                "POST",
                f"{system.api_url}/api/message/media/mem",
                token=token,
                json={"number": "5511988887777", "mediaType": "document", "mediaUrl": url},
            )

        await asyncio.sleep(1.0)
        before = rss_kib(pid)
        peak = before
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(pid))
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*(send() for _ in range(parallel))), timeout=300)
        elapsed = time.monotonic() - started
        done.set()
        await sampler
        await asyncio.sleep(1.0)
        after = rss_kib(pid)
        return {
            "parallel": parallel,
            "max_bytes": max_bytes,
            "statuses": [status for status, _ in results],
            "messages": sorted({str((body or {}).get("error", {}).get("message")) for _, body in results}),
            "rss_before_mib": round(before / 1024, 1),
            "rss_peak_mib": round(peak / 1024, 1),
            "rss_after_mib": round(after / 1024, 1),
            "seconds": round(elapsed, 2),
        }
    finally:
        await system.aclose()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--max-bytes", type=int, default=100 * 1024 * 1024)
    args = parser.parse_args()
    sys.stdout.write(json.dumps(asyncio.run(measure(args.parallel, args.max_bytes)), indent=2) + "\n")


if __name__ == "__main__":
    main()
