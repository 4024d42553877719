"""Repositories: all SQL of the bridge lives here (Core statements on the ORM tables)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.bridge.store.db import Batcher, BridgeDB
from ryze.bridge.store.models import (
    Chat,
    ChatAlias,
    ControlRoomRow,
    InboundFailure,
    Integration,
    MessageMap,
    OutboundJob,
    SelfCheck,
    nul_free,
)
from ryze.bridge.store.transient import WEBHOOK_WRITE_BUDGET, retry_transient

INTEGRATIONS: Table = Integration.__table__  # type: ignore[assignment]
CHATS: Table = Chat.__table__  # type: ignore[assignment]
ALIASES: Table = ChatAlias.__table__  # type: ignore[assignment]
MAP: Table = MessageMap.__table__  # type: ignore[assignment]
FAILURES: Table = InboundFailure.__table__  # type: ignore[assignment]
JOBS: Table = OutboundJob.__table__  # type: ignore[assignment]
SELFCHECKS: Table = SelfCheck.__table__  # type: ignore[assignment]

# Rows that are a customer's message of their own (a live location's start is one; its updates,
# like reactions and edits, act on it): what a read mark marks and an agent's reply answers.
INBOUND_MESSAGE_KINDS = ("message", "live")
CONTROL: Table = ControlRoomRow.__table__  # type: ignore[assignment]


def insert_ignore(conn: AsyncConnection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


# ------------------------------------------------------------------------------------------ integrations


@dataclass
class IntegrationRecord:
    id: str
    instance: str
    ryzeapi_url: str
    chatwoot_base_url: str
    chatwoot_account_id: int
    token_enc: str
    inbox_id: int
    inbox_name: str
    inbox_secret_enc: str
    path_secret_hash: str
    sign_messages: bool
    ignore_groups: bool
    start_as_pending: bool
    reopen_resolved: bool
    status: str
    last_error: str
    operator_paused: bool
    watermark: int
    created_at: float
    updated_at: float
    history_days: int = 7
    history_state: str = "idle"
    history_received: int = 0
    history_imported: int = 0
    history_skipped: int = 0
    history_duplicates: int = 0
    history_started_at: float = 0.0
    history_finished_at: float = 0.0
    last_webhook_at: float = 0.0

    @classmethod
    def from_row(cls, row: Any) -> IntegrationRecord:
        return cls(**{key: row._mapping[key] for key in cls.__dataclass_fields__})

    def values(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


class IntegrationRepository:
    def __init__(self, db: BridgeDB) -> None:
        self.db = db
        # Every link persists its watermark a few times a second under load: one executemany for
        # all of them instead of one UPDATE statement each inside the group commit.
        self._watermarks = Batcher(self._save_watermarks)

    async def get(self, integration_id: str) -> IntegrationRecord | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(select(INTEGRATIONS).where(INTEGRATIONS.c.id == integration_id))
            ).first()
        return IntegrationRecord.from_row(row) if row else None

    async def list_all(self) -> list[IntegrationRecord]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(INTEGRATIONS).order_by(INTEGRATIONS.c.created_at))).all()
        return [IntegrationRecord.from_row(r) for r in rows]

    async def insert(self, record: IntegrationRecord) -> None:
        async def op(conn: AsyncConnection) -> Any:
            await conn.execute(insert(INTEGRATIONS).values(**record.values()))

        await self.db.writer.submit(op)

    async def update(self, integration_id: str, **values: Any) -> None:
        if values.keys() == {"watermark"}:
            await self._watermarks((integration_id, int(values["watermark"]), time.time()))
            return
        values["updated_at"] = time.time()

        async def op(conn: AsyncConnection) -> Any:
            await conn.execute(
                update(INTEGRATIONS).where(INTEGRATIONS.c.id == integration_id).values(**values)
            )

        await self.db.writer.submit(op)

    async def _save_watermarks(self, items: list[tuple[str, int, float]]) -> list[None]:
        rows = [{"k": key, "w": mark, "u": at} for key, mark, at in items]  # in order: the last one wins

        async def op(conn: AsyncConnection) -> Any:
            await conn.execute(
                update(INTEGRATIONS)
                .where(INTEGRATIONS.c.id == bindparam("k"))
                .values(watermark=bindparam("w"), updated_at=bindparam("u")),
                rows,
            )

        await self.db.writer.submit(op)
        return [None] * len(items)

    async def delete(self, integration_id: str) -> None:
        """Remove the integration and everything the bridge kept for it."""

        async def op(conn: AsyncConnection) -> Any:
            for table in (CHATS, ALIASES, MAP, FAILURES, JOBS, SELFCHECKS, CONTROL):
                await conn.execute(delete(table).where(table.c.integration_id == integration_id))
            await conn.execute(delete(INTEGRATIONS).where(INTEGRATIONS.c.id == integration_id))

        await self.db.writer.submit(op)


# ------------------------------------------------------------------------------------------ chats


@dataclass
class ChatRecord:
    chat_key: str
    contact_id: int
    conversation_id: int | None
    conversation_status: str
    contact_name: str | None = None  # the name the bridge last gave the contact (None: never)
    avatar_id: str | None = None  # the WhatsApp picture id last uploaded as the contact's avatar
    avatar_checked_at: float | None = None  # when WhatsApp was last asked for the picture


def _chat(m: Any) -> ChatRecord:
    return ChatRecord(
        m["chat_key"],
        m["contact_id"],
        m["conversation_id"],
        m["conversation_status"],
        m["contact_name"],
        m["avatar_id"],
        m["avatar_checked_at"],
    )


class ChatRepository:
    def __init__(self, db: BridgeDB) -> None:
        self.db = db

    async def find(self, integration_id: str, jids: list[str]) -> ChatRecord | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(CHATS)
                    .join(
                        ALIASES,
                        and_(
                            ALIASES.c.integration_id == CHATS.c.integration_id,
                            ALIASES.c.chat_key == CHATS.c.chat_key,
                        ),
                    )
                    .where(ALIASES.c.integration_id == integration_id, ALIASES.c.jid.in_(jids))
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        return _chat(row._mapping)

    async def find_all(self, integration_id: str, jids: list[str]) -> list[ChatRecord]:
        """Every chat known by one of ``jids`` (two when a person's PN and LID chats were resolved
        separately before WhatsApp said they are one), oldest first."""
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(CHATS)
                    .where(
                        CHATS.c.integration_id == integration_id,
                        CHATS.c.chat_key.in_(
                            select(ALIASES.c.chat_key).where(
                                ALIASES.c.integration_id == integration_id, ALIASES.c.jid.in_(jids)
                            )
                        ),
                    )
                    .order_by(CHATS.c.updated_at)
                )
            ).all()
        return [_chat(row._mapping) for row in rows]

    async def chat_of_conversation(self, integration_id: str, conversation_id: int) -> str | None:
        """The chat key mapped to a Chatwoot conversation, if any (read on resolution only)."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(CHATS.c.chat_key)
                    .where(
                        CHATS.c.integration_id == integration_id, CHATS.c.conversation_id == conversation_id
                    )
                    .limit(1)
                )
            ).first()
        return None if row is None else str(row[0])

    async def save(self, integration_id: str, chat: ChatRecord, aliases: list[str]) -> None:
        now = time.time()
        values = {
            "contact_id": chat.contact_id,
            "conversation_id": chat.conversation_id,
            "conversation_status": chat.conversation_status,
            "contact_name": chat.contact_name,
            "avatar_id": chat.avatar_id,
            "avatar_checked_at": chat.avatar_checked_at,
        }

        async def op(conn: AsyncConnection) -> Any:
            result = await conn.execute(
                update(CHATS)
                .where(CHATS.c.integration_id == integration_id, CHATS.c.chat_key == chat.chat_key)
                .values(**values, updated_at=now)
            )
            if result.rowcount == 0:
                await conn.execute(
                    insert_ignore(conn, CHATS).values(
                        integration_id=integration_id, chat_key=chat.chat_key, **values, updated_at=now
                    )
                )
            for jid in {*aliases, chat.chat_key}:
                await conn.execute(
                    insert_ignore(conn, ALIASES).values(
                        integration_id=integration_id, jid=jid, chat_key=chat.chat_key
                    )
                )

        await self.db.writer.submit(op)

    async def move_aliases(self, integration_id: str, jids: list[str], chat_key: str) -> None:
        """Point ``jids`` at ``chat_key`` (after a PN/LID contact merge: one person, one chat)."""

        async def op(conn: AsyncConnection) -> Any:
            await conn.execute(
                update(ALIASES)
                .where(ALIASES.c.integration_id == integration_id, ALIASES.c.jid.in_(jids))
                .values(chat_key=chat_key)
            )

        await self.db.writer.submit(op)

    async def set_conversation_status(self, integration_id: str, conversation_id: int, status: str) -> None:
        async def op(conn: AsyncConnection) -> Any:
            await conn.execute(
                update(CHATS)
                .where(CHATS.c.integration_id == integration_id, CHATS.c.conversation_id == conversation_id)
                .values(conversation_status=status, updated_at=time.time())
            )

        # Normal lane, though a webhook waits for it: a burst of new chats brings a conversation_*
        # webhook per conversation, and as urgent writes they kept cutting the burst's own mapping
        # batches short (the first messages of 200 new chats took ≈ 1.0 s instead of ≈ 0.8 s).
        await self.db.writer.submit(op)


