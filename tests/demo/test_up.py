"""`ryze up` as an operator runs it (simulated engine, fresh folder): both services healthy and tied
together with a generated token, clean stop on SIGTERM, and a clear exit when a child dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from ryze.launcher import free_port

pytestmark = pytest.mark.e2e

READY = re.compile(r"ryze up: (RyzeAPI|bridge) ready at (\S+) \(pid (\d+)\)")


@dataclass
class Up:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        # Keep draining: the children log to the same pipe and would block on a full one.
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if m := READY.search(line):
                self.urls[m[1]] = m[2]
                self.pids[m[1]] = int(m[3])

    async def wait_line(self, pattern: str, timeout: float = 90) -> str:
        async def find() -> str:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                if self.process.returncode is not None and self._reader is not None and self._reader.done():
                    raise AssertionError("ryze up exited; output:\n" + "\n".join(self.lines[-40:]))
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(find(), timeout)


@contextlib.asynccontextmanager
async def run_up(workdir: Path, *args: str) -> AsyncIterator[Up]:
    # The embedded defaults (everything under ./data) are what is tested: drop inherited settings.
    inherited = ("BRIDGE_", "WHATSAPP_", "DATABASE_URL", "DATA_DIR", "BASE_URL", "ENCRYPTION_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env |= {
        "WHATSAPP_ENGINE": "simulated",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "BRIDGE_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ryze", "up", *args,
        cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    up = Up(process)
    up._reader = asyncio.create_task(up.read())
    try:
        yield up
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        await up._reader
        for pid in up.pids.values():  # never leave a child behind, even when the test failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent, `ryze up`, may not have reaped it yet).
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


async def test_up_runs_both_services_and_stops_cleanly(tmp_path: Path) -> None:
    async with run_up(tmp_path) as up:
        await up.wait_line(r"ryze up: running")
        token_file = tmp_path / "data" / "bridge.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        async with aiohttp.ClientSession() as http:
            for name in ("RyzeAPI", "bridge"):
                async with http.get(up.urls[name] + "/healthz") as resp:
                    assert resp.status == 200, name
            # The bridge accepts the generated token: an unknown integration is 404, not 401.
            auth = {"Authorization": f"Bearer {token}"}
            async with http.get(up.urls["bridge"] + "/v1/integrations/nope", headers=auth) as resp:
                assert resp.status == 404
        up.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(up.process.wait(), 60) == 0
        await up.wait_line(r"ryze up: stopped")
        assert not any(_alive(pid) for pid in up.pids.values())


async def test_up_reuses_its_token_and_exits_when_a_child_dies(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    fd = os.open(tmp_path / "data" / "bridge.token", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"a-token-from-an-earlier-run-0123456789\n")
    os.close(fd)
    async with run_up(tmp_path) as up:
        await up.wait_line(r"ryze up: running")
        auth = {"Authorization": "Bearer a-token-from-an-earlier-run-0123456789"}
        async with aiohttp.ClientSession() as http:
            async with http.get(up.urls["bridge"] + "/v1/integrations/nope", headers=auth) as resp:
                assert resp.status == 404
        os.kill(up.pids["bridge"], signal.SIGKILL)
        assert await asyncio.wait_for(up.process.wait(), 60) == 1
        await up.wait_line(r"the bridge exited with code -9; stopping RyzeAPI")
        assert not _alive(up.pids["RyzeAPI"])


async def test_up_takes_listen_flags_and_keeps_its_data_owner_only(tmp_path: Path) -> None:
    api_port, bridge_port = free_port(), free_port()
    args = ("--api-port", str(api_port), "--bridge-host", "127.0.0.1", "--bridge-port", str(bridge_port))
    async with run_up(tmp_path, *args) as up:
        await up.wait_line(r"ryze up: running")
        # The flags win over PORT / BRIDGE_PORT, which run_up also sets.
        assert up.urls == {
            "RyzeAPI": f"http://127.0.0.1:{api_port}",
            "bridge": f"http://127.0.0.1:{bridge_port}",
        }
        data = tmp_path / "data"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        names = {p.name for p in data.iterdir()}
        # Both databases with their WAL files, both keys and the shared token, all while serving.
        assert {"ryzeapi.db", "ryzeapi.db-wal", "bridge.db", "bridge.token", "encryption.key"} <= names
        for path in data.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
