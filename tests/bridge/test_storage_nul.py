"""U+0000 in text the bridge stores: PostgreSQL's text/varchar refuse it ("invalid byte sequence
for encoding UTF8: 0x00"), SQLite keeps it. On both, it is written as U+FFFD, every write succeeds,
and a lookup by the same value still finds its row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.models import NUL_REPLACEMENT
from ryze.bridge.store.repositories import ChatRecord, Repositories

from .test_storage import _record

TEXT = "refused: a\u0000b"
STORED = "refused: a" + NUL_REPLACEMENT + "b"


@pytest.fixture
async def repos(database_url: str) -> AsyncIterator[Repositories]:
    db = BridgeDB(database_url)
    await db.migrate()
    db.start()
    yield Repositories.create(db)
    await db.close()


async def test_free_text_with_nul_is_stored_on_both_databases(repos: Repositories) -> None:
    record = _record()
    record.inbox_name = "Shop\u0000"
    await repos.integrations.insert(record)
    await repos.integrations.update(record.id, last_error=TEXT)
    loaded = await repos.integrations.get(record.id)
    assert loaded is not None and loaded.last_error == STORED and loaded.inbox_name == "Shop\ufffd"

    job = await repos.outbound.enqueue(record.id, 5, 3, "send", '{"content":"a\\u0000b"}')
    assert job is not None
    await repos.outbound.update(job.id, last_error=TEXT)
    await repos.outbound.finish(job.id, "failed", TEXT)
    stored_job = await repos.outbound.find_by_message(record.id, 5)
    assert stored_job is not None and stored_job.state == "failed" and stored_job.last_error == STORED
    assert stored_job.payload == '{"content":"a\\u0000b"}'  # JSON's escape is kept as received

    await repos.messages.record_failure(record.id, 9, TEXT, wa_message_id="WA\u0000ID")
    [failure] = await repos.messages.failures(record.id)
    assert failure["error"] == STORED and failure["wa_message_id"] == "WA\ufffdID"


async def test_ids_with_nul_are_found_again_by_the_same_value(repos: Repositories) -> None:
    record = _record()
    await repos.integrations.insert(record)
    await repos.messages.record(
        record.id,
        wa_message_id="ID\u0000X",
        chatwoot_message_id=11,
        conversation_id=3,
        chat_jid="55\u000011@s.whatsapp.net",
        direction="in",
    )
    assert await repos.messages.seen(record.id, "ID\u0000X")
    found = await repos.messages.find_wa(record.id, "ID\u0000X")
    assert found is not None and found.chatwoot_message_id == 11
    jid = "a\u0000@s.whatsapp.net"
    chat = ChatRecord(chat_key=jid, contact_id=1, conversation_id=3, conversation_status="open")
    await repos.chats.save(record.id, chat, [jid])
    again = await repos.chats.find(record.id, [jid])
    assert again is not None and again.contact_id == 1
