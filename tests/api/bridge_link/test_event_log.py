"""The durable event log: seqs, group commit, pruning, purge — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from ryze.api.bridge_link.event_log import EventLog
from ryze.api.db import Database


async def test_append_assigns_increasing_seqs_and_survives_restart(db: Database) -> None:
    log = EventLog(db.engine)
    log.start()
    seqs = await asyncio.gather(*(log.append("a", f'{{"n":{i}}}') for i in range(300)))
    other = await log.append("b", "{}")
    await log.stop()
    assert sorted(seqs) == list(range(1, 301))
    assert other == 1  # per instance

    # A new writer (a restarted process) continues after the stored cursor.
    log2 = EventLog(db.engine)
    log2.start()
    assert await log2.append("a", "{}") == 301
    rows = await log2.read("a", after=0, limit=1000)
    assert [seq for seq, _ in rows] == list(range(1, 302))
    await log2.stop()


async def test_group_commit_batches_concurrent_appends(db: Database) -> None:
    log = EventLog(db.engine)
    commits = 0
    original = log._commit

    async def counting(batch):  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        await original(batch)

    log._commit = counting  # type: ignore[method-assign]
    log.start()
    await asyncio.gather(*(log.append("a", "{}") for i in range(500)))
    await log.stop()
    assert commits < 50  # 500 appends, a handful of transactions


async def test_ack_prune_and_purge_keep_the_cursor(db: Database) -> None:
    log = EventLog(db.engine)
    log.start()
    for _ in range(10):
        await log.append("a", "{}")
    log.ack("a", 3)
    log.ack("a", 7)
    await log.prune_upto("a", 2)
    last, pending = await log.stats("a", after=0)
    assert (last, pending) == (10, 6)
    assert [s for s, _ in await log.read("a", after=0, limit=100)] == [4, 5, 6, 8, 9, 10]
    await log.purge("a")
    assert await log.read("a", after=0, limit=100) == []
    # Seqs are never reused, even after a purge.
    assert await log.append("a", "{}") == 11
    await log.stop()
    async with db.engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT last_seq FROM chatwoot_event_cursors WHERE instance_name = 'a'"))
            == 11
        )


async def test_listener_is_called_after_commit(db: Database) -> None:
    log = EventLog(db.engine)
    log.start()
    woke = asyncio.Event()
    log.listen("a", woke.set)
    await log.append("a", "{}")
    assert woke.is_set()
    rows = await log.read("a", after=0, limit=10)  # committed before the wake-up
    assert len(rows) == 1
    await log.stop()


async def test_orphan_logs_are_dropped(db: Database) -> None:
    log = EventLog(db.engine)
    log.start()
    await log.append("kept", "{}")
    await log.append("orphan", "{}")
    assert await log.purge_orphans({"kept"}) == 1
    assert len(await log.read("kept", after=0, limit=10)) == 1
    assert await log.read("orphan", after=0, limit=10) == []
    await log.stop()
