"""The process-wide Go-core lock (src/ryze/engines/neonize/golock.py) and what it protects.

neonize 0.5.2's Go core (goneonize/main.go) keeps its clients in unlocked Go maps: ``Neonize()``
writes ``clients``/``StopSignal``/``eventChannel``, ``Stop`` deletes from them, sends read them.
The real-library test below runs real clients (each dials a loopback listener given as its proxy,
which hangs up: starting and stopping clients needs no network) in a subprocess, with and without
the lock.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from neonize_fakes import Recorder

from ryze.engines.base import ConnectionEvent, ConnectionState, EngineError
from ryze.engines.neonize import NeonizeEngine
from ryze.engines.neonize.golock import GoCoreLock, Registration

WORKLOAD = Path(__file__).with_name("go_race_workload.py")


def _started(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_a_writer_waits_for_readers_and_new_readers_wait_for_a_waiting_writer() -> None:
    lock = GoCoreLock()
    order: list[str] = []
    lock.acquire_shared()
    writer = _started(lambda: (lock.acquire_exclusive(), order.append("writer"), lock.release_exclusive()))
    while not lock._writers_waiting:
        time.sleep(0.001)
    late = _started(lambda: (lock.acquire_shared(), order.append("late reader"), lock.release_shared()))
    # a Go callback's lease does not queue behind the waiting writer
    lock.acquire_shared(priority=True)
    order.append("priority reader")
    lock.release_shared()
    assert order == ["priority reader"]
    lock.release_shared()
    writer.join(5)
    late.join(5)
    assert order == ["priority reader", "writer", "late reader"]


def test_a_registration_holds_the_lock_until_the_first_sign_of_life_or_its_timeout() -> None:
    lock = GoCoreLock()
    registration = Registration(lock, timeout=30)
    registration.begin()
    assert lock._writer
    registration.end()  # the first callback
    registration.end()  # later callbacks: no-op
    assert not lock._writer
    lock.acquire_exclusive()  # free again
    lock.release_exclusive()

    silent = Registration(lock, timeout=0.05)
    silent.begin()
    with lock.shared():  # waits for the timeout, then gets in
        assert not lock._writer
    silent.end()


def _run_workload(mode: str, tmp_path: Path, rounds: int) -> subprocess.CompletedProcess[str]:
    data = tmp_path / f"{mode}-{len(list(tmp_path.iterdir()))}"
    data.mkdir()
    return subprocess.run(
        [sys.executable, str(WORKLOAD), mode, "30", str(rounds), str(data)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.timeout(200)
def test_concurrent_starts_stops_and_reads_of_real_clients_do_not_crash_the_process(tmp_path: Path) -> None:
    """30 real clients start at once and stop, round after round, while four threads read the
    client map. Without the lock Go aborts the process ("fatal error: concurrent map read and map
    write", or a segfault inside a corrupted map); with it the process survives 15 rounds, and the
    lock was actually contended. The unlocked control is what shows the workload can hit the race."""
    for _ in range(3):  # bounded: each control run lasts a few seconds
        control = _run_workload("unlocked", tmp_path, rounds=10)
        if control.returncode != 0:
            break
    else:
        pytest.skip("the unlocked control run did not hit the race on this machine: no evidence either way")
    assert "fatal error" in control.stderr
    locked = _run_workload("locked", tmp_path, rounds=15)
    assert locked.returncode == 0, locked.stderr[-2000:]
    assert "survived" in locked.stdout
    assert int(locked.stdout.split()[-1]) > 0


@pytest.mark.timeout(30)
async def test_a_real_client_dials_only_the_configured_proxy(tmp_path: Path) -> None:
    """Starting a real client dials WhatsApp; with a proxy configured the only connection made is
    to the proxy (an HTTP CONNECT for web.whatsapp.com:443), so tests stay on loopback."""
    requests: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readline())
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = NeonizeEngine(tmp_path, proxy=f"http://127.0.0.1:{port}")
    sink = Recorder()
    try:
        session = await engine.open_session("proxied", sink)
        with pytest.raises(EngineError, match="Could not reach WhatsApp servers"):
            await session.connect(timeout=10)
        await session.drain()
    finally:
        await engine.aclose()
        server.close()
    assert requests and all(r.startswith(b"CONNECT web.whatsapp.com:443 ") for r in requests)
    assert [e.state for e in sink.of(ConnectionEvent)][-1] is ConnectionState.DISCONNECTED
    assert engine.executor.pinned == 0


async def test_a_client_stopped_before_its_start_got_the_lock_never_starts(
    tmp_path: Path, loopback_proxy: str
) -> None:
    """Stop and Neonize() queue for the same lock; when Stop wins, the late Neonize() must not
    register (and dial with) a client nobody will stop again. (Were it to start, it would dial
    only the loopback proxy.)"""
    from ryze.engines.neonize import golock
    from ryze.engines.neonize._neonize import ProxySettings, RyzeClient
    from ryze.engines.neonize.executor import FfiExecutor

    executor = FfiExecutor(expected_sessions=1, headroom=2)
    client = RyzeClient(
        str(tmp_path / "late.db"),
        uuid="ryze-late-start",
        executor=executor,
        on_event=lambda _raw, _code: None,
        on_qr=lambda _qr: None,
        on_login_status=lambda _status: None,
    )
    golock.GO_CORE_LOCK.acquire_exclusive()  # someone else's start holds the lock
    try:
        task = await client.connect(ProxySettings(loopback_proxy))
        await asyncio.sleep(0.05)  # the Neonize() call now waits for the lock
        stop = asyncio.ensure_future(client.stop())
        await asyncio.sleep(0.05)
    finally:
        golock.GO_CORE_LOCK.release_exclusive()
    await asyncio.wait_for(stop, 10)
    await asyncio.wait_for(task, 10)  # returned at once, without dialing anyone
    assert not (tmp_path / "late.db").exists()  # getDB never ran
    assert executor.pinned == 0
    executor.shutdown()
