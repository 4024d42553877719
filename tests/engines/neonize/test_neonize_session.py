"""The session's connection flow, event ordering and error handling, with a fake neonize client
whose callbacks arrive on another thread (as they do from Go)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from pathlib import Path

import pytest
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize_fakes import FakeClient, FakeFactory, Recorder, make_engine, shows_qr, stored_login
from parity import ALICE, ME, ME_LID, from_alice, jid

from ryze.engines.base import (
    ConnectionEvent,
    ConnectionState,
    DomainEvent,
    EngineError,
    MessageEvent,
    NotConnectedError,
    Party,
)
from ryze.engines.neonize._neonize import RyzeClient
from ryze.engines.neonize.executor import FfiExecutor
from ryze.engines.neonize.pump import EventPump
from ryze.engines.neonize.session import NeonizeSession, normalize_pair_number


def states(recorder: Recorder) -> list[ConnectionState]:
    return [e.state for e in recorder.of(ConnectionEvent)]


async def test_connect_returns_first_qr_and_announces_rotations(data_dir: Path) -> None:
    factory = FakeFactory(shows_qr("2@first", "2@second"))
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    result = await session.connect(timeout=5)
    assert result.state is ConnectionState.QR_READY and result.qr == "2@first"
    assert result.pairing_code is None
    while len(sink.of(ConnectionEvent)) < 3:
        await session.drain()
        await asyncio.sleep(0.01)
    qrs = [e.qr for e in sink.of(ConnectionEvent) if e.state is ConnectionState.QR_READY]
    assert qrs == ["2@first", "2@second"]
    assert states(sink)[0] is ConnectionState.CONNECTING
    # A second connect while pairing hands out the current code without a new client.
    again = await session.connect(timeout=5)
    assert again.qr == "2@second" and len(factory.clients) == 1
    assert factory.last.name == str(data_dir / "whatsmeow" / "inst.db")
    await engine.aclose()


async def test_pairing_code_is_requested_only_after_the_first_qr(data_dir: Path) -> None:
    factory = FakeFactory(shows_qr("2@qr"))
    engine = make_engine(data_dir, factory)
    session = await engine.open_session("inst", Recorder())
    result = await session.connect(pair_number="+55 11 99999-9999", timeout=5)
    assert result.state is ConnectionState.QR_READY
    assert result.pairing_code == "ABCD1234"
    assert factory.last.called("PairPhone") == [(("5511999999999", True), {})]
    await engine.aclose()


async def test_scanning_the_qr_connects(data_dir: Path) -> None:
    scanned, paired, finish = threading.Event(), threading.Event(), threading.Event()

    def script(client: FakeClient) -> None:
        client.qr("2@scan-me")
        scanned.wait(5)
        client.on_login_status("success")
        client.emit(2, pb.PairStatus(Status=pb.PairStatus.SUCCESS, ID=jid(ME)))
        paired.set()
        finish.wait(5)
        client.connected()

    factory = FakeFactory(script)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    assert (await session.connect(timeout=5)).qr == "2@scan-me"
    scanned.set()
    await asyncio.to_thread(paired.wait, 5)
    await session.drain()
    # whatsmeow is reconnecting with the new login: connect() must not restart pairing
    assert (await session.connect(timeout=5)).state is ConnectionState.CONNECTING
    assert len(factory.clients) == 1
    finish.set()
    while session.state is not ConnectionState.CONNECTED:
        await session.drain()
        await asyncio.sleep(0.01)
    assert states(sink) == [
        ConnectionState.CONNECTING,
        ConnectionState.QR_READY,
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
    ]
    assert session.me is not None and session.me.jid == ME
    await engine.aclose()


def test_pair_number_validation() -> None:
    assert normalize_pair_number("+55 (11) 99999-9999") == "5511999999999"
    with pytest.raises(EngineError, match="Invalid phone number"):
        normalize_pair_number("12ab")


async def test_stored_login_connects_without_qr(data_dir: Path) -> None:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    result = await session.connect(timeout=5)
    assert result.state is ConnectionState.CONNECTED and result.qr is None
    await session.drain()
    assert session.state is ConnectionState.CONNECTED
    assert session.me == Party(jid=ME, alt=ME_LID, name="Me")
    assert sink.of(ConnectionEvent)[-1] == ConnectionEvent(state=ConnectionState.CONNECTED, me=session.me)
    # connect() again is a no-op
    assert (await session.connect(timeout=5)).state is ConnectionState.CONNECTED
    assert len(factory.clients) == 1
    await engine.aclose()


async def test_connect_never_outlives_its_timeout(data_dir: Path) -> None:
    factory = FakeFactory(None)  # the fake never shows a QR nor connects
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    with pytest.raises(EngineError, match=r"Could not reach WhatsApp servers within 0\.3 s") as info:
        await session.connect(timeout=0.3)
    assert info.value.retryable
    assert session.state is ConnectionState.DISCONNECTED
    await session.drain()
    await asyncio.sleep(0)  # let the background stop run
    await session.drain()
    assert factory.last.called("stop")
    assert states(sink)[-1] is ConnectionState.DISCONNECTED
    await engine.aclose()


async def test_unreachable_servers_give_a_clear_error(data_dir: Path) -> None:
    factory = FakeFactory(
        fail_with="failed to dial whatsapp web websocket: dial tcp: lookup web.whatsapp.com: no such host"
    )
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    with pytest.raises(EngineError, match="Could not reach WhatsApp servers") as info:
        await session.connect(timeout=5)
    assert info.value.retryable
    await session.drain()
    assert states(sink) == [ConnectionState.CONNECTING, ConnectionState.DISCONNECTED]
    await engine.aclose()


async def test_expired_qr_is_reported(data_dir: Path) -> None:
    def script(client: FakeClient) -> None:
        client.on_login_status("timeout")

    engine = make_engine(data_dir, FakeFactory(script))
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    with pytest.raises(EngineError, match="QR code expired"):
        await session.connect(timeout=5)
    await session.drain()
    assert session.state is ConnectionState.DISCONNECTED
    await engine.aclose()


async def test_an_unscanned_qr_series_is_ended_by_ryze_before_whatsmeow_runs_out(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """whatsmeow ends its series at 160 s by disconnecting, after which neonize's Neonize() spins
    in FetchMe forever; Ryze stops the client first (QR_LIFETIME), which parks that thread instead.
    The thread still never returns: it is counted, and past MAX_ABANDONED connecting is refused."""
    monkeypatch.setattr("ryze.engines.neonize.session.STOP_TIMEOUT", 0.1)
    factory = FakeFactory(shows_qr("2@a"), shows_qr("2@b"), ignores_stop=True)
    engine = make_engine(data_dir, factory, qr_lifetime=0.2, max_abandoned=1)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    result = await session.connect(timeout=5)
    assert result.state is ConnectionState.QR_READY
    for _ in range(200):  # bounded: 2 s
        await session.drain()
        if engine.thread_counts()["ffi_abandoned"] == 1:
            break
        await asyncio.sleep(0.01)
    first = factory.last
    assert first.called("stop")  # Ryze ended the series; no "timeout" status ever came
    expired = sink.of(ConnectionEvent)[-1]
    assert expired.state is ConnectionState.DISCONNECTED
    assert expired.reason == "QR code expired without being scanned"
    assert engine.thread_counts()["ffi_abandoned"] == 1
    with pytest.raises(EngineError, match="restart RyzeAPI") as info:
        await session.connect(timeout=5)
    assert not info.value.retryable
    first.released.set()  # Go finally returns (only in the test): the slot frees up
    await asyncio.sleep(0.05)
    assert engine.thread_counts()["ffi_abandoned"] == 0
    assert (await session.connect(timeout=5)).state is ConnectionState.QR_READY
    factory.last.released.set()
    await engine.aclose()


async def test_a_paired_phone_is_not_expired(data_dir: Path) -> None:
    def pairs(client: FakeClient) -> None:
        client.qr("2@a")
        client.on_login_status("success")

    factory = FakeFactory(pairs)
    engine = make_engine(data_dir, factory, qr_lifetime=0.1)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    await asyncio.sleep(0.3)
    await session.drain()
    assert session.state is ConnectionState.CONNECTING
    assert not factory.last.called("stop")
    await engine.aclose()


async def test_revoked_stored_login_is_forgotten_and_pairing_restarts(data_dir: Path) -> None:
    def revoked(client: FakeClient) -> None:
        client.emit(6, pb.LoggedOut(OnConnect=True, Reason=pb.ConnectFailureReason.LOGGED_OUT))

    factory = FakeFactory(revoked, shows_qr("2@fresh"))
    engine = make_engine(data_dir, factory)
    store = data_dir / "whatsmeow" / "inst.db"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"old keys")
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    result = await session.connect(timeout=5)
    assert result.state is ConnectionState.QR_READY and result.qr == "2@fresh"
    assert not store.exists()
    assert len(factory.clients) == 2 and factory.clients[0].called("stop")
    await session.drain()
    assert ConnectionState.LOGGED_OUT in states(sink)
    await engine.aclose()


async def test_logged_out_while_connected_wipes_the_store(data_dir: Path) -> None:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    store = data_dir / "whatsmeow" / "inst.db"
    store.write_bytes(b"keys")
    client = factory.last
    await asyncio.to_thread(
        client.emit, 6, pb.LoggedOut(OnConnect=False, Reason=pb.ConnectFailureReason.LOGGED_OUT)
    )
    while store.exists():
        await session.drain()
        await asyncio.sleep(0.01)
    assert session.state is ConnectionState.LOGGED_OUT
    assert client.called("stop")
    await engine.aclose()


async def test_connection_events_update_the_state(data_dir: Path) -> None:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    client = factory.last
    for code, event, state in (
        (12, pb.Disconnected(status=True), ConnectionState.DISCONNECTED),
        (3, pb.Connected(status=True), ConnectionState.CONNECTED),
        (4, pb.KeepAliveTimeout(ErrorCount=2), ConnectionState.CONNECTING),
        (5, pb.KeepAliveRestored(), ConnectionState.CONNECTED),
        (8, pb.TemporaryBan(Code=pb.TemporaryBan.BLOCKED_BY_USERS, Expire=60), ConnectionState.TEMP_BANNED),
        (7, pb.StreamReplaced(), ConnectionState.DISCONNECTED),
    ):
        await asyncio.to_thread(client.emit, code, event)
        await session.drain()
        assert session.state is state
        assert sink.of(ConnectionEvent)[-1].state is state
    await engine.aclose()


async def test_messages_reach_the_sink_in_order_with_back_pressure(data_dir: Path) -> None:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory, queue_size=4)
    gate = asyncio.Event()
    seen: list[str] = []

    async def slow_sink(event: DomainEvent) -> None:
        if isinstance(event, MessageEvent):
            await gate.wait()
            seen.append(event.message.id)

    session = await engine.open_session("inst", slow_sink)
    await session.connect(timeout=5)
    await session.drain()
    client = factory.last
    produced: list[int] = []
    queue_full = threading.Event()

    def go_thread() -> None:
        for i in range(50):
            client.emit(17, from_alice(f"M{i:03d}", wa.Message(conversation=str(i))))
            produced.append(i)
            if len(produced) == 4:
                queue_full.set()

    producer = threading.Thread(target=go_thread)
    producer.start()
    await asyncio.to_thread(queue_full.wait, 5)
    await asyncio.sleep(0.05)  # give the producer a chance to (wrongly) push more
    # The sink is blocked, so the Go thread is held back: at most the queue size (plus the
    # item the sink is holding) got through.
    assert len(produced) <= 5
    gate.set()
    await asyncio.to_thread(producer.join)
    await session.drain()
    assert seen == [f"M{i:03d}" for i in range(50)]
    await engine.aclose()


async def test_a_sink_failure_is_retried_in_order_until_stored(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Failure contract (engines/base.py): a message the sink could not store is retried with
    back-off, and later messages wait behind it; nothing is dropped (the old session logged the
    failure and went on without it)."""
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    seen: list[str] = []
    failures = {"BAD": 2}

    async def flaky(event: DomainEvent) -> None:
        if isinstance(event, MessageEvent):
            if failures.get(event.message.id, 0) > 0:
                failures[event.message.id] -= 1
                raise RuntimeError("database is locked")
            seen.append(event.message.id)

    session = await engine.open_session("inst", flaky)
    await session.connect(timeout=5)
    client = factory.last
    for msg_id in ("A", "BAD", "B"):
        await asyncio.to_thread(client.emit, 17, from_alice(msg_id, wa.Message(conversation="x")))
    with caplog.at_level(logging.WARNING):
        await session.drain()
    assert seen == ["A", "BAD", "B"]
    retries = [r for r in caplog.records if "event sink failed; retrying" in r.getMessage()]
    assert len(retries) == 2 and retries[0].exc_info and not retries[1].exc_info
    await engine.aclose()


