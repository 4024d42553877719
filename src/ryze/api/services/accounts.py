"""Accounts: created from the CLI; the TokenAccount is shown once and stored hashed."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from ryze.api.db import Database
from ryze.api.db.models import AccountRow
from ryze.api.tokens import hash_token, new_account_token

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    id: str
    name: str
    token: str  # plaintext, available only at creation


class AccountService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str = "", *, instance_quota: int | None = None) -> CreatedAccount:
        token = new_account_token()
        row = AccountRow(
            id=str(uuid.uuid4()), name=name, token_hash=hash_token(token), instance_quota=instance_quota
        )
        async with self._db.session() as session:
            session.add(row)
            await session.commit()
        log.info("account created", extra={"account_id": row.id, "account_name": name})
        return CreatedAccount(id=row.id, name=name, token=token)

    async def find_by_token_hash(self, token_hash: str) -> AccountRow | None:
        async with self._db.session() as session:
            result = await session.execute(select(AccountRow).where(AccountRow.token_hash == token_hash))
            return result.scalar_one_or_none()
