"""`ryze api` / `ryze bridge` as processes: the --host/--port flags, and a busy port fails fast.

Every process here listens on 127.0.0.1 and is waited for with a bound, never a timed assertion.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ryze.launcher import free_port

pytestmark = pytest.mark.e2e

_INHERITED = (
    "BRIDGE_",
    "WHATSAPP_",
    "DATABASE_URL",
    "DATA_DIR",
    "BASE_URL",
    "ENCRYPTION_KEY",
    "HOST",
    "PORT",
)


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED)}
    return env | {"WHATSAPP_ENGINE": "simulated", "SIMULATOR_AUTO_CONNECT_SECONDS": "-1"} | extra


async def _wait_healthy(url: str, process: asyncio.subprocess.Process, bound: float = 60.0) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        for _ in range(int(bound / 0.1)):
            assert process.returncode is None, "the service exited before it was healthy"
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(("command", "env_port"), [("api", "PORT"), ("bridge", "BRIDGE_PORT")])
async def test_the_port_flag_wins_over_the_environment(tmp_path: Path, command: str, env_port: str) -> None:
    flag_port = free_port()
    env = _env(tmp_path, **{env_port: str(free_port()), "HOST": "0.0.0.0", "BRIDGE_HOST": "0.0.0.0"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ryze", command, "--host", "127.0.0.1", "--port", str(flag_port),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _wait_healthy(f"http://127.0.0.1:{flag_port}/healthz", process)
    finally:
        await _stop(process)
    # The data folder (default ./data) and the SQLite database with its WAL files are owner-only.
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = sorted(p.name for p in data.iterdir())
    assert files, "nothing was written under ./data"
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


@pytest.mark.parametrize("command", ["api", "bridge"])
async def test_a_busy_port_exits_non_zero_before_anything_starts(
    tmp_path: Path, busy_port: int, command: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ryze", command, "--port", str(busy_port),
        cwd=tmp_path, env=_env(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await _stop(process)
    text = output.decode(errors="replace")
    assert process.returncode == 1, text
    assert "Address already in use" in text
    # Bound before the lifespan: no session was restored, no link dialled, nothing to wind down.
    assert "Application startup complete" not in text
    assert "started" not in text.replace("start-up failed", "")
