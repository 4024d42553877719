"""The bridge's tables and repositories on both back ends (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import INTEGRATIONS, JOBS, ChatRecord, IntegrationRecord, Repositories


def _record(integration_id: str = "a" * 32) -> IntegrationRecord:
    now = time.time()
    return IntegrationRecord(
        id=integration_id,
        instance="shop",
        ryzeapi_url="http://127.0.0.1:1",
        chatwoot_base_url="http://cw",
        chatwoot_account_id=1,
        token_enc="v1:x:y",
        inbox_id=7,
        inbox_name="WhatsApp",
        inbox_secret_enc="",
        path_secret_hash="0" * 64,
        sign_messages=False,
        ignore_groups=False,
        start_as_pending=False,
        reopen_resolved=False,
        status="paused",
        last_error="",
        operator_paused=False,
        watermark=0,
        created_at=now,
        updated_at=now,
    )


@pytest.fixture
async def repos(database_url: str) -> AsyncIterator[Repositories]:
    db = BridgeDB(database_url)
    await db.migrate()
    await db.migrate()  # idempotent
    db.start()
    yield Repositories.create(db)
    await db.close()


async def test_integration_round_trip_and_cascade(repos: Repositories) -> None:
    record = _record()
    await repos.integrations.insert(record)
    await repos.integrations.update(record.id, status="active", watermark=42)
    loaded = await repos.integrations.get(record.id)
    assert loaded is not None and loaded.status == "active" and loaded.watermark == 42
    await repos.chats.save(
        record.id, ChatRecord("5511@s.whatsapp.net", 5, 9, "open"), ["5511@s.whatsapp.net", "77@lid"]
    )
    await repos.messages.record(
        record.id, wa_message_id="W1", chatwoot_message_id=1, conversation_id=9, chat_jid="x", direction="in"
    )
    await repos.outbound.enqueue(record.id, 1, 9, "send", "{}")
    await repos.integrations.delete(record.id)
    assert await repos.integrations.get(record.id) is None
    assert await repos.messages.find_wa(record.id, "W1") is None
    assert await repos.outbound.pending(record.id) == []


async def test_chat_aliases_keep_pn_and_lid_together(repos: Repositories) -> None:
    rid = "b" * 32
    await repos.chats.save(
        rid, ChatRecord("5511@s.whatsapp.net", 5, 9, "open"), ["5511@s.whatsapp.net", "77@lid"]
    )
    by_lid = await repos.chats.find(rid, ["77@lid"])
    assert by_lid is not None and by_lid.contact_id == 5 and by_lid.conversation_id == 9
    await repos.chats.set_conversation_status(rid, 9, "resolved")
    again = await repos.chats.find(rid, ["5511@s.whatsapp.net"])
    assert again is not None and again.conversation_status == "resolved"
    assert await repos.chats.find("c" * 32, ["77@lid"]) is None


async def test_message_map_deduplicates_under_concurrency(repos: Repositories) -> None:
    rid = "d" * 32

    async def write(i: int) -> None:
        await repos.messages.record(
            rid,
            wa_message_id=f"W{i % 10}",
            chatwoot_message_id=i,
            conversation_id=1,
            chat_jid="x",
            direction="in",
        )

    await asyncio.gather(*(write(i) for i in range(100)))
    for i in range(10):
        found = await repos.messages.find_wa(rid, f"W{i}")
        assert found is not None and found.chatwoot_message_id is not None
    mapped = await repos.messages.find_chatwoot(rid, 0)
    assert [m.wa_message_id for m in mapped] == ["W0"]


async def test_outbound_queue_deduplicates_webhooks(repos: Repositories) -> None:
    rid = "e" * 32
    results = await asyncio.gather(*(repos.outbound.enqueue(rid, 55, 3, "send", "{}") for _ in range(5)))
    assert sorted(r is not None for r in results) == [False, False, False, False, True]
    assert await repos.outbound.enqueue(rid, 55, 3, "revoke", "{}") is not None
    [send, revoke] = await repos.outbound.pending(rid)
    assert (send.kind, revoke.kind) == ("send", "revoke")
    await repos.outbound.update(send.id, state="done")
    assert [j.kind for j in await repos.outbound.pending(rid)] == ["revoke"]
    assert await repos.outbound.states(rid) == {"done": 1, "pending": 1}


async def test_failures_are_recorded(repos: Repositories) -> None:
    rid = "f" * 32
    await repos.messages.record(
        rid,
        wa_message_id="P1",
        chatwoot_message_id=None,
        conversation_id=None,
        chat_jid="x",
        direction="in",
        state="failed",
        seq=4,
        failure="Chatwoot answered 422",
    )
    await repos.messages.record_failure(rid, 5, "malformed event")
    failures = await repos.messages.failures(rid)
    assert [(f["seq"], f["wa_message_id"]) for f in failures] == [(4, "P1"), (5, "")]
    mapped = await repos.messages.find_wa(rid, "P1")
    assert mapped is not None and mapped.state == "failed"


async def test_a_webhook_job_is_committed_ahead_of_a_large_batch(database_url: str) -> None:
    """The webhook's insert goes through the committer's urgent lane: it overtakes the normal writes
    queued before it (waiting for at most the one being executed), and it is durable — visible to
    another connection — when ``enqueue`` returns."""
    db = BridgeDB(database_url)
    await db.migrate()
    db.start()
    repos = Repositories.create(db)
    record = _record("d" * 32)
    await repos.integrations.insert(record)
    order: list[str] = []
    first_running, release = asyncio.Event(), asyncio.Event()

    def normal_write(index: int) -> Any:
        async def op(conn: AsyncConnection) -> None:
            if index == 0:  # the batch is being executed: hold it there until the webhook came in
                first_running.set()
                await release.wait()
            await conn.execute(
                update(INTEGRATIONS).where(INTEGRATIONS.c.id == record.id).values(watermark=index)
            )
            order.append(f"n{index}")

        return op

    try:
        normal = [asyncio.create_task(db.writer.submit(normal_write(i))) for i in range(200)]
        await first_running.wait()
        webhook = asyncio.create_task(repos.outbound.enqueue(record.id, 77, 5, "send", "{}"))
        await asyncio.sleep(0)  # the job is queued behind the held batch
        release.set()
        job = await webhook
        assert job is not None
        assert order == ["n0"]  # answered after the op in progress, before the other 199
        async with db.engine.connect() as other:  # committed, not just written
            rows = (await other.execute(select(JOBS.c.id).where(JOBS.c.chatwoot_message_id == 77))).all()
        assert [r[0] for r in rows] == [job.id]
        await asyncio.gather(*normal)
        assert order == [f"n{i}" for i in range(200)]
        loaded = await repos.integrations.get(record.id)
        assert loaded is not None and loaded.watermark == 199
    finally:
        await db.close()


async def test_enqueue_returns_the_ids_of_new_jobs_only(repos: Repositories) -> None:
    rid = "c" * 32
    first = await repos.outbound.enqueue(rid, 1, 9, "send", '{"n":1}')
    assert first is not None
    # one batch mixing a job already queued, two new ones and an in-batch duplicate
    results = await asyncio.gather(
        repos.outbound.enqueue(rid, 1, 9, "send", "{}"),
        repos.outbound.enqueue(rid, 2, 9, "send", '{"n":2}'),
        repos.outbound.enqueue(rid, 3, 9, "send", '{"n":3}'),
        repos.outbound.enqueue(rid, 3, 9, "send", "{}"),
    )
    assert results[0] is None and results[3] is None
    assert results[1] is not None and results[2] is not None
    by_id = {j.id: (j.chatwoot_message_id, j.payload) for j in await repos.outbound.pending(rid)}
    assert by_id == {
        first.id: (1, '{"n":1}'),
        results[1].id: (2, '{"n":2}'),
        results[2].id: (3, '{"n":3}'),
    }


async def test_a_failing_write_fails_alone_and_nobody_is_stranded(database_url: str) -> None:
    """A write that raises inside a shared transaction gets its error; its neighbours (normal and
    urgent, committed or handed back to the lane) all complete."""
    db = BridgeDB(database_url)
    await db.migrate()
    db.start()
    repos = Repositories.create(db)
    record = _record("b" * 32)
    await repos.integrations.insert(record)

    def write(mark: int) -> Any:
        async def op(conn: AsyncConnection) -> int:
            if mark == 13:
                raise ValueError("bad write")
            await conn.execute(
                update(INTEGRATIONS).where(INTEGRATIONS.c.id == record.id).values(watermark=mark)
            )
            return mark

        return op

    try:
        normal = [asyncio.create_task(db.writer.submit(write(i))) for i in range(50)]
        await asyncio.sleep(0)
        urgent = [
            asyncio.create_task(repos.outbound.enqueue(record.id, 500 + i, 5, "send", "{}")) for i in range(5)
        ]
        results = await asyncio.gather(*normal, return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == [results[13]]
        assert isinstance(results[13], ValueError)
        assert [r for i, r in enumerate(results) if i != 13] == [i for i in range(50) if i != 13]
        jobs = await asyncio.gather(*urgent)
        assert all(job is not None for job in jobs)
        assert len(await repos.outbound.pending(record.id)) == 5
    finally:
        await db.close()


async def test_the_messages_a_reply_answers_span_a_restart(database_url: str) -> None:
    """What this process relayed comes from memory, what a previous one relayed from the database:
    the first reply after a restart still marks the customer's earlier messages read."""
    rid = "e" * 32

    async def customer(repos: Repositories, wa_id: str, cw_id: int, conversation: int = 1) -> None:
        await repos.messages.record(
            rid, wa_message_id=wa_id, chatwoot_message_id=cw_id, conversation_id=conversation,
            chat_jid="x", direction="in",
        )  # fmt: skip

    db = BridgeDB(database_url)
    await db.migrate()
    db.start()
    before = Repositories.create(db)
    await customer(before, "OLD1", 10)
    await customer(before, "OTHER", 11, conversation=2)
    await customer(before, "OLD2", 12)
    await db.close()

    db = BridgeDB(database_url)  # a new process on the same database
    db.start()
    repos = Repositories.create(db)
    try:
        await customer(repos, "NEW1", 20)
        await customer(repos, "NEW2", 30)

        async def between(integration: str, conversation: int, **bounds: int) -> list[str]:
            found = await repos.messages.inbound_between(integration, conversation, **bounds)
            return [wa_id for wa_id, _sender in found]

        assert await between(rid, 1, after=0, before=25, limit=100) == ["OLD1", "OLD2", "NEW1"]
        assert await between(rid, 1, after=0, before=40, limit=2) == ["NEW1", "NEW2"]  # the newest
        assert await between(rid, 1, after=12, before=40, limit=100) == ["NEW1", "NEW2"]
        assert await between(rid, 2, after=0, before=40, limit=100) == ["OTHER"]
        repos.messages.forget_inbound(rid, 1, before=25)  # a reply at 25 marked them read
        assert await between(rid, 1, after=25, before=40, limit=100) == ["NEW2"]
    finally:
        await db.close()


async def test_a_conversation_with_more_unread_than_remembered_is_read_from_the_database(
    repos: Repositories,
) -> None:
    rid = "f" * 32
    for i in range(1, 41):  # more than the store remembers per conversation
        await repos.messages.record(
            rid, wa_message_id=f"M{i:02d}", chatwoot_message_id=i, conversation_id=1, chat_jid="x",
            direction="in",
        )  # fmt: skip
    unread = await repos.messages.inbound_between(rid, 1, after=0, before=100, limit=100)
    assert [wa_id for wa_id, _sender in unread] == [f"M{i:02d}" for i in range(1, 41)]