@pytest.mark.timeout(30)
async def test_a_sink_that_never_recovers_is_retried_until_the_session_stops(data_dir: Path) -> None:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    attempts: list[str] = []
    retried = asyncio.Event()

    async def down(event: DomainEvent) -> None:
        if isinstance(event, MessageEvent):
            attempts.append(event.message.id)
            if len(attempts) >= 3:  # 0.1 s, 0.2 s apart
                retried.set()
            raise RuntimeError("database is down")

    session = await engine.open_session("inst", down)
    await session.connect(timeout=5)
    await asyncio.to_thread(factory.last.emit, 17, from_alice("M1", wa.Message(conversation="x")))
    await asyncio.wait_for(retried.wait(), 10)
    await session.close()  # returns: the retry loop ends with the session
    count = len(attempts)
    await asyncio.sleep(0.5)
    assert len(attempts) == count and set(attempts) == {"M1"}
    await engine.aclose()


async def test_a_translation_bug_is_logged_and_later_events_still_flow(
    data_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ryze.engines.neonize import session as session_module

    real = session_module.translate_message

    def buggy(event: object) -> object:
        if event.Info.ID == "BUG":  # type: ignore[attr-defined]
            raise KeyError("translator bug")
        return real(event)

    monkeypatch.setattr(session_module, "translate_message", buggy)
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    for msg_id in ("A", "BUG", "B"):
        await asyncio.to_thread(factory.last.emit, 17, from_alice(msg_id, wa.Message(conversation="x")))
    with caplog.at_level(logging.ERROR):
        await session.drain()
    assert [e.message.id for e in sink.of(MessageEvent)] == ["A", "B"]
    assert any("event handler failed" in r.getMessage() and r.exc_info for r in caplog.records)
    await engine.aclose()


async def test_pump_on_the_loop_thread_never_blocks() -> None:
    seen: list[int] = []

    async def handler(item: int) -> None:
        seen.append(item)

    pump = EventPump(handler, maxsize=1)
    pump.start()
    for i in range(3):  # from the loop's own thread: must not wait for a free slot
        assert pump.submit_threadsafe(i)
    await pump.join()
    await pump.aclose()
    assert seen == [0, 1, 2]
    assert not pump.submit_threadsafe(3)  # closed


async def test_events_of_a_stopped_client_are_ignored(data_dir: Path) -> None:
    factory = FakeFactory(stored_login, stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    old = factory.last
    await session.disconnect()
    await session.connect(timeout=5)
    await asyncio.to_thread(old.emit, 17, from_alice("LATE", wa.Message(conversation="x")))
    await session.drain()
    assert not sink.of(MessageEvent)
    await engine.aclose()


async def test_disconnect_and_logout(data_dir: Path) -> None:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    store = data_dir / "whatsmeow" / "inst.db"
    store.write_bytes(b"keys")
    client = factory.last
    await session.logout()
    await session.drain()
    assert client.called("logout") and client.called("stop")
    assert not store.exists()
    assert session.state is ConnectionState.LOGGED_OUT and session.me is None
    assert states(sink)[-1] is ConnectionState.LOGGED_OUT
    with pytest.raises(NotConnectedError):
        await session.send_text(ALICE, "hi")
    await session.disconnect()
    await session.drain()
    assert session.state is ConnectionState.DISCONNECTED
    await engine.aclose()


async def test_sending_requires_a_connection(data_dir: Path) -> None:
    engine = make_engine(data_dir, FakeFactory())
    session = await engine.open_session("inst", Recorder())
    with pytest.raises(NotConnectedError):
        await session.send_text(ALICE, "hi")
    await engine.aclose()


async def test_closed_session_refuses_to_connect(data_dir: Path) -> None:
    engine = make_engine(data_dir, FakeFactory())
    session = await engine.open_session("inst", Recorder())
    await session.close()
    with pytest.raises(EngineError, match="closed"):
        await session.connect(timeout=1)
    await engine.aclose()


# --- the real client's Go-thread callbacks -------------------------------------------------------


def _real_client(executor: FfiExecutor, on_event: object) -> RyzeClient:
    return RyzeClient(
        "unused.db",
        uuid="ryze-test-callbacks",
        executor=executor,
        on_event=on_event,  # type: ignore[arg-type]
        on_qr=lambda code: None,
        on_login_status=lambda status: None,
    )


def test_go_callback_exceptions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    executor = FfiExecutor(expected_sessions=0, headroom=1)

    def boom(raw: bytes, code: int) -> None:
        raise ValueError("handler bug")

    client = _real_client(executor, boom)
    raw = ctypes.create_string_buffer(b"\x0a\x00", 2)
    with caplog.at_level(logging.ERROR):
        client.event.execute(b"uuid", ctypes.addressof(raw), 2, 17)  # what Go calls
    assert any("neonize event callback failed" in r.getMessage() and r.exc_info for r in caplog.records)
    executor.shutdown()


def test_real_client_subscribes_before_connect_and_passes_raw_bytes() -> None:
    executor = FfiExecutor(expected_sessions=0, headroom=1)
    got: list[tuple[bytes, int]] = []
    client = _real_client(executor, lambda raw, code: got.append((raw, code)))
    assert set(client.event.list_func) >= {3, 6, 17, 18}
    payload = from_alice("X", wa.Message(conversation="hi")).SerializePartialToString()
    buf = ctypes.create_string_buffer(payload, len(payload))
    client.event.execute(b"uuid", ctypes.addressof(buf), len(payload), 17)
    client.event.execute(b"uuid", None, 0, 7)  # an event without fields (StreamReplaced)
    assert got == [(payload, 17), (b"", 7)]
    executor.shutdown()


def test_real_client_qr_and_login_status_go_to_the_session(caplog: pytest.LogCaptureFixture) -> None:
    executor = FfiExecutor(expected_sessions=0, headroom=1)
    got: list[str] = []
    client = RyzeClient(
        "unused.db",
        uuid="ryze-test-qr",
        executor=executor,
        on_event=lambda raw, code: None,
        on_qr=got.append,
        on_login_status=lambda status: got.append(f"status:{status}"),
    )
    qr = ctypes.create_string_buffer(b"2@abc,def")
    status = ctypes.create_string_buffer(b"success")
    # the methods NewAClient.connect hands to Go as the QR and login-status callbacks
    client._NewAClient__onQr(0, ctypes.addressof(qr))
    client._NewAClient__onLoginStatus(0, ctypes.addressof(status))
    assert got == ["2@abc,def", "status:success"]
    failing = _real_client(executor, lambda raw, code: None)
    failing._on_qr_cb = lambda code: 1 / 0
    with caplog.at_level(logging.ERROR):
        failing._NewAClient__onQr(0, ctypes.addressof(qr))
    assert any("QR callback failed" in r.getMessage() for r in caplog.records)
    executor.shutdown()


async def test_real_client_routes_ffi_through_our_executor() -> None:
    executor = FfiExecutor(expected_sessions=0, headroom=1)
    client = _real_client(executor, lambda raw, code: None)
    version = await client._NewAClient__client.GetVersion()  # a harmless FFI call
    assert version == b"0.5.2"
    assert executor._pool._threads  # the call ran on our pool, not the loop's default executor
    executor.shutdown()


def test_session_module_exposes_the_protocol() -> None:
    for name in ("connect", "disconnect", "logout", "send_text", "send_media", "send_reaction", "edit",
                 "revoke", "mark_read", "send_presence", "download_media", "close"):  # fmt: skip
        assert callable(getattr(NeonizeSession, name))
