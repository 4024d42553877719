"""Database engines and schema upgrades, shared by both services (each has its own tables).

SQLite is the embedded default (a file under ``./data/``); PostgreSQL is chosen by URL. SQLite runs
in WAL mode with ``synchronous=NORMAL``: the measured single-row commit rate is ~4x the rollback
journal's, and a crash still loses nothing that was committed before the last checkpoint-safe sync.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ryze.common.files import private_sqlite_file

log = logging.getLogger(__name__)


def normalize_url(url: str) -> str:
    """Accept the URLs operators write and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def is_sqlite(url: str) -> bool:
    return normalize_url(url).startswith("sqlite")


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> AsyncEngine:
    """An async engine. ``schema`` (PostgreSQL only) sets the search_path, used to isolate tests."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            # Owner-only from the first byte: the file holds messages and encrypted secrets.
            private_sqlite_file(Path(path))
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _upgrade(sync_conn: Connection, script_location: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def upgrade_schema(engine: AsyncEngine, script_location: Path) -> None:
    """Apply the service's Alembic migrations up to head (what ``ryze api``/``ryze bridge`` do on start)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, str(script_location))


class WriterConnection:
    """The one long-lived connection of a group committer.

    Keeping it avoids a pool checkout and reset per batch (that halves SQLite's single-row commit
    rate). After a failed batch the owner drops it, since the connection may be what failed; the
    next batch opens a new one.
    """

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        self._name = name
        self._conn: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._engine.connect()
        return self._conn

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                # Closing a broken connection can fail too; the committer must go on regardless.
                log.warning("closing a writer connection failed", extra={"writer": self._name}, exc_info=True)
