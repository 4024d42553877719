"""A bridge command's sent message and its stored result commit in one transaction (SQLite and
PostgreSQL): the common path writes no result of its own, and a crash can never keep the message
without the result a replay must answer (nor the result without the message)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.protocol import ResultFrame

from .fake_bridge import FakeBridge
from .harness import Ryze
from .test_link import CONTACT, LinkClient, link, linked_instance


def send_text(cid: str, body: str) -> dict[str, Any]:
    return {"type": "command", "id": cid, "action": "send_text", "params": {"to": CONTACT, "text": body}}


async def _state(ryze: Ryze, instance: str, cid: str) -> tuple[str, str] | None:
    async with ryze.services.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT state, result FROM chatwoot_commands WHERE instance_name = :i AND command_id = :c"
                ),
                {"i": instance, "c": cid},
            )
        ).first()
    return (row[0], row[1]) if row is not None else None


async def _messages(ryze: Ryze, body: str) -> list[str]:
    async with ryze.services.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT wa_id FROM messages WHERE text = :t"), {"t": body})
        return [r[0] for r in rows]


async def test_the_result_is_stored_by_the_sent_message_transaction(
    ryze: Ryze, fake_bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    await linked_instance(ryze, "fold")
    runner = ryze.module.commands
    separate: list[str] = []
    real_finish = runner._finish

    async def finish(instance: str, command_id: str, result: ResultFrame) -> None:
        separate.append(command_id)
        await real_finish(instance, command_id, result)

    monkeypatch.setattr(runner, "_finish", finish)
    sync_engine = ryze.services.db.engine.sync_engine
    trace: list[tuple[str, int]] = []  # (what, connection id), in order

    def on_commit(conn: Any) -> None:
        trace.append(("commit", id(conn.connection.dbapi_connection)))

    def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0].upper() in ("INSERT", "UPDATE"):
            table = words[2] if words[0].upper() == "INSERT" else words[1]
            trace.append((f"{words[0].lower()} {table.strip(chr(34))}", id(conn.connection.dbapi_connection)))

    async with link(ryze, "fold", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        await client.events(ready["pending"])
        event.listen(sync_engine, "commit", on_commit)
        event.listen(sync_engine, "before_cursor_execute", on_execute)
        try:
            await client.send(send_text("cw-fold-1-0", "folded"))
            result = await client.recv()
        finally:
            event.remove(sync_engine, "commit", on_commit)
            event.remove(sync_engine, "before_cursor_execute", on_execute)
    assert result["type"] == "result" and result["ok"] is True
    assert separate == []  # no result write of its own
    [wa_id] = await _messages(ryze, "folded")
    assert result["wa_message_id"] == wa_id
    stored = await _state(ryze, "fold", "cw-fold-1-0")
    assert stored is not None and stored[0] == "done"
    assert ResultFrame.model_validate_json(stored[1]) == ResultFrame.model_validate(result)
    # Two commits: the claim, then the message with its result (same connection, same commit).
    commits = [i for i, (what, _) in enumerate(trace) if what == "commit"]
    assert len(commits) == 2, trace
    claim, message = commits
    assert trace[:claim] == [("insert chatwoot_commands", trace[claim][1])], trace
    writes = {what for what, _ in trace[claim + 1 : message]}
    assert writes == {"insert messages", "update chatwoot_commands"}, trace
    assert {c for _, c in trace[claim + 1 : message + 1]} == {trace[message][1]}, trace


async def test_a_failed_message_commit_keeps_no_message_and_answers_sent(
    ryze: Ryze, fake_bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    await linked_instance(ryze, "nofold")
    recorder = ryze.module.commands.recorder
    real_write = recorder.write

    async def write_then_fail(conn: AsyncConnection, items: list[Any]) -> Any:
        await real_write(conn, items)  # the result is written in the transaction ...
        raise RuntimeError("crash before the commit")  # ... which never commits

    monkeypatch.setattr(recorder, "write", write_then_fail)
    async with link(ryze, "nofold", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        await client.events(ready["pending"])
        await client.send(send_text("cw-nofold-1-0", "lost"))
        result = await client.recv()
    # The message went out before its transaction failed: answered as sent, never "retry".
    assert result["type"] == "result" and result["ok"] is True and result["wa_message_id"]
    # The message row and the recorder's result rolled back together ...
    assert await _messages(ryze, "lost") == []
    # ... and the runner stored the answer itself, so a replay cannot send it again.
    stored = await _state(ryze, "nofold", "cw-nofold-1-0")
    assert stored is not None and stored[0] == "done"
    assert ResultFrame.model_validate_json(stored[1]) == ResultFrame.model_validate(result)