# ------------------------------------------------------------------------------------------ message map


@dataclass
class MappedMessage:
    wa_message_id: str
    part: int
    chatwoot_message_id: int | None
    conversation_id: int | None
    chat_jid: str
    direction: str
    state: str
    kind: str = "message"  # message | reaction | edit | revoke
    target_wa_id: str | None = None  # the WhatsApp message a reaction, edit or revoke acts on
    sender_jid: str = ""
    receipt: str = ""  # the highest receipt status applied in Chatwoot ("", delivered, read)
    created_at: float = 0.0  # when the bridge wrote the row (its clock)


def _mapped(row: Any) -> MappedMessage:
    m = row._mapping
    return MappedMessage(
        m["wa_message_id"],
        m["part"],
        m["chatwoot_message_id"],
        m["conversation_id"],
        m["chat_jid"],
        m["direction"],
        m["state"],
        m["kind"],
        m["target_wa_id"],
        m["sender_jid"],
        m["receipt"],
        m["created_at"],
    )


# The customer's messages relayed by this process, remembered per conversation until an agent's
# reply marks them read: the read-mark look-up then needs no query (see inbound_between).
_RECENT_PER_CONVERSATION = 32
_RECENT_CONVERSATIONS_MAX = 10_000


class MessageMapRepository:
    def __init__(self, db: BridgeDB) -> None:
        self.db = db
        self._seen = Batcher(self._seen_many)
        self._writes = Batcher(self._record_many)
        # (integration, conversation) → the newest Chatwoot id of a customer message relayed there
        # by this process: lets an agent's reply skip the read-mark look-up when nothing came in.
        self._latest_inbound: dict[tuple[str, int], int] = {}
        # (integration, conversation) → (Chatwoot id, WhatsApp id, sender) of the customer's messages this
        # process relayed there and no reply has marked read yet, oldest first (bounded)
        self._recent_inbound: dict[tuple[str, int], deque[tuple[int, str, str]]] = {}
        # integration → the lowest Chatwoot id it noted since start (or since the last clear): any
        # row with a lower id may be another process's, and only the database knows those
        self._floor: dict[str, int] = {}
        # integration → a floor below which the database was found to hold no customer message
        # (a fresh integration, or one whose history is all this process's): nothing to look up
        self._none_below: dict[str, int] = {}

    # -------------------------------------------------------------- hot path (batched)

    async def seen(self, integration_id: str, wa_message_id: str) -> bool:
        """Whether any part of this WhatsApp message is mapped (batched with concurrent callers)."""
        return await self._seen((integration_id, wa_message_id))

    async def _seen_many(self, keys: list[tuple[str, str]]) -> list[bool]:
        unique = list(dict.fromkeys(keys))
        found: set[tuple[str, str]] = set()
        async with self.db.connect() as conn:
            for start in range(0, len(unique), 200):
                chunk = unique[start : start + 200]
                rows = await conn.execute(
                    select(MAP.c.integration_id, MAP.c.wa_message_id).where(
                        tuple_(MAP.c.integration_id, MAP.c.wa_message_id).in_(chunk)
                    )
                )
                found.update((str(r[0]), str(r[1])) for r in rows)
        return [(key[0], nul_free(key[1])) in found for key in keys]  # stored ids are NUL-free

    async def _record_many(self, rows: list[dict[str, Any]]) -> list[None]:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(insert_ignore(conn, MAP), rows)

        await self.db.writer.submit(op)
        return [None] * len(rows)

    async def find_wa(self, integration_id: str, wa_message_id: str, part: int = 0) -> MappedMessage | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(MAP).where(
                        MAP.c.integration_id == integration_id,
                        MAP.c.wa_message_id == wa_message_id,
                        MAP.c.part == part,
                    )
                )
            ).first()
        return _mapped(row) if row else None

    async def find_wa_any(self, integration_id: str, wa_message_id: str) -> MappedMessage | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(MAP)
                    .where(MAP.c.integration_id == integration_id, MAP.c.wa_message_id == wa_message_id)
                    .order_by(MAP.c.part)
                    .limit(1)
                )
            ).first()
        return _mapped(row) if row else None

    async def find_chatwoot(self, integration_id: str, chatwoot_message_id: int) -> list[MappedMessage]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(MAP)
                    .where(
                        MAP.c.integration_id == integration_id,
                        MAP.c.chatwoot_message_id == chatwoot_message_id,
                    )
                    .order_by(MAP.c.part)
                )
            ).all()
        return [_mapped(r) for r in rows]

    async def acting_on(
        self, integration_id: str, target_wa_id: str, *, kind: str, sender_jid: str | None = None
    ) -> list[MappedMessage]:
        """The rows of ``kind`` acting on ``target_wa_id`` (from ``sender_jid`` when given), oldest first."""
        query = select(MAP).where(
            MAP.c.integration_id == integration_id,
            MAP.c.target_wa_id == target_wa_id,
            MAP.c.kind == kind,
        )
        if sender_jid is not None:
            query = query.where(MAP.c.sender_jid == sender_jid)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.order_by(MAP.c.id))).all()
        return [_mapped(r) for r in rows]

    async def latest_acting_on(
        self, integration_id: str, target_wa_id: str, *, kind: str
    ) -> MappedMessage | None:
        """The newest ``done`` row of ``kind`` acting on ``target_wa_id`` (the target index)."""
        query = (
            select(MAP)
            .where(
                MAP.c.integration_id == integration_id,
                MAP.c.target_wa_id == target_wa_id,
                MAP.c.kind == kind,
                MAP.c.state == "done",
            )
            .order_by(MAP.c.id.desc())
            .limit(1)
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _mapped(row) if row is not None else None

    async def set_state(self, integration_id: str, wa_message_id: str, part: int, state: str) -> None:
        """A mapped message's Chatwoot side changed: ``removed`` (a replaced reaction), ``deleted``."""
        await self._update(integration_id, wa_message_id, part, state=state)

    async def set_receipt(self, integration_id: str, wa_message_id: str, part: int, receipt: str) -> None:
        await self._update(integration_id, wa_message_id, part, receipt=receipt)

    async def _update(self, integration_id: str, wa_message_id: str, part: int, **values: Any) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(
                update(MAP)
                .where(
                    MAP.c.integration_id == integration_id,
                    MAP.c.wa_message_id == wa_message_id,
                    MAP.c.part == part,
                )
                .values(**values)
            )

        await self.db.writer.submit(op)

    def _note_inbound(
        self,
        integration_id: str,
        conversation_id: int,
        chatwoot_message_id: int,
        wa_message_id: str,
        sender_jid: str,
    ) -> None:
        if len(self._latest_inbound) >= 100_000:
            self._latest_inbound.clear()  # bounded; forgetting only costs a look-up (latest_inbound)
        key = (integration_id, conversation_id)
        if chatwoot_message_id > self._latest_inbound.get(key, 0):
            self._latest_inbound[key] = chatwoot_message_id
        recent = self._recent_inbound.get(key)
        if recent is None:
            if len(self._recent_inbound) >= _RECENT_CONVERSATIONS_MAX:
                # bounded; what was forgotten is below the new floors, so it is looked up again
                self._recent_inbound.clear()
                self._floor.clear()
                self._none_below.clear()
            recent = self._recent_inbound[key] = deque(maxlen=_RECENT_PER_CONVERSATION)
        recent.append((chatwoot_message_id, wa_message_id, sender_jid))
        floor = self._floor.get(integration_id)
        if floor is None or chatwoot_message_id < floor:
            self._floor[integration_id] = chatwoot_message_id

    def forget_inbound(self, integration_id: str, conversation_id: int, *, before: int) -> None:
        """An agent's reply ``before`` marked the customer's earlier messages read: they need not
        be remembered (a later reply asks only for what came after it)."""
        key = (integration_id, conversation_id)
        recent = self._recent_inbound.get(key)
        if recent is None:
            return
        kept = [item for item in recent if item[0] >= before]
        if len(kept) < len(recent):
            recent.clear()
            recent.extend(kept)

    def latest_inbound(self, integration_id: str, conversation_id: int) -> int | None:
        """The newest customer message this process relayed into the conversation (None: none
        since start, or forgotten)."""
        return self._latest_inbound.get((integration_id, conversation_id))

    async def inbound_between(
        self, integration_id: str, conversation_id: int, *, after: int, before: int, limit: int
    ) -> list[tuple[str, str]]:
        """(WhatsApp id, sender JID) of the customer's messages relayed into a conversation as
        Chatwoot messages ``after`` < id < ``before`` (the newest ``limit``, oldest first): what an
        agent's reply answers. The sender is what a group's read receipt names (one per author).
        Bounded by the (integration, Chatwoot id) index; Chatwoot ids only grow.

        What this process relayed is answered from memory: Chatwoot ids grow, so every message
        another process relayed (before a restart) has an id below the lowest this one noted (the
        integration's floor), and only ``after`` < id < floor is asked of the database — nothing
        at all once ``after`` is above the floor (a conversation's replies after its first one).
        A conversation whose memory overflowed asks the database below what it still holds."""
        floor = self._floor.get(integration_id)
        if floor is not None:
            recent = self._recent_inbound.get((integration_id, conversation_id), ())
            evicted = len(recent) >= _RECENT_PER_CONVERSATION
            if evicted:
                # full: some may have been evicted, so below its oldest kept memory is incomplete
                floor = max(floor, min(item[0] for item in recent))
            remembered = [(wa, sender) for cw, wa, sender in recent if after < cw < before and cw >= floor]
            older: list[tuple[str, str]] = []
            # The database's rows are all older than what memory holds: with ``limit`` remembered
            # they would be cut off below, so they need not be read. Below an evicted memory's
            # floor there are this process's own rows, so the integration-wide "none before"
            # probe would only find them: the conversation's rows are read at once (one query,
            # not two; the conversation index bounds it to this conversation's rows).
            if (
                len(remembered) < limit
                and after + 1 < floor
                and (evicted or not await self._none_before(integration_id, floor))
            ):
                older = await self._inbound_rows(
                    integration_id, conversation_id, after=after, before=floor, limit=limit
                )
            return (older + remembered)[-limit:]
        return await self._inbound_rows(
            integration_id, conversation_id, after=after, before=before, limit=limit
        )

    async def _none_before(self, integration_id: str, floor: int) -> bool:
        """Whether the database holds no customer message of the integration below ``floor``
        (asked once per integration and floor, not once per conversation)."""
        known = self._none_below.get(integration_id)
        if known is not None and floor <= known:
            return True
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(MAP.c.id)
                    .where(
                        MAP.c.integration_id == integration_id,
                        MAP.c.chatwoot_message_id < floor,
                        MAP.c.direction == "in",
                    )
                    .limit(1)
                )
            ).first()
        if row is not None:
            return False
        self._none_below[integration_id] = floor
        return True

    async def _inbound_rows(
        self, integration_id: str, conversation_id: int, *, after: int, before: int, limit: int
    ) -> list[tuple[str, str]]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(MAP.c.wa_message_id, MAP.c.sender_jid)
                    .where(
                        MAP.c.integration_id == integration_id,
                        MAP.c.chatwoot_message_id > after,
                        MAP.c.chatwoot_message_id < before,
                        MAP.c.conversation_id == conversation_id,
                        MAP.c.direction == "in",
                        MAP.c.kind.in_(INBOUND_MESSAGE_KINDS),  # not the customer's reactions or edits
                        MAP.c.part == 0,
                        MAP.c.state == "done",
                    )
                    .order_by(MAP.c.chatwoot_message_id.desc())
                    .limit(limit)
                )
            ).all()
        return [(str(r[0]), str(r[1])) for r in reversed(rows)]

    async def record(
        self,
        integration_id: str,
        *,
        wa_message_id: str,
        part: int = 0,
        chatwoot_message_id: int | None,
        conversation_id: int | None,
        chat_jid: str,
        direction: str,
        state: str = "done",
        seq: int | None = None,
        failure: str | None = None,
        kind: str = "message",
        target_wa_id: str | None = None,
        sender_jid: str = "",
    ) -> None:
        """Write the mapping row (group-committed); with ``failure`` also the visible failure record."""
        if (
            direction == "in"
            and kind in INBOUND_MESSAGE_KINDS
            and state == "done"
            and chatwoot_message_id
            and conversation_id
        ):
            self._note_inbound(
                integration_id, conversation_id, chatwoot_message_id, wa_message_id, sender_jid
            )
        values = {
            "kind": kind,
            "target_wa_id": target_wa_id,
            "sender_jid": sender_jid,
            "receipt": "",
            "integration_id": integration_id,
            "wa_message_id": wa_message_id,
            "part": part,
            "chatwoot_message_id": chatwoot_message_id,
            "conversation_id": conversation_id,
            "chat_jid": chat_jid,
            "direction": direction,
            "state": state,
            "seq": seq,
            "created_at": time.time(),
        }

        if failure is None:
            await self._writes(values)  # one executemany for every mapping row written meanwhile
            return

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(insert_ignore(conn, MAP).values(**values))
            if failure is not None:
                await conn.execute(
                    insert(FAILURES).values(
                        integration_id=integration_id,
                        seq=seq or 0,
                        wa_message_id=wa_message_id,
                        error=failure,
                        created_at=time.time(),
                    )
                )

        await self.db.writer.submit(op)

    async def failures(self, integration_id: str) -> list[dict[str, Any]]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(select(FAILURES).where(FAILURES.c.integration_id == integration_id))
            ).all()
        return [dict(r._mapping) for r in rows]

    async def record_failure(
        self, integration_id: str, seq: int, error: str, wa_message_id: str = ""
    ) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(
                insert(FAILURES).values(
                    integration_id=integration_id,
                    seq=seq,
                    wa_message_id=wa_message_id,
                    error=error,
                    created_at=time.time(),
                )
            )

        await self.db.writer.submit(op)


