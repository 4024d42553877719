"""SessionManager: resuming stored logins at start-up (src/ryze/api/services/sessions.py).

A stored login whose first reconnect fails (network not up yet at boot) used to stay
disconnected until someone called connect; it is now retried with back-off and the instance
reads ``connecting``, with an ``instance.state`` reason saying why and when the next try is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ryze.api.records import InstanceRecord
from ryze.api.services.sessions import SessionManager
from ryze.engines.base import (
    ConnectionEvent,
    ConnectionState,
    ConnectResult,
    DomainEvent,
    EngineError,
    EventSink,
)


class FlakySession:
    """Fails ``connect`` with a retryable error ``failures`` times, then connects."""

    def __init__(self, sink: EventSink, failures: int, error: EngineError) -> None:
        self._sink = sink
        self.failures = failures
        self.error = error
        self.attempts = 0
        self.state = ConnectionState.DISCONNECTED
        self.me = None

    async def connect(self, **_kwargs: Any) -> ConnectResult:
        self.attempts += 1
        await self._sink(ConnectionEvent(state=ConnectionState.CONNECTING))
        if self.attempts <= self.failures:
            self.state = ConnectionState.DISCONNECTED
            await self._sink(ConnectionEvent(state=self.state, reason=self.error.message))
            raise self.error
        self.state = ConnectionState.CONNECTED
        await self._sink(ConnectionEvent(state=self.state))
        return ConnectResult(state=self.state)

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None


class FakeEngine:
    name = "fake"

    def __init__(self, failures: int, error: EngineError | None = None) -> None:
        self.failures = failures
        self.error = error or EngineError("Could not reach WhatsApp servers: no route", retryable=True)
        self.sessions: dict[str, FlakySession] = {}

    async def open_session(self, instance: str, sink: EventSink) -> FlakySession:
        session = self.sessions[instance] = FlakySession(sink, self.failures, self.error)
        return session

    async def delete_session(self, instance: str) -> None:
        self.sessions.pop(instance, None)

    async def aclose(self) -> None:
        return None


class Pipeline:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def handle(self, _instance: str, event: DomainEvent) -> None:
        self.events.append(event)


class Instances:
    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    async def set_state(self, instance: InstanceRecord, state: str, **_kwargs: Any) -> InstanceRecord:
        self.states[instance.name] = state
        return instance


def record(name: str, state: str, number_jid: str | None = "5511999999999@s.whatsapp.net") -> InstanceRecord:
    return InstanceRecord(
        id=name, account_id="a", name=name, token="t", state=state, number_jid=number_jid, profile_name=None
    )


def manager(engine: FakeEngine, pipeline: Pipeline) -> SessionManager:
    return SessionManager(engine, pipeline, reconnect_initial=0.05, reconnect_max=0.2)  # type: ignore[arg-type]


async def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):  # bounded: at most `seconds`
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_failed_reconnect_at_boot_is_retried_with_back_off_until_connected() -> None:
    engine, pipeline = FakeEngine(failures=3), Pipeline()
    sessions = manager(engine, pipeline)
    inst = record("sales", ConnectionState.CONNECTED.value)
    await sessions.restore([inst], Instances())  # type: ignore[arg-type]
    await wait_for(lambda: sessions.reconnect_status("sales") is not None)
    assert sessions.state_of(inst) == "connecting"  # not "disconnected" between attempts
    status = sessions.reconnect_status("sales")
    assert status is not None and status.attempt == 1 and "no route" in status.error
    await wait_for(
        lambda: "sales" in engine.sessions and engine.sessions["sales"].state is ConnectionState.CONNECTED
    )
    assert engine.sessions["sales"].attempts == 4
    assert sessions.reconnect_status("sales") is None
    assert sessions.state_of(inst) == "connected"
    # every failure is followed by a "connecting" state with the reason and the next try
    retries = [
        e
        for e in pipeline.events
        if isinstance(e, ConnectionEvent) and e.reason and "Reconnecting" in e.reason
    ]
    assert [r.reason.split(";")[0] for r in retries if r.reason] == [
        f"Reconnecting: attempt {n} failed (Could not reach WhatsApp servers: no route)" for n in (1, 2, 3)
    ]
    assert all(r.state is ConnectionState.CONNECTING for r in retries)
    await sessions.aclose()


async def test_a_non_retryable_failure_is_not_retried() -> None:
    engine = FakeEngine(failures=5, error=EngineError("Temporarily banned", retryable=False))
    sessions = manager(engine, Pipeline())
    await sessions.restore([record("sales", "connected")], Instances())  # type: ignore[arg-type]
    await wait_for(lambda: "sales" in engine.sessions and engine.sessions["sales"].attempts == 1)
    await asyncio.sleep(0.3)
    assert engine.sessions["sales"].attempts == 1
    assert sessions.reconnect_status("sales") is None
    await sessions.aclose()


async def test_closing_the_manager_ends_the_retries() -> None:
    engine = FakeEngine(failures=10**6)
    sessions = manager(engine, Pipeline())
    await sessions.restore([record("sales", "connected")], Instances())  # type: ignore[arg-type]
    await wait_for(lambda: "sales" in engine.sessions and engine.sessions["sales"].attempts >= 2)
    await sessions.aclose()
    count = engine.sessions["sales"].attempts
    await asyncio.sleep(0.3)
    assert engine.sessions["sales"].attempts == count


@pytest.mark.parametrize(
    ("state", "number", "resumed"),
    [
        ("connected", None, True),
        ("connecting", "5511999999999@s.whatsapp.net", True),  # a restart during the retries
        ("connecting", None, False),  # a first pairing under way: it did not survive
        ("qr_ready", "5511999999999@s.whatsapp.net", False),
        ("disconnected", "5511999999999@s.whatsapp.net", False),
    ],
)
async def test_which_instances_are_resumed_at_start(state: str, number: str | None, resumed: bool) -> None:
    engine, instances = FakeEngine(failures=0), Instances()
    sessions = manager(engine, Pipeline())
    await sessions.restore([record("sales", state, number)], instances)  # type: ignore[arg-type]
    if resumed:
        await wait_for(lambda: "sales" in engine.sessions and engine.sessions["sales"].attempts == 1)
    else:
        await asyncio.sleep(0.05)
        assert "sales" not in engine.sessions
        assert instances.states.get("sales", state) == ("disconnected" if state != "disconnected" else state)
    await sessions.aclose()
