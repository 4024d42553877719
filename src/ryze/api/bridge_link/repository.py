"""Storage of ``chatwoot_integrations`` rows (SQLAlchemy Core on the shared async engine).

Rows come out as ``Integration`` values; the token stays ciphertext here and is only decrypted
by the service when it has to be handed to the bridge again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ryze.api.bridge_link.models import ChatwootIntegrationRow

_T = cast(Table, ChatwootIntegrationRow.__table__)


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Integration:
    id: str
    instance_id: str
    instance_name: str
    bridge_integration_id: str
    chatwoot_base_url: str
    chatwoot_account_id: int
    chatwoot_api_token_enc: str
    chatwoot_inbox_id: int
    chatwoot_inbox_name: str
    status: str
    last_error: str
    sign_messages: bool
    ignore_groups: bool
    start_as_pending: bool
    reopen_resolved: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Integration:
        m = row._mapping
        return cls(
            id=m["id"],
            instance_id=m["instance_id"],
            instance_name=m["instance_name"],
            bridge_integration_id=m["bridge_integration_id"],
            chatwoot_base_url=m["chatwoot_base_url"],
            chatwoot_account_id=int(m["chatwoot_account_id"]),
            chatwoot_api_token_enc=m["chatwoot_api_token"],
            chatwoot_inbox_id=int(m["chatwoot_inbox_id"]),
            chatwoot_inbox_name=m["chatwoot_inbox_name"],
            status=m["status"],
            last_error=m["last_error"],
            sign_messages=bool(m["sign_messages"]),
            ignore_groups=bool(m["ignore_groups"]),
            start_as_pending=bool(m["start_as_pending"]),
            reopen_resolved=bool(m["reopen_resolved"]),
            created_at=_utc(m["created_at"]),
            updated_at=_utc(m["updated_at"]),
        )


class IntegrationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, instance_name: str) -> Integration | None:
        if "\x00" in instance_name:  # never a stored name; PostgreSQL refuses to compare it
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_T).where(_T.c.instance_name == instance_name))).first()
        return Integration.from_row(row) if row is not None else None

    async def instance_names(self) -> list[str]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(_T.c.instance_name))).all()
        return [r[0] for r in rows]

    async def save(self, values: dict[str, Any], *, exists: bool) -> None:
        """Insert a new row or update the existing one (``values`` holds ``id``)."""
        now = datetime.now(UTC)
        values = {**values, "updated_at": now}
        async with self._engine.begin() as conn:
            if exists:
                row_id = values["id"]
                await conn.execute(update(_T).where(_T.c.id == row_id).values(**values))
            else:
                await conn.execute(insert(_T).values(created_at=now, **values))

    async def set_inbox_id(self, row_id: str, inbox_id: int) -> None:
        """Back-fill the inbox id, only while it is still unknown (0)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(_T)
                .where(_T.c.id == row_id, _T.c.chatwoot_inbox_id == 0)
                .values(chatwoot_inbox_id=inbox_id, updated_at=datetime.now(UTC))
            )

    async def delete(self, instance_name: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(_T).where(_T.c.instance_name == instance_name))
        return bool(result.rowcount)
