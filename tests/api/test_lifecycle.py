"""Shutting down while stored sessions are still being restored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ryze.api.app import build_services
from ryze.api.records import InstanceRecord
from ryze.engines.base import EventSink
from ryze.engines.simulated import SimulatedEngine
from ryze.engines.simulated.engine import SimulatedSession

from .harness import make_settings


class _SlowSession(SimulatedSession):
    """A reconnect that hangs (WhatsApp unreachable) and needs a step to wind down when cancelled."""

    wound_down = False

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # e.g. telling the engine to stop the attempt
            type(self).wound_down = True


class _SlowEngine(SimulatedEngine):
    async def open_session(self, instance: str, sink: EventSink) -> SimulatedSession:
        session = _SlowSession(self, instance, sink)
        self.sessions[instance] = session
        return session


async def test_shutdown_waits_for_the_reconnects_it_cancels(tmp_path: Path) -> None:
    services = build_services(make_settings(tmp_path), _SlowEngine(auto_connect_seconds=None))
    record = InstanceRecord(
        id="i1", account_id="a1", name="orion", token="t" * 32, state="connected", number_jid=None,
        profile_name=None,
    )  # fmt: skip
    await services.sessions.restore([record], services.instances)
    await asyncio.sleep(0.05)  # the reconnect is now waiting inside connect()
    await services.sessions.aclose()
    # Before, the reconnect was cancelled and left behind: its wind-down ran after the engine
    # had been closed, or never (the process exited or hung on it first).
    assert _SlowSession.wound_down
    await services.db.aclose()
