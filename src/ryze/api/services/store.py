"""The message store: every message an instance sent or received, unique per (instance, WhatsApp id).

Writes go through a group committer (``ryze.common.database.GroupCommitter``): inserts that arrive
while a commit is in flight (many sessions, many chats) share the next transaction, so the fsync
cost is paid once per batch.
A message may carry the rows of transactional subscribers (``EventBus`` log writers, e.g. the
Chatwoot module's event log): those of the batch's new messages are written in the same
transaction, so a message and its event commit together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ryze.api.db import Database
from ryze.api.db.models import MessageRow, utcnow
from ryze.api.events import LogWriter
from ryze.api.records import StoredMessage, StoreReceipt
from ryze.api.services.storable import storable_key, storable_text
from ryze.common.database import GroupCommitter, Transaction
from ryze.engines.base import WhatsAppMessage

log = logging.getLogger(__name__)

_Pending = tuple[dict[str, Any], Sequence[tuple[LogWriter, Any]]]
_NEW, _NOT_NEW = StoreReceipt(True), StoreReceipt(False)
_KEPT_LIMIT = 10_000


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        table: Table = MessageRow.__table__  # type: ignore[assignment]  # a declarative class's Table
        insert = sqlite_insert if db.is_sqlite else pg_insert
        # One statement, built once: SQLAlchemy caches its compiled form, and a batch goes out as
        # one multi-row INSERT that reports which rows were new.
        self._insert = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["instance_id", "wa_id"])
            .returning(table.c.instance_id, table.c.wa_id)
        )
        self._committer: GroupCommitter[_Pending, StoreReceipt] = GroupCommitter(
            db.engine, self._commit, name="message store"
        )
        # The records of own sends this store just inserted (``add(..., keep=True)``), for the
        # sender to answer from instead of reading the row back (``take_kept``). The engine
        # reports a send through its sink, not to its caller, so the record waits here, with the
        # rows it describes. Bounded: a caller that failed before taking its record leaves it.
        self._kept: dict[tuple[str, str], StoredMessage] = {}

    @staticmethod
    def row_values(
        instance_id: str, msg: WhatsAppMessage, source: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        media = msg.media
        # Every string a message carries is storable on PostgreSQL (U+0000 replaced, see storable).
        values = {
            "instance_id": instance_id,
            "wa_id": msg.id,
            "chat_jid": msg.chat.jid,
            "sender_jid": msg.sender.jid,
            "from_me": msg.from_me,
            "kind": msg.kind,
            "source": source,
            "timestamp": msg.timestamp,
            "text": msg.text,
            "target_id": msg.target_id,
            "media_kind": media.kind if media else None,
            "media_mimetype": media.mimetype if media else None,
            "media_file_name": media.file_name if media else None,
            "media_handle": media.handle if media else None,
            "payload": payload,
            "created_at": utcnow(),
        }
        return {k: storable_text(v) if isinstance(v, str) else v for k, v in values.items()}

    async def add(
        self, values: dict[str, Any], events: Sequence[tuple[LogWriter, Any]] = (), *, keep: bool = False
    ) -> StoreReceipt:
        """Insert one message; its receipt says whether it was new (not already stored under
        (instance, WhatsApp id)) and which ``events`` items were committed with it.

        ``events``: (writer, item) pairs written in the same transaction when the message is new.
        ``keep``: a new row's record is kept for one ``take_kept`` (an own send's caller).
        """
        receipt = await self._committer.submit((values, events))
        if keep and receipt.new:
            self._kept[(values["instance_id"], values["wa_id"])] = stored_from_values(values, receipt.logged)
            while len(self._kept) > _KEPT_LIMIT:
                del self._kept[next(iter(self._kept))]
        return receipt

    def take_kept(self, instance_id: str, wa_id: str) -> StoredMessage | None:
        """The record ``add(..., keep=True)`` kept of a row it inserted (once), or None: ``get``."""
        return self._kept.pop((instance_id, wa_id), None)

    async def _commit(self, transaction: Transaction, batch: list[_Pending]) -> list[StoreReceipt]:
        """One multi-row insert for the batch (and its writers' rows); each message's receipt."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for values, _ in batch:
            rows.setdefault((values["instance_id"], values["wa_id"]), values)
        inserted = await self._write(transaction, list(rows.values()), batch)
        out: list[StoreReceipt] = []
        for values, events in batch:
            key = (values["instance_id"], values["wa_id"])
            # Only the first of in-batch duplicates counts as new (and had its events written).
            if key in inserted:
                inserted.discard(key)
                out.append(StoreReceipt(True, tuple(item for _, item in events)) if events else _NEW)
            else:
                out.append(_NOT_NEW)
        return out

    async def _write(
        self, transaction: Transaction, rows: list[dict[str, Any]], batch: list[_Pending]
    ) -> set[tuple[str, str]]:
        writers: list[LogWriter] = []
        for _, events in batch:
            for writer, _ in events:
                if writer not in writers:
                    writers.append(writer)
        async with contextlib.AsyncExitStack() as stack:
            # The writers' locks before the write lock (the order their own commits take them in),
            # held until their post-commit bookkeeping is done.
            for writer in writers:
                await stack.enter_async_context(writer.lock())
            states: list[tuple[LogWriter, Any]] = []
            try:
                async with transaction() as conn:
                    result = await conn.execute(self._insert, rows)
                    inserted = {(row[0], row[1]) for row in result}
                    if writers:
                        items: dict[LogWriter, list[Any]] = {w: [] for w in writers}
                        fresh = set(inserted)
                        for values, events in batch:
                            key = (values["instance_id"], values["wa_id"])
                            if key not in fresh:
                                continue
                            fresh.discard(key)  # only the first of in-batch duplicates is new
                            for writer, item in events:
                                items[writer].append(item)
                        for writer, pending in items.items():
                            if pending:
                                states.append((writer, await writer.write(conn, pending)))
            except BaseException:
                for writer, state in states:
                    writer.rolled_back(state)
                raise
            for writer, state in states:
                writer.committed(state)
        return inserted

    async def aclose(self) -> None:
        """Finish pending writes and release the writer's connection (before the engine is disposed)."""
        await self._committer.aclose()

    async def get(self, instance_id: str, wa_id: str) -> StoredMessage | None:
        if not storable_key(wa_id):
            return None
        async with self._db.session() as session:
            row = await session.scalar(
                select(MessageRow).where(MessageRow.instance_id == instance_id, MessageRow.wa_id == wa_id)
            )
        return _stored(row) if row is not None else None

    async def get_row(self, instance_id: str, wa_id: str) -> MessageRow | None:
        if not storable_key(wa_id):
            return None
        async with self._db.session() as session:
            return await session.scalar(
                select(MessageRow).where(MessageRow.instance_id == instance_id, MessageRow.wa_id == wa_id)
            )

    async def fill_media_handle(self, instance_id: str, wa_id: str, handle: bytes) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(MessageRow)
                .where(
                    MessageRow.instance_id == instance_id,
                    MessageRow.wa_id == wa_id,
                    or_(MessageRow.media_handle.is_(None), MessageRow.media_handle == b""),
                )
                .values(media_handle=handle)
            )
            await session.commit()

    async def apply_edit(self, instance_id: str, target_id: str, text: str) -> None:
        """Keep the stored text current so a later quote shows the edited words."""
        async with self._db.session() as session:
            await session.execute(
                update(MessageRow)
                .where(MessageRow.instance_id == instance_id, MessageRow.wa_id == target_id)
                .values(text=text)
            )
            await session.commit()


