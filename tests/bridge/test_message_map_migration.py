"""Migration 0002: mapping rows written before it are carried forward as plain messages, and the
new columns (kind, target, sender, receipt) answer what a reaction, edit or revoke looks up."""

from __future__ import annotations

import time

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from ryze.bridge.store.db import MIGRATIONS, BridgeDB
from ryze.bridge.store.repositories import Repositories


def _to(revision: str):  # type: ignore[no-untyped-def]
    def run(sync_conn: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    return run


async def test_rows_of_the_old_schema_are_carried_forward(database_url: str) -> None:
    db = BridgeDB(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(_to("0001_bridge"))
        await conn.execute(
            text(
                "INSERT INTO bridge_message_map (integration_id, wa_message_id, part, chatwoot_message_id,"
                " conversation_id, chat_jid, direction, state, seq, created_at)"
                " VALUES ('i1', 'OLD', 0, 7, 3, '1@s.whatsapp.net', 'in', 'done', 1, :now)"
            ),
            {"now": time.time()},
        )
    await db.migrate()  # to head, as a start does
    db.start()
    try:
        repos = Repositories.create(db)
        old = await repos.messages.find_wa("i1", "OLD")
        assert old is not None
        assert (old.chatwoot_message_id, old.kind, old.target_wa_id, old.sender_jid, old.receipt) == (
            7,
            "message",
            None,
            "",
            "",
        )
        await repos.messages.record(
            "i1",
            wa_message_id="R",
            chatwoot_message_id=8,
            conversation_id=3,
            chat_jid="1@s.whatsapp.net",
            direction="in",
            kind="reaction",
            target_wa_id="OLD",
            sender_jid="1@s.whatsapp.net",
        )
        [reaction] = await repos.messages.acting_on(
            "i1", "OLD", kind="reaction", sender_jid="1@s.whatsapp.net"
        )
        assert reaction.wa_message_id == "R"
        assert (
            await repos.messages.acting_on("i1", "OLD", kind="reaction", sender_jid="2@s.whatsapp.net") == []
        )
        await repos.messages.set_state("i1", "R", 0, "removed")
        await repos.messages.set_receipt("i1", "OLD", 0, "read")
        reread = await repos.messages.find_wa("i1", "R")
        assert reread is not None and reread.state == "removed"
        assert (await repos.messages.find_wa("i1", "OLD")).receipt == "read"  # type: ignore[union-attr]
    finally:
        await db.close()
