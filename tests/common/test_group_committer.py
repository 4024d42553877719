"""The one group committer every hot-path writer uses (``ryze.common.database.GroupCommitter``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ryze.common.database import CommitterClosed, GroupCommitter, Transaction, make_engine

_META = MetaData()
_ROWS = Table("rows", _META, Column("n", Integer, primary_key=True))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """SQLite and PostgreSQL (the ``database_url`` fixture)."""
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(_META.create_all)
    yield engine
    await engine.dispose()


async def _stored(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(select(_ROWS.c.n).order_by(_ROWS.c.n))]


class Recorder:
    """A committer owner that inserts its items and remembers each batch it was given."""

    def __init__(self, *, bad: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.bad = bad

    async def commit(self, transaction: Transaction, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        async with transaction() as conn:
            await conn.execute(_ROWS.insert(), [{"n": n} for n in items])
            if self.bad in items:
                raise ValueError("bad item")
        return [n * 10 for n in items]


async def test_concurrent_submissions_share_a_transaction(engine: AsyncEngine) -> None:
    owner = Recorder()
    committer = GroupCommitter(engine, owner.commit, name="test")
    results = await asyncio.gather(*(committer.submit(n) for n in range(50)))
    assert results == [n * 10 for n in range(50)]
    assert owner.batches == [list(range(50))]  # one transaction for all of them
    assert await _stored(engine) == list(range(50))
    await committer.aclose()


async def test_max_batch_splits_a_burst(engine: AsyncEngine) -> None:
    owner = Recorder()
    committer = GroupCommitter(engine, owner.commit, name="test", max_batch=20)
    await asyncio.gather(*(committer.submit(n) for n in range(50)))
    assert [len(b) for b in owner.batches] == [20, 20, 10]
    await committer.aclose()


async def test_fail_mode_fails_the_whole_batch_and_commits_nothing(engine: AsyncEngine) -> None:
    owner = Recorder(bad=3)
    committer = GroupCommitter(engine, owner.commit, name="test")
    results = await asyncio.gather(*(committer.submit(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert await _stored(engine) == []
    assert await committer.submit(7) == 70  # the next batch gets a fresh connection and works
    await committer.aclose()


async def test_singly_mode_fails_only_the_bad_item(engine: AsyncEngine) -> None:
    owner = Recorder(bad=3)
    committer = GroupCommitter(engine, owner.commit, name="test", on_failure="singly")
    results = await asyncio.gather(*(committer.submit(n) for n in range(5)), return_exceptions=True)
    assert [r for r in results if not isinstance(r, BaseException)] == [0, 10, 20, 40]
    assert isinstance(results[3], ValueError)
    assert await _stored(engine) == [0, 1, 2, 4]
    await committer.aclose()


async def test_a_normal_batch_yields_to_an_urgent_item(engine: AsyncEngine) -> None:
    """The owner commits a prefix when ``yield_requested``; the rest goes back to the head of its
    lane and the urgent item is committed in between."""
    order: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()
    committer: GroupCommitter[str, str]

    async def commit(transaction: Transaction, items: list[str]) -> list[str]:
        done: list[str] = []
        async with transaction():
            for item in items:
                if done and committer.yield_requested:
                    break
                if item == "n0":
                    started.set()
                    await release.wait()
                order.append(item)
                done.append(item)
        return done

    committer = GroupCommitter(engine, commit, name="test")
    normal = [asyncio.create_task(committer.submit(f"n{i}")) for i in range(5)]
    await started.wait()
    urgent = asyncio.create_task(committer.submit("u", urgent=True))
    await asyncio.sleep(0)
    release.set()
    assert await urgent == "u"
    assert await asyncio.gather(*normal) == [f"n{i}" for i in range(5)]
    assert order == ["n0", "u", "n1", "n2", "n3", "n4"]
    await committer.aclose()


async def test_an_item_whose_submitter_is_gone_is_handed_to_abandoned(engine: AsyncEngine) -> None:
    owner = Recorder()
    abandoned: list[tuple[int, int]] = []
    committer = GroupCommitter(
        engine, owner.commit, name="test", abandoned=lambda item, result: abandoned.append((item, result))
    )
    gone = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0)  # queued
    gone.cancel()
    await committer.aclose()  # still committed: the owner learns nobody took the result
    assert abandoned == [(1, 10)]
    assert await _stored(engine) == [1]


async def test_fire_and_forget_failures_are_logged_not_raised(engine: AsyncEngine) -> None:
    owner = Recorder(bad=2)
    committer = GroupCommitter(engine, owner.commit, name="test")
    committer.submit_nowait(2)
    await committer.aclose()
    assert await _stored(engine) == []
    assert await committer.submit(5) == 50  # a submission after close still commits


async def test_cancelled_flusher_fails_the_waiting_items(engine: AsyncEngine) -> None:
    hold = asyncio.Event()

    async def commit(transaction: Transaction, items: list[int]) -> list[int]:
        await hold.wait()
        return items

    committer = GroupCommitter(engine, commit, name="test")
    first = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = asyncio.create_task(committer.submit(2))
    await asyncio.sleep(0)
    assert committer._flusher is not None
    committer._flusher.cancel()
    for task in (first, second):
        with pytest.raises(CommitterClosed):
            await task
