"""The control room's row (``bridge_control_rooms``): bot contact, conversation, last posted
state, QR images still shown. One row per integration, removed with it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import CONTROL, insert_ignore


@dataclass
class ControlRoomState:
    contact_id: int | None = None
    conversation_id: int | None = None
    last_state: str = ""
    qr_message_ids: list[int] = field(default_factory=list)


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip().isdigit()]


class ControlRoomStore:
    def __init__(self, db: BridgeDB, integration_id: str) -> None:
        self._db = db
        self._id = integration_id

    async def load(self) -> ControlRoomState:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(CONTROL).where(CONTROL.c.integration_id == self._id))).first()
        if row is None:
            return ControlRoomState()
        return ControlRoomState(row.contact_id, row.conversation_id, row.last_state, _ids(row.qr_message_ids))

    async def save(self, state: ControlRoomState) -> None:
        values = {
            "integration_id": self._id,
            "contact_id": state.contact_id,
            "conversation_id": state.conversation_id,
            "last_state": state.last_state,
            "qr_message_ids": ",".join(str(i) for i in state.qr_message_ids),
            "updated_at": time.time(),
        }

        async def op(conn: AsyncConnection) -> None:
            # Delete then insert: one statement pair that works the same on SQLite and PostgreSQL.
            await conn.execute(delete(CONTROL).where(CONTROL.c.integration_id == self._id))
            await conn.execute(insert_ignore(conn, CONTROL).values(**values))

        await self._db.writer.submit(op)
