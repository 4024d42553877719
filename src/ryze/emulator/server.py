"""Serving the emulator: in-process on loopback for tests (`run_emulator`) or blocking
for `ryze chatwoot-emulator` (`serve`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from .app import ChatwootEmulator
from .seed import EmulatorSeed


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # In-process servers must not take SIGINT/SIGTERM away from the test runner.
        yield


@dataclass
class RunningEmulator:
    url: str
    emulator: ChatwootEmulator
    server: uvicorn.Server

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def run_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: EmulatorSeed | None = None,
    *,
    emulator: ChatwootEmulator | None = None,
    **options: Any,
) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator with uvicorn in the current event loop; `port=0` picks a free port.
    `options` go to `ChatwootEmulator` (webhook_timeout, storage_delay_ms, ...)."""
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets, and
    # without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url = f"http://{host}:{bound_port}"
    emu = emulator or ChatwootEmulator(seed=seed, public_url=url, **options)
    if emu.public_url is None:
        emu.public_url = url
    config = uvicorn.Config(
        emu.app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("emulator server stopped during start-up")
            await asyncio.sleep(0.01)
        yield RunningEmulator(url=url, emulator=emu, server=server)
    finally:
        emu.faults.closing.set()  # let hung requests finish so shutdown does not wait
        server.should_exit = True
        await task
        sock.close()


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def serve(
    host: str | None = None,
    port: int | None = None,
    seed: EmulatorSeed | None = None,
    *,
    public_url: str | None = None,
    webhook_timeout: float | None = None,
    storage_delay_ms: float | None = None,
    message_per_minute_limit: int | None = None,
    log_level: str = "info",
) -> None:
    """Run the emulator until interrupted. Unset arguments come from EMULATOR_* variables."""
    host = host or os.environ.get("EMULATOR_HOST", "127.0.0.1")
    port = port if port is not None else int(os.environ.get("EMULATOR_PORT", "3000"))
    seed = seed or EmulatorSeed.from_env()
    public_url = public_url or os.environ.get("EMULATOR_PUBLIC_URL") or f"http://{host}:{port}"
    timeout = webhook_timeout if webhook_timeout is not None else _env_float("EMULATOR_WEBHOOK_TIMEOUT")
    delay = storage_delay_ms if storage_delay_ms is not None else _env_float("EMULATOR_STORAGE_DELAY_MS")
    limit = message_per_minute_limit
    if limit is None and os.environ.get("EMULATOR_MESSAGE_PER_MINUTE_LIMIT"):
        limit = int(os.environ["EMULATOR_MESSAGE_PER_MINUTE_LIMIT"])
    emu = ChatwootEmulator(
        seed=seed,
        public_url=public_url,
        webhook_timeout=timeout if timeout is not None else 5.0,
        storage_delay_ms=delay or 0.0,
        message_per_minute_limit=limit if limit is not None else 200,
    )
    uvicorn.run(
        emu.app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=1
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m ryze.emulator`: the same flags the `ryze chatwoot-emulator` CLI exposes."""
    parser = argparse.ArgumentParser(description="Chatwoot v4.15 emulator")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--seed-file", default=None, help="JSON seed (accounts, users, tokens)")
    parser.add_argument("--public-url", default=None)
    parser.add_argument("--webhook-timeout", type=float, default=None)
    parser.add_argument("--storage-delay-ms", type=float, default=None)
    parser.add_argument("--message-per-minute-limit", type=int, default=None)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        EmulatorSeed.from_file(args.seed_file) if args.seed_file else None,
        public_url=args.public_url,
        webhook_timeout=args.webhook_timeout,
        storage_delay_ms=args.storage_delay_ms,
        message_per_minute_limit=args.message_per_minute_limit,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