# ------------------------------------------------------------------------------------------ outbound jobs


@dataclass
class OutboundJobRecord:
    id: int
    integration_id: str
    chatwoot_message_id: int
    conversation_id: int
    kind: str
    payload: str
    state: str
    attempts: int
    parts_done: int
    next_attempt_at: float
    last_error: str


class OutboundRepository:
    def __init__(self, db: BridgeDB) -> None:
        self.db = db
        self._enqueue = Batcher(self._enqueue_many)
        self._finish = Batcher(self._finish_many)

    async def _enqueue_many(self, rows: list[dict[str, Any]]) -> list[int | None]:
        """Insert the jobs not already queued (one statement); their ids, None for duplicates.

        ``INSERT … ON CONFLICT DO NOTHING RETURNING`` returns exactly the rows it inserted, so one
        statement both deduplicates (the unique key) and yields the new ids: the webhook's answer
        waits for one statement and a commit, in the committer's urgent lane.
        """

        def key(row: dict[str, Any]) -> tuple[str, int, str]:
            return (row["integration_id"], row["chatwoot_message_id"], row["kind"])

        fresh: dict[tuple[str, int, str], dict[str, Any]] = {}
        for row in rows:
            fresh.setdefault(key(row), row)  # in-batch duplicates: only the first may be new

        async def op(conn: AsyncConnection) -> dict[tuple[str, int, str], int]:
            # executemany form: SQLAlchemy sends it as one multi-row INSERT ("insertmanyvalues")
            # from a statement compiled once and cached, whatever the number of rows
            statement = insert_ignore(conn, JOBS).returning(
                JOBS.c.id, JOBS.c.integration_id, JOBS.c.chatwoot_message_id, JOBS.c.kind
            )
            result = await conn.execute(statement, list(fresh.values()))
            return {(str(r[1]), int(r[2]), str(r[3])): int(r[0]) for r in result}

        ids: dict[tuple[str, int, str], int] = await self.db.writer.submit(op, urgent=True)
        return [ids.get(key(row)) if fresh[key(row)] is row else None for row in rows]

    async def finish(self, job_id: int, state: str, last_error: str = "") -> None:
        """Mark a job done or failed (batched with concurrent callers)."""
        await self._finish(
            {"b_id": job_id, "b_state": state, "b_error": last_error[:2000], "b_at": time.time()}
        )

    async def _finish_many(self, rows: list[dict[str, Any]]) -> list[None]:
        statement = (
            update(JOBS)
            .where(JOBS.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), last_error=bindparam("b_error"), updated_at=bindparam("b_at"))
        )

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(statement, rows)

        await self.db.writer.submit(op)
        return [None] * len(rows)

    async def enqueue(
        self, integration_id: str, chatwoot_message_id: int, conversation_id: int, kind: str, payload: str
    ) -> OutboundJobRecord | None:
        """Persist a job; None when that Chatwoot message already has one (duplicate webhook)."""
        now = time.time()
        values = {
            "integration_id": integration_id,
            "chatwoot_message_id": chatwoot_message_id,
            "conversation_id": conversation_id,
            "kind": kind,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "parts_done": 0,
            "next_attempt_at": 0.0,
            "last_error": "",
            "created_at": now,
            "updated_at": now,
        }

        retried = False

        def note_retry() -> None:
            nonlocal retried
            retried = True

        job_id = await retry_transient(
            lambda: self._enqueue(values),
            budget=WEBHOOK_WRITE_BUDGET,
            what="outbound job",
            on_retry=note_retry,
        )
        if job_id is None and retried:
            # A failed attempt may have committed before its error reached us (a connection lost
            # after COMMIT): then the stored job is this webhook's own, not a duplicate's.
            existing = await self.find_by_message(integration_id, chatwoot_message_id, kind)
            return existing if existing is not None and existing.state == "pending" else None
        if job_id is None:
            return None
        return OutboundJobRecord(
            id=job_id,
            integration_id=integration_id,
            chatwoot_message_id=chatwoot_message_id,
            conversation_id=conversation_id,
            kind=kind,
            payload=payload,
            state="pending",
            attempts=0,
            parts_done=0,
            next_attempt_at=0.0,
            last_error="",
        )

    async def pending(self, integration_id: str, limit: int = 100_000) -> list[OutboundJobRecord]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(JOBS)
                    .where(JOBS.c.integration_id == integration_id, JOBS.c.state == "pending")
                    .order_by(JOBS.c.id)
                    .limit(limit)
                )
            ).all()
        return [
            OutboundJobRecord(**{k: r._mapping[k] for k in OutboundJobRecord.__dataclass_fields__})
            for r in rows
        ]

    async def update(self, job_id: int, **values: Any) -> None:
        values["updated_at"] = time.time()

        async def op(conn: AsyncConnection) -> Any:
            await conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))

        await self.db.writer.submit(op)

    async def states(self, integration_id: str) -> dict[str, int]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(JOBS.c.state, func.count())
                    .where(JOBS.c.integration_id == integration_id)
                    .group_by(JOBS.c.state)
                )
            ).all()
        return {str(r[0]): int(r[1]) for r in rows}

    async def integrations_with_pending(self) -> set[str]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(select(JOBS.c.integration_id).where(JOBS.c.state == "pending").distinct())
            ).all()
        return {str(r[0]) for r in rows}

    async def prune(self, older_than_seconds: float) -> int:
        """Forget finished jobs (done or failed) older than the given age; pending ones are kept."""
        cutoff = time.time() - older_than_seconds

        async def op(conn: AsyncConnection) -> Any:
            result = await conn.execute(
                delete(JOBS).where(JOBS.c.state.in_(("done", "failed")), JOBS.c.updated_at < cutoff)
            )
            return int(result.rowcount or 0)

        return int(await self.db.writer.submit(op))

    async def find_by_message(
        self, integration_id: str, chatwoot_message_id: int, kind: str = "send"
    ) -> OutboundJobRecord | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(JOBS).where(
                        JOBS.c.integration_id == integration_id,
                        JOBS.c.chatwoot_message_id == chatwoot_message_id,
                        JOBS.c.kind == kind,
                    )
                )
            ).first()
        if row is None:
            return None
        return OutboundJobRecord(**{k: row._mapping[k] for k in OutboundJobRecord.__dataclass_fields__})


