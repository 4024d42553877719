"""The engine with the real neonize (offline): storage, executor sizing, unreachable servers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncpg
import neonize.aioze.events as neonize_events
import pytest
from neonize_fakes import FakeFactory, Recorder, make_engine, stored_login

from ryze.engines.base import ConnectionEvent, ConnectionState, EngineError
from ryze.engines.neonize import NeonizeEngine
from ryze.engines.neonize._neonize import reset_event_loop
from ryze.engines.neonize.executor import FfiExecutor
from ryze.engines.neonize.storage import PostgresStore, SqliteStore, make_store, schema_name

# --- executor -------------------------------------------------------------------------------------


def test_executor_is_sized_for_sessions_plus_headroom() -> None:
    executor = FfiExecutor(expected_sessions=3, headroom=2)
    assert executor.max_workers == 5
    executor.expect_sessions(10)
    assert executor.max_workers == 12
    executor.expect_sessions(1)
    assert executor.max_workers == 3
    executor.shutdown()


async def test_pinned_calls_widen_the_pool_so_short_calls_never_starve() -> None:
    executor = FfiExecutor(expected_sessions=0, headroom=1)
    release = threading.Event()
    started = threading.Semaphore(0)

    def session_main_loop() -> str:  # like Neonize(): blocks until stopped
        started.release()
        release.wait(10)
        return "stopped"

    pinned = [asyncio.ensure_future(executor.run_pinned(session_main_loop)) for _ in range(4)]
    for _ in range(4):
        await asyncio.to_thread(started.acquire)
    assert executor.pinned == 4 and executor.max_workers == 5
    # Four threads are pinned; a short call still gets the headroom thread.
    assert await executor.run(lambda x: x * 2, 21) == 42
    release.set()
    assert await asyncio.gather(*pinned) == ["stopped"] * 4
    assert executor.pinned == 0 and executor.max_workers == 1
    executor.shutdown()


def test_executor_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        FfiExecutor(expected_sessions=-1)
    with pytest.raises(ValueError):
        FfiExecutor(headroom=0)


async def test_engine_grows_the_pool_with_open_sessions(data_dir: Path) -> None:
    engine = make_engine(data_dir, FakeFactory())
    assert engine.executor.max_workers == 2 + 4
    for i in range(5):
        await engine.open_session(f"i{i}", Recorder())
    assert engine.executor.max_workers == 5 + 4
    await engine.delete_session("i0")
    assert engine.executor.max_workers == 4 + 4
    await engine.aclose()


async def test_event_loop_is_reset_to_the_running_loop() -> None:
    neonize_events.event_global_loop = asyncio.new_event_loop()  # a stale loop from "earlier"
    stale = neonize_events.event_global_loop
    reset_event_loop(asyncio.get_running_loop())
    assert neonize_events.event_global_loop is asyncio.get_running_loop()
    stale.close()


# --- storage --------------------------------------------------------------------------------------


def test_sqlite_store_is_one_file_per_instance(data_dir: Path) -> None:
    store = make_store("sales-01", data_dir=data_dir, database_url="sqlite:///./data/ryzeapi.db")
    assert isinstance(store, SqliteStore)
    assert store.name == str(data_dir / "whatsmeow" / "sales-01.db")


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 101])
def test_instance_names_are_validated(data_dir: Path, name: str) -> None:
    with pytest.raises(EngineError, match="Invalid instance name"):
        make_store(name, data_dir=data_dir, database_url=None)


def test_postgres_store_url_uses_its_own_schema() -> None:
    store = make_store(
        "Sales-01", data_dir=Path("."), database_url="postgresql+asyncpg://u:p@127.0.0.1:5432/ryze"
    )
    assert isinstance(store, PostgresStore)
    assert store.schema.startswith("whatsmeow_sales_01_") and len(store.schema) <= 63
    assert store.name.startswith("postgres://u:p@127.0.0.1:5432/ryze?")
    assert f"search_path={store.schema}" in store.name and "sslmode=disable" in store.name
    remote = PostgresStore("postgres://u@db.example.com/ryze?sslmode=verify-full", "a")
    assert remote.name == "postgres://u@db.example.com/ryze?sslmode=verify-full&search_path=whatsmeow_a"
    assert schema_name("wa_", "simple_1") == "wa_simple_1"


async def test_delete_session_forgets_the_stored_login(data_dir: Path) -> None:
    engine = make_engine(data_dir, FakeFactory(stored_login))
    session = await engine.open_session("inst", Recorder())
    await session.connect(timeout=5)
    store = data_dir / "whatsmeow" / "inst.db"
    store.write_bytes(b"keys")
    await engine.delete_session("inst")
    assert not store.exists()
    assert await engine.open_session("inst", Recorder()) is not session
    await engine.aclose()
    with pytest.raises(EngineError, match="closed"):
        await engine.open_session("other", Recorder())


async def test_open_session_twice_returns_the_same_session(data_dir: Path) -> None:
    engine = make_engine(data_dir, FakeFactory())
    first = await engine.open_session("inst", Recorder())
    assert await engine.open_session("inst", Recorder()) is first
    await engine.aclose()


# --- the real neonize, offline --------------------------------------------------------------------


@pytest.mark.timeout(20)
async def test_connect_without_network_fails_fast_with_a_clear_error(
    data_dir: Path, loopback_proxy: str
) -> None:
    engine = NeonizeEngine(data_dir, proxy=loopback_proxy)
    sink = Recorder()
    session = await engine.open_session("offline", sink)
    with pytest.raises(EngineError, match="Could not reach WhatsApp servers") as info:
        await session.connect(timeout=10)
    assert info.value.retryable
    await session.drain()
    assert session.state is ConnectionState.DISCONNECTED
    assert [e.state for e in sink.of(ConnectionEvent)] == [
        ConnectionState.CONNECTING,
        ConnectionState.DISCONNECTED,
    ]
    # whatsmeow created its tables in the instance's own file before dialing
    assert (data_dir / "whatsmeow" / "offline.db").stat().st_size > 0
    # a second attempt works the same (fresh client, no dependence on the first loop/client)
    with pytest.raises(EngineError, match="Could not reach WhatsApp servers"):
        await session.connect(timeout=10)
    await engine.aclose()
    assert engine.executor.pinned == 0


@pytest.mark.postgres
@pytest.mark.timeout(20)
async def test_postgres_sessions_live_in_their_own_schema(
    postgres_url: str, data_dir: Path, loopback_proxy: str
) -> None:
    engine = NeonizeEngine(data_dir, database_url=postgres_url, proxy=loopback_proxy)
    session = await engine.open_session("pg-inst", Recorder())
    with pytest.raises(EngineError, match="Could not reach WhatsApp servers"):
        await session.connect(timeout=10)
    schema = engine.store_for("pg-inst").schema  # type: ignore[attr-defined]
    conn = await asyncpg.connect(postgres_url)
    try:
        tables = await conn.fetch(
            "select table_schema from information_schema.tables where table_name = 'whatsmeow_device'"
        )
        assert [r["table_schema"] for r in tables] == [schema]
        await engine.delete_session("pg-inst")
        assert not await conn.fetchval(
            "select 1 from information_schema.schemata where schema_name = $1", schema
        )
    finally:
        await conn.close()
        await engine.aclose()


async def test_the_engine_reports_its_ffi_threads(data_dir: Path) -> None:
    """What ``ryze_api_threads`` shows for neonize: the pool's ceiling, calls pinned in Go, and
    calls abandoned inside Go (kept alive until they return)."""
    engine = NeonizeEngine(data_dir, expected_sessions=2, headroom=3)
    assert engine.thread_counts() == {"ffi_pool_max": 5, "ffi_pinned": 0, "ffi_abandoned": 0}
    stuck: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    engine.executor.abandon(stuck)
    assert engine.thread_counts()["ffi_abandoned"] == 1
    stuck.set_result(None)
    await asyncio.sleep(0)
    assert engine.thread_counts()["ffi_abandoned"] == 0
    await engine.aclose()
