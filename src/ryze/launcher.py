"""Run the services as real processes on loopback: for `ryze up`, `ryze demo`, end-to-end tests and
benchmarks.

Each service is `python -m ryze <command>` with its settings in the environment, so what the tests
and the benchmark exercise is exactly what an operator runs. Processes can be stopped politely
(SIGTERM), killed (SIGKILL, for crash tests) and started again with the same settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceSpec:
    name: str
    command: list[str]  # arguments after `python -m ryze`
    env: dict[str, str]
    health_url: str
    log_path: Path | None = None


@dataclass
class RunningService:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class ServiceFailed(RuntimeError):
    pass


async def wait_healthy(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ServiceFailed(f"process exited with code {process.returncode} before {url} was healthy")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = str(exc) or type(exc).__name__
            await asyncio.sleep(0.1)
    raise ServiceFailed(f"{url} not healthy after {timeout:.0f}s: {last_error}")


class Stack:
    """A set of service processes started from specs; stops them all on exit."""

    def __init__(self) -> None:
        self.services: dict[str, RunningService] = {}

    def _spawn(self, spec: ServiceSpec) -> RunningService:
        env = {**os.environ, **spec.env}
        log: IO[bytes] | None = None
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = spec.log_path.open("ab")
        process = subprocess.Popen(  # noqa: S603 — our own interpreter and module, no shell
            [sys.executable, "-m", "ryze", *spec.command],
            env=env,
            stdout=log if log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        return RunningService(spec, process, log)

    async def start(self, spec: ServiceSpec, *, timeout: float = 60.0) -> RunningService:
        service = self._spawn(spec)
        self.services[spec.name] = service
        try:
            await wait_healthy(spec.health_url, timeout=timeout, process=service.process)
        except ServiceFailed as exc:
            tail = _tail(spec.log_path)
            raise ServiceFailed(f"{spec.name}: {exc}\n{tail}") from exc
        return service

    async def stop(self, name: str, *, timeout: float = 15.0) -> None:
        service = self.services.pop(name, None)
        if service is None:
            return
        if service.alive():
            service.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(service.process.wait, timeout)
            except subprocess.TimeoutExpired:
                service.process.kill()
                await asyncio.to_thread(service.process.wait)
        if service._log is not None:
            service._log.close()

    async def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to flush or say goodbye (crash tests)."""
        service = self.services.pop(name)
        if service.alive():
            service.process.kill()
            await asyncio.to_thread(service.process.wait)
        if service._log is not None:
            service._log.close()

    async def restart(self, name: str, *, hard: bool = False) -> RunningService:
        spec = self.services[name].spec
        if hard:
            await self.kill(name)
        else:
            await self.stop(name)
        return await self.start(spec)

    async def aclose(self) -> None:
        for name in list(self.services):
            with contextlib.suppress(ProcessLookupError):
                await self.stop(name)

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
