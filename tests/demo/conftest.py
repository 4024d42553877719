"""One `ryze demo` start-up (fresh folder, scripted opening conversation) shared by this package."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from rich.console import Console

from ryze.demo import Demo, DemoOptions, start_demo


@dataclass
class DemoRun:
    demo: Demo
    output: io.StringIO


@pytest.fixture(scope="package")
async def demo_run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoRun]:
    workdir = tmp_path_factory.mktemp("demo") / "data" / "demo"
    output = io.StringIO()
    demo = await start_demo(DemoOptions(workdir=workdir), Console(file=output, width=200))
    try:
        yield DemoRun(demo, output)
    finally:
        await demo.aclose()


@pytest.fixture
def demo(demo_run: DemoRun) -> Demo:
    return demo_run.demo
