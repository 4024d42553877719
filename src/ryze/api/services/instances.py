"""Instances: creation rules, listing, deletion, state, and token lookup (cached in-process)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ryze.api.db import Database
from ryze.api.db.models import AccountRow, InstanceRow, MessageRow, utcnow
from ryze.api.errors import ApiError
from ryze.api.records import InstanceRecord
from ryze.api.schemas import CreateInstanceBody
from ryze.api.services.storable import storable_key
from ryze.api.settings import ApiSettings
from ryze.api.tokens import hash_token, new_instance_token
from ryze.common.crypto import SecretBox

log = logging.getLogger(__name__)

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
NAME_RULE_TEXT = (
    "Invalid instance name: use 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"
)
TOKEN_MIN, TOKEN_MAX = 16, 256

# Creation-body fields per stored block; the secret ones are encrypted at rest and never returned.
_BLOCKS: dict[str, dict[str, str]] = {
    "proxy": {
        "proxyEnabled": "enabled", "proxyHost": "host", "proxyPort": "port",
        "proxyProtocol": "protocol", "proxyUsername": "username", "proxyPassword": "password",
    },
    "webhook": {
        "webhookEnabled": "enabled", "webhookURL": "url", "webhookAuthorization": "authorization",
        "webhookByEvents": "byEvents", "webhookEvents": "events", "webhookMediaBase64": "mediaBase64",
    },
    "websocket": {
        "websocketEnabled": "enabled", "websocketEvents": "events", "websocketMediaBase64": "mediaBase64",
    },
    "settings": {
        "autoRejectCalls": "autoRejectCalls", "callRejectMessage": "callRejectMessage",
        "ignoreGroupMessages": "ignoreGroupMessages", "keepOnlineStatus": "keepOnlineStatus",
        "autoReadMessages": "autoReadMessages", "disableHistorySync": "disableHistorySync",
        "ignoreStatus": "ignoreStatus",
    },
    "s3": {
        "s3Enabled": "enabled", "s3Region": "region", "s3Bucket": "bucket", "s3AccessKey": "accessKey",
        "s3SecretKey": "secretKey", "s3Endpoint": "endpoint", "s3PathPrefix": "pathPrefix",
    },
}  # fmt: skip
_SECRETS = {("proxy", "password"), ("webhook", "authorization"), ("s3", "secretKey"), ("s3", "accessKey")}


def _public_block(block: str, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if (block, k) not in _SECRETS}


class InstanceService:
    def __init__(self, db: Database, secret_box: SecretBox, settings: ApiSettings) -> None:
        self._db = db
        self._box = secret_box
        self._settings = settings
        # Token and name lookups happen on every request; this process is the only writer of
        # instances, so the caches are exact (filled on read, updated on write, dropped on delete).
        self._by_name: dict[str, InstanceRecord] = {}
        self._by_token_hash: dict[str, InstanceRecord] = {}
        self._accounts_by_hash: dict[str, str] = {}

    # ----------------------------------------------------------------------------- lookups

    def _record(self, row: InstanceRow) -> InstanceRecord:
        token = self._box.decrypt(row.token_enc, row.id)
        return InstanceRecord(
            id=row.id,
            account_id=row.account_id,
            name=row.name,
            token=token,
            state=row.state,
            number_jid=row.number_jid,
            profile_name=row.profile_name,
            config=dict(row.config or {}),
            created_at=row.created_at,
        )

    def _remember(self, record: InstanceRecord) -> InstanceRecord:
        self._by_name[record.name] = record
        self._by_token_hash[hash_token(record.token)] = record
        return record

    def cached_account(self, token_hash: str) -> str | None:
        """The account of a TokenAccount seen before, without touching the database."""
        return self._accounts_by_hash.get(token_hash)

    async def account_for_token(self, token_hash: str) -> str | None:
        cached = self._accounts_by_hash.get(token_hash)
        if cached is not None:
            return cached
        async with self._db.session() as session:
            account_id = await session.scalar(
                select(AccountRow.id).where(AccountRow.token_hash == token_hash)
            )
        if account_id is not None:
            self._accounts_by_hash[token_hash] = account_id
        return account_id

    async def instance_for_token(self, token_hash: str) -> InstanceRecord | None:
        cached = self._by_token_hash.get(token_hash)
        if cached is not None:
            return cached
        async with self._db.session() as session:
            row = await session.scalar(select(InstanceRow).where(InstanceRow.token_hash == token_hash))
        return self._remember(self._record(row)) if row is not None else None

    async def get(self, name: str) -> InstanceRecord | None:
        cached = self._by_name.get(name)
        if cached is not None:
            return cached
        if not storable_key(name):  # no stored name holds it, and PostgreSQL refuses to compare it
            return None
        async with self._db.session() as session:
            row = await session.scalar(select(InstanceRow).where(InstanceRow.name == name))
        return self._remember(self._record(row)) if row is not None else None

    async def instance_for_id(self, instance_id: str) -> InstanceRecord | None:
        for record in self._by_name.values():
            if record.id == instance_id:
                return record
        async with self._db.session() as session:
            row = await session.get(InstanceRow, instance_id)
        return self._remember(self._record(row)) if row is not None else None

    async def all(self) -> list[InstanceRecord]:
        async with self._db.session() as session:
            rows = (await session.scalars(select(InstanceRow).order_by(InstanceRow.created_at))).all()
        return [self._remember(self._record(r)) for r in rows]

    async def list_for_account(
        self, account_id: str, names: Iterable[str] | None = None
    ) -> list[InstanceRecord]:
        query = select(InstanceRow).where(InstanceRow.account_id == account_id)
        if names is not None:
            query = query.where(InstanceRow.name.in_([n for n in names if storable_key(n)]))
        async with self._db.session() as session:
            rows = (await session.scalars(query.order_by(InstanceRow.created_at, InstanceRow.name))).all()
        return [self._remember(self._record(r)) for r in rows]

    # ----------------------------------------------------------------------------- writes

    async def create(self, account_id: str, body: CreateInstanceBody) -> InstanceRecord:
        name = (body.name or "").strip()
        if not name:
            raise ApiError(400, "Instance name is required")
        if not NAME_RULE.match(name):
            raise ApiError(400, NAME_RULE_TEXT)
        token = body.token if body.token is not None else new_instance_token()
        if not TOKEN_MIN <= len(token) <= TOKEN_MAX or token != token.strip():
            raise ApiError(400, f"Invalid token: use {TOKEN_MIN} to {TOKEN_MAX} characters without spaces")
        token_hash = hash_token(token)
        instance_id = str(uuid.uuid4())
        async with self._db.session() as session:
            account = await session.get(AccountRow, account_id)
            if account is None:
                raise ApiError(401, "Invalid account token")
            quota = (
                account.instance_quota
                if account.instance_quota is not None
                else self._settings.instance_quota
            )
            count = await session.scalar(
                select(func.count()).select_from(InstanceRow).where(InstanceRow.account_id == account_id)
            )
            if (count or 0) >= quota:
                raise ApiError(403, "Account instance quota exceeded")
            if await session.scalar(select(InstanceRow.id).where(InstanceRow.name == name)):
                raise ApiError(409, f"Duplicate instance name: '{name}' already exists")
            taken = await session.scalar(
                select(InstanceRow.id).where(InstanceRow.token_hash == token_hash)
            ) or await session.scalar(select(AccountRow.id).where(AccountRow.token_hash == token_hash))
            if taken:
                raise ApiError(409, "Token already in use by another instance")
            now = utcnow()
            row = InstanceRow(
                id=instance_id,
                account_id=account_id,
                name=name,
                token_hash=token_hash,
                token_enc=self._box.encrypt(token, instance_id),
                state="disconnected",
                config=self._config_from_body(instance_id, body),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                # A concurrent create won the race for the name or token.
                raise ApiError(409, f"Duplicate instance name: '{name}' already exists") from exc
        log.info("instance created", extra={"instance": name, "account_id": account_id})
        return self._remember(self._record(row))

    def _config_from_body(self, instance_id: str, body: CreateInstanceBody) -> dict[str, Any]:
        raw = body.model_dump()
        config: dict[str, Any] = {}
        for block, fields in _BLOCKS.items():
            values: dict[str, Any] = {}
            for body_key, key in fields.items():
                value = raw.get(body_key)
                if (block, key) in _SECRETS and value:
                    value = self._box.encrypt(str(value), f"{instance_id}:{block}.{key}")
                values[key] = value
            config[block] = values
        return config

    async def set_state(
        self,
        instance: InstanceRecord,
        state: str,
        *,
        number_jid: str | None = None,
        profile_name: str | None = None,
    ) -> InstanceRecord:
        values: dict[str, Any] = {"state": state, "updated_at": utcnow()}
        if number_jid is not None:
            values["number_jid"] = number_jid
        if profile_name is not None:
            values["profile_name"] = profile_name
        async with self._db.session() as session:
            await session.execute(update(InstanceRow).where(InstanceRow.id == instance.id).values(**values))
            await session.commit()
        current = self._by_name.get(instance.name, instance)
        updated = InstanceRecord(
            id=current.id,
            account_id=current.account_id,
            name=current.name,
            token=current.token,
            state=state,
            number_jid=number_jid if number_jid is not None else current.number_jid,
            profile_name=profile_name if profile_name is not None else current.profile_name,
            config=current.config,
            created_at=current.created_at,
        )
        return self._remember(updated)

    async def remove(self, instance: InstanceRecord) -> None:
        """Delete the instance and every row that belongs to it."""
        async with self._db.session() as session:
            await session.execute(delete(MessageRow).where(MessageRow.instance_id == instance.id))
            await session.execute(delete(InstanceRow).where(InstanceRow.id == instance.id))
            await session.commit()
        self._by_name.pop(instance.name, None)
        self._by_token_hash.pop(hash_token(instance.token), None)
        log.info("instance deleted", extra={"instance": instance.name, "account_id": instance.account_id})

    # ----------------------------------------------------------------------------- views

    @staticmethod
    def public_config(instance: InstanceRecord) -> dict[str, Any]:
        return {block: _public_block(block, dict(instance.config.get(block) or {})) for block in _BLOCKS}
