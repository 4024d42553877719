"""A message and its event-log row commit in one transaction: a crash (or a failed commit) between
them cannot keep the message and lose its event (PRODUCT.md §6, "a crash loses nothing")."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.engines.simulated import Inbound

from .fake_bridge import FakeBridge
from .harness import Ryze
from .test_link import CONTACT, LinkClient, link, linked_instance, texts_of


async def _rows(ryze: Ryze, instance: str, wa_id: str) -> tuple[int, int]:
    """(message rows with ``wa_id``, event-log rows of ``instance`` that carry it)."""
    async with ryze.services.db.engine.connect() as conn:
        messages = await conn.scalar(text("SELECT count(*) FROM messages WHERE wa_id = :i"), {"i": wa_id})
        payloads = (
            await conn.execute(
                text("SELECT payload FROM chatwoot_event_log WHERE instance_name = :n"), {"n": instance}
            )
        ).scalars()
        events = sum(1 for p in payloads if wa_id in p)
    return int(messages or 0), events


async def test_a_failed_shared_commit_keeps_neither_row_and_the_redelivery_stores_both(
    ryze: Ryze, fake_bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await linked_instance(ryze, "atomic")
    [writer] = ryze.services.bus.writers
    real_write = writer.write

    async def write_then_fail(conn: AsyncConnection, items: list[Any]) -> Any:
        await real_write(conn, items)  # both rows are written in the transaction ...
        raise RuntimeError("crash before the commit")  # ... which never commits

    message = Inbound(sender=CONTACT, text="all or nothing", id="3EB0ATOMIC000001")
    async with link(ryze, "atomic", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        await client.events(ready["pending"])  # the instance's state events so far

        monkeypatch.setattr(writer, "write", write_then_fail)
        with pytest.raises(RuntimeError, match="crash before the commit"):
            await session.deliver([message])
        assert await _rows(ryze, "atomic", message.id or "") == (0, 0)
        assert await client.until_pong() == []  # nothing was offered

        monkeypatch.setattr(writer, "write", real_write)
        await session.deliver([message])  # WhatsApp's redelivery
        assert await _rows(ryze, "atomic", message.id or "") == (1, 1)
        [offered] = await client.events(1)
        assert texts_of([offered]) == ["all or nothing"]
        await client.send({"type": "ack", "seq": offered["seq"]})
        await session.deliver([message])  # a duplicate now: stored and logged once
        assert await client.until_pong() == []
    async with ryze.services.db.engine.connect() as conn:
        stored = await conn.scalar(text("SELECT count(*) FROM messages WHERE wa_id = :i"), {"i": message.id})
    assert stored == 1


async def test_the_message_row_and_its_event_row_share_one_transaction(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    session = await linked_instance(ryze, "onecommit")
    sync_engine = ryze.services.db.engine.sync_engine
    trace: list[tuple[str, int]] = []  # (what, connection id), in order

    def on_begin(conn: Any) -> None:
        trace.append(("begin", id(conn.connection.dbapi_connection)))

    def on_commit(conn: Any) -> None:
        trace.append(("commit", id(conn.connection.dbapi_connection)))

    def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0].upper() == "INSERT":
            trace.append((f"insert {words[2].strip(chr(34))}", id(conn.connection.dbapi_connection)))

    event.listen(sync_engine, "begin", on_begin)
    event.listen(sync_engine, "commit", on_commit)
    event.listen(sync_engine, "before_cursor_execute", on_execute)
    try:
        await session.deliver([Inbound(sender=CONTACT, text="one transaction", id="3EB0ONECOMMIT001")])
    finally:
        event.remove(sync_engine, "begin", on_begin)
        event.remove(sync_engine, "commit", on_commit)
        event.remove(sync_engine, "before_cursor_execute", on_execute)

    commits = [c for what, c in trace if what == "commit"]
    assert len(commits) == 1, trace
    inserts = [(what, c) for what, c in trace if what.startswith("insert")]
    assert {what for what, _ in inserts} >= {"insert messages", "insert chatwoot_event_log"}, trace
    assert {c for _, c in inserts} == set(commits)  # on the connection that committed
    begin = max(i for i, (what, _) in enumerate(trace) if what == "begin")
    commit = trace.index(("commit", commits[0]))
    assert all(begin < trace.index(item) < commit for item in inserts)  # inside that transaction
    assert await _rows(ryze, "onecommit", "3EB0ONECOMMIT001") == (1, 1)
