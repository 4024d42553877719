"""Run as a script (a crash must not take pytest with it): hammer neonize's Go client maps.

``python go_race_workload.py locked|unlocked SESSIONS ROUNDS DATA_DIR`` starts SESSIONS real neonize
clients at once (``Neonize()`` writes ``clients``/``StopSignal``/``eventChannel``), stops them
(``Stop`` deletes) and repeats ROUNDS times, while four threads keep calling ``IsConnected`` (reads
``clients[id]``). Every client dials a loopback listener given as its proxy, which closes the
connection: nothing leaves the machine. ``unlocked`` swaps the Go-core lock for a no-op, as before
the fix. Prints ``survived <contended>`` and exits 0 when the process lives through it; Go aborts
the process (``fatal error: concurrent map read and map write``) when it does not.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import ryze.engines.neonize._neonize as nz
from ryze.engines.base import DomainEvent, EngineError
from ryze.engines.neonize import NeonizeEngine, golock


class _NoLock(golock.GoCoreLock):
    def acquire_shared(self, *, priority: bool = False) -> None:
        pass

    def release_shared(self) -> None:
        pass

    def acquire_exclusive(self) -> None:
        pass

    def release_exclusive(self) -> None:
        pass


def _unlock() -> golock.GoCoreLock:
    nolock = _NoLock()
    nz.GO_CORE_LOCK = nolock
    original = nz._FfiRouter.__init__

    def init(self: Any, executor: Any, lock: Any = nolock, name: str = "") -> None:
        original(self, executor, nolock, name)

    nz._FfiRouter.__init__ = init  # type: ignore[method-assign]
    return nolock


async def main(mode: str, sessions: int, rounds: int, data_dir: Path) -> None:
    lock = _unlock() if mode == "unlocked" else golock.GO_CORE_LOCK

    async def refuse(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = NeonizeEngine(data_dir, proxy=f"http://127.0.0.1:{port}", expected_sessions=sessions)

    async def sink(_event: DomainEvent) -> None:
        return None

    opened = [await engine.open_session(f"race{i}", sink) for i in range(sessions)]
    stop = threading.Event()

    def reader() -> None:
        is_connected = nz.locked(lock, "IsConnected", nz._gocode.IsConnected)
        while not stop.is_set():
            for i in range(sessions):
                is_connected(f"reader-{i}".encode())

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()

    async def cycle(session: Any) -> None:
        try:
            await session.connect(timeout=10)
        except EngineError:
            pass  # expected: the loopback "proxy" hangs up
        await session.disconnect()

    for _ in range(rounds):
        await asyncio.gather(*(cycle(s) for s in opened))
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    await engine.aclose()
    server.close()
    print("survived", lock.contended, flush=True)  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])))
