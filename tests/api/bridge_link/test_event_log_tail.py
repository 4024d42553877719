"""The event log's in-memory tail: what a listened instance reads from memory is exactly what the
database holds (acks, prune_upto, purge, a link replaced, reads from below the tail's floor)."""

from __future__ import annotations

import asyncio

from ryze.api.bridge_link import event_log as event_log_module
from ryze.api.bridge_link.event_log import EventLog
from ryze.api.db import Database


async def _db_rows(log: EventLog, instance: str, after: int) -> list[tuple[int, str]]:
    tails = log._tails
    log._tails = {}  # force the database path
    try:
        return await log.read(instance, after=after, limit=10_000)
    finally:
        log._tails = tails


async def test_tail_reads_match_the_database(db: Database) -> None:
    log = EventLog(db.engine)
    log.start()
    await log.append("a", '{"n":0}')  # committed before anyone listens: below the tail's floor
    log.listen("a", lambda: None)
    await asyncio.gather(*(log.append("a", f'{{"n":{i}}}') for i in range(1, 40)))
    assert "a" in log._tails
    log.ack("a", 3)
    log.ack("a", 10)
    await log.prune_upto("a", 5)
    for after in (0, 1, 5, 7, 20, 40):
        assert await log.read("a", after=after, limit=10_000) == await _db_rows(log, "a", after)
    assert await log.read("a", after=5, limit=3) == (await _db_rows(log, "a", 5))[:3]
    await log.purge("a")
    assert await log.read("a", after=0, limit=100) == []
    await log.append("a", "{}")
    assert await log.read("a", after=0, limit=100) == await _db_rows(log, "a", 0)
    await log.stop()


async def test_tail_only_for_listened_instances_and_dropped_on_unlisten(db: Database) -> None:
    log = EventLog(db.engine)
    log.start()
    await log.append("quiet", "{}")
    assert "quiet" not in log._tails

    def listener() -> None:
        return None

    log.listen("a", listener)
    await log.append("a", "{}")
    assert "a" in log._tails
    log.unlisten("a", listener)
    assert "a" not in log._tails
    assert [seq for seq, _ in await log.read("a", after=0, limit=10)] == [1]
    await log.stop()


async def test_tail_is_bounded(db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(event_log_module, "TAIL_LIMIT", 10)
    log = EventLog(db.engine)
    log.start()
    log.listen("a", lambda: None)
    for i in range(25):
        await log.append("a", f'{{"n":{i}}}')
    assert len(log._tails["a"].rows) == 10
    assert log._tails["a"].floor == 15
    # Below the floor the database answers, above it memory: both give every row.
    assert [s for s, _ in await log.read("a", after=0, limit=100)] == list(range(1, 26))
    assert [s for s, _ in await log.read("a", after=15, limit=100)] == list(range(16, 26))
    await log.stop()
