"""`ryze demo` as a person runs it: starts, prints the URLs, stops everything on Ctrl+C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.e2e


async def test_ryze_demo_command_starts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ryze", "demo", "--no-script",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not any("Ctrl+C stops everything" in line for line in lines):
                raw = await process.stdout.readline()
                assert raw, "ryze demo exited early:\n" + "\n".join(lines)
                lines.append(raw.decode().rstrip())
        text = "\n".join(lines)
        assert "Opening conversation" not in text  # --no-script
        urls = re.findall(r"http://127\.0\.0\.1:\d+\S*", text)
        agent = next(u for u in urls if u.endswith("/app"))
        async with aiohttp.ClientSession() as http, http.get(agent) as resp:
            assert resp.status == 200
        assert (tmp_path / "data" / "demo" / "logs" / "api.log").exists()

        process.send_signal(signal.SIGINT)
        rest = (await asyncio.wait_for(process.stdout.read(), 60)).decode()
        assert await asyncio.wait_for(process.wait(), 60) == 0
        assert "stopped" in rest
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(agent)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
