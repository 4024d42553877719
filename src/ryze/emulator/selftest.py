"""The emulator's own message-create throughput (so a benchmark can tell it is not the
bottleneck): a uvicorn server and an aiohttp client in one process, on loopback."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from .server import run_emulator

TOKEN = {"api_access_token": "cw-admin-token"}


async def ameasure_message_create(
    n: int = 2000, concurrency: int = 32, *, with_webhook: bool = False
) -> float:
    """Messages created per second over `n` POSTs from `concurrency` clients, one
    conversation each (the 200/min flood guard is lifted: it would cap a single
    conversation at 3.3 msg/s). `with_webhook` also delivers every message_created
    to a local no-op receiver, as the bridge would."""
    async with run_emulator(message_per_minute_limit=10**9) as running:
        running.emulator.recorder.enabled = False  # measure the API, not the recorder's memory
        base = running.url + "/api/v1/accounts/1"
        sink_url = running.url + "/_emulator/sink"  # a no-op receiver inside the emulator
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn, headers=TOKEN) as http:
            inbox_body = {
                "name": "bench",
                "channel": {"type": "api", "webhook_url": sink_url if with_webhook else ""},
            }
            async with http.post(base + "/inboxes", json=inbox_body) as r:
                inbox_id = (await r.json())["id"]
            convs = []
            for i in range(concurrency):
                body = {
                    "name": f"c{i}",
                    "phone_number": f"+1555000{i:04d}",
                    "inbox_id": inbox_id,
                    "source_id": f"src-{i}",
                }
                async with http.post(base + "/contacts", json=body) as r:
                    contact_id = (await r.json())["payload"]["contact"]["id"]
                conv_body = {"inbox_id": inbox_id, "contact_id": contact_id, "source_id": f"src-{i}"}
                async with http.post(base + "/conversations", json=conv_body) as r:
                    convs.append((await r.json())["id"])
            per_worker = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]

            async def worker(i: int) -> None:
                url = f"{base}/conversations/{convs[i]}/messages"
                for j in range(per_worker[i]):
                    payload = {"content": f"m{j}", "message_type": "incoming", "source_id": f"WAID:{i}:{j}"}
                    async with http.post(url, json=payload) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"message create failed: {r.status}")

            started = time.perf_counter()
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
            elapsed = time.perf_counter() - started
            if with_webhook:
                await running.emulator.incoming_dispatch_idle()
        return n / elapsed


def measure_message_create(
    n: int = 2000, concurrency: int = 32, *, with_webhook: bool = False, use_uvloop: bool = True
) -> float:
    """Blocking wrapper of `ameasure_message_create` (do not call from a running loop).
    uvloop by default, as `serve()` runs the emulator (uvicorn picks uvloop when installed)."""
    factory = None
    if use_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:  # pragma: no cover - uvicorn[standard] ships it
            factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(ameasure_message_create(n, concurrency, with_webhook=with_webhook))


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for uv in (True, False):
        rate = measure_message_create(count, 32, use_uvloop=uv)
        rate_hook = measure_message_create(count, 32, with_webhook=True, use_uvloop=uv)
        loop = "uvloop" if uv else "asyncio"
        sys.stdout.write(
            f"{loop}: message create {rate:.0f} msg/s; with webhook delivery {rate_hook:.0f} msg/s\n"
        )