# ------------------------------------------------------------------------------------------ self-checks


class SelfCheckRepository:
    """The last self-check report per integration (JSON of ``protocol.SelfCheckReport``)."""

    def __init__(self, db: BridgeDB) -> None:
        self.db = db

    async def save(self, integration_id: str, report: str, ran_at: float) -> None:
        async def op(conn: AsyncConnection) -> Any:
            # Delete + insert: one statement pair on both back ends, in one transaction.
            await conn.execute(delete(SELFCHECKS).where(SELFCHECKS.c.integration_id == integration_id))
            await conn.execute(
                insert(SELFCHECKS).values(integration_id=integration_id, report=report, ran_at=ran_at)
            )

        await self.db.writer.submit(op)

    async def all(self) -> dict[str, str]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(SELFCHECKS.c.integration_id, SELFCHECKS.c.report))).all()
        return {row[0]: row[1] for row in rows}


@dataclass
class Repositories:
    integrations: IntegrationRepository
    chats: ChatRepository
    messages: MessageMapRepository
    outbound: OutboundRepository
    selfchecks: SelfCheckRepository

    @classmethod
    def create(cls, db: BridgeDB) -> Repositories:
        return cls(
            IntegrationRepository(db),
            ChatRepository(db),
            MessageMapRepository(db),
            OutboundRepository(db),
            SelfCheckRepository(db),
        )