def stored_from_values(values: dict[str, Any], logged: tuple[Any, ...] = ()) -> StoredMessage:
    """The record ``get`` would read back for a row just inserted from ``values`` (``row_values``),
    with the send receipt's ``logged`` items."""
    payload: dict[str, Any] = values["payload"] or {}
    media = payload.get("media") or {}
    return StoredMessage(
        id=values["wa_id"],
        chat=values["chat_jid"],
        sender=values["sender_jid"],
        from_me=values["from_me"],
        timestamp=values["timestamp"],
        kind=values["kind"],
        text=values["text"],
        source=values["source"],
        media_mimetype=values["media_mimetype"],
        media_file_name=values["media_file_name"],
        media_size=media.get("size"),
        payload=dict(payload),
        logged=logged,
    )


def _stored(row: MessageRow) -> StoredMessage:
    media = (row.payload or {}).get("media") or {}
    return StoredMessage(
        id=row.wa_id,
        chat=row.chat_jid,
        sender=row.sender_jid,
        from_me=row.from_me,
        timestamp=row.timestamp,
        kind=row.kind,
        text=row.text,
        source=row.source,
        media_mimetype=row.media_mimetype,
        media_file_name=row.media_file_name,
        media_size=media.get("size"),
        payload=dict(row.payload or {}),
    )
