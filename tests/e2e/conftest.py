"""The whole system as real processes on loopback, shared by the tests of one module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.devstack import LocalSystem, start_system


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    workdir: Path = tmp_path_factory.mktemp("system")
    running = await start_system(workdir)
    try:
        yield running
    finally:
        await running.aclose()
