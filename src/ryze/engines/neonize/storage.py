"""Where whatsmeow keeps a session's keys: one SQLite file per instance, or one PostgreSQL schema
per instance. Never in RyzeAPI's own tables.

* SQLite: ``<data_dir>/whatsmeow/<instance>.db``. One file per instance because whatsmeow's
  SQLite store locks the whole file ("database is locked" with several clients in one file),
  and because whatsmeow resumes the *first* device of a store — one device per store keeps
  that unambiguous.
* PostgreSQL: the configured database, schema ``<prefix><instance>`` (default prefix
  ``whatsmeow_``), selected through the connection's ``search_path``. Deleting an instance
  drops its schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ryze.engines.base import EngineError

log = logging.getLogger(__name__)

_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})


def validate_instance(instance: str) -> str:
    if not _INSTANCE.match(instance) or ".." in instance:
        raise EngineError(f"Invalid instance name for session storage: {instance!r}")
    return instance


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme.split("+", 1)[0] in {"postgres", "postgresql"}


class SessionStore(Protocol):
    @property
    def name(self) -> str:
        """What neonize's ``NewAClient(name)`` opens: a SQLite path or a PostgreSQL URL."""
        ...

    async def prepare(self) -> None: ...

    async def wipe(self) -> None:
        """Forget the stored login (after logout, or when the instance is deleted)."""
        ...


class SqliteStore:
    def __init__(self, data_dir: Path, instance: str) -> None:
        self.path = data_dir / "whatsmeow" / f"{validate_instance(instance)}.db"

    @property
    def name(self) -> str:
        return str(self.path)

    async def prepare(self) -> None:
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)

    async def wipe(self) -> None:
        await asyncio.to_thread(self._wipe)

    def _wipe(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def schema_name(prefix: str, instance: str) -> str:
    """A safe PostgreSQL identifier (<= 63 bytes) for the instance's schema."""
    base = re.sub(r"[^a-z0-9_]", "_", instance.lower())
    if base == instance and len(prefix) + len(base) <= 63:
        return prefix + base
    digest = hashlib.sha1(instance.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{prefix}{base[: 63 - len(prefix) - 9]}_{digest}"


class PostgresStore:
    def __init__(self, database_url: str, instance: str, *, schema_prefix: str = "whatsmeow_") -> None:
        validate_instance(instance)
        if not re.match(r"^[a-z_][a-z0-9_]{0,30}$", schema_prefix):
            raise EngineError(f"Invalid schema prefix: {schema_prefix!r}")
        self.schema = schema_name(schema_prefix, instance)
        parts = urlsplit(database_url)
        base = parts._replace(scheme="postgresql")  # drop a SQLAlchemy "+driver" suffix
        self._admin_url = urlunsplit(base)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
        if not any(k == "sslmode" for k, _ in query) and (parts.hostname or "") in _LOCAL_HOSTS:
            # lib/pq (whatsmeow's driver) defaults to sslmode=require, unlike libpq/asyncpg.
            query.append(("sslmode", "disable"))
        query.append(("search_path", self.schema))
        self._url = urlunsplit(base._replace(scheme="postgres", query=urlencode(query)))

    @property
    def name(self) -> str:
        return self._url

    async def _execute(self, sql: str) -> None:
        import asyncpg  # type: ignore[import-untyped]

        try:
            conn = await asyncpg.connect(self._admin_url)
        except Exception as exc:
            raise EngineError(f"Could not open the WhatsApp session database: {exc}", retryable=True) from exc
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def prepare(self) -> None:
        # whatsmeow creates its tables in the first schema of search_path; it must exist.
        await self._execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')  # sanitised name

    async def wipe(self) -> None:
        await self._execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def make_store(
    instance: str, *, data_dir: Path, database_url: str | None, schema_prefix: str = "whatsmeow_"
) -> SessionStore:
    if database_url and is_postgres_url(database_url):
        return PostgresStore(database_url, instance, schema_prefix=schema_prefix)
    return SqliteStore(data_dir, instance)
