"""RyzeAPI's database handle: one async engine, sessions, schema upgrade on start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ryze.common.database import is_sqlite, make_engine, upgrade_schema

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self.engine: AsyncEngine = make_engine(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def upgrade(self) -> None:
        """Apply the Alembic migrations up to head (core and the Chatwoot module's)."""
        await upgrade_schema(self.engine, MIGRATIONS)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def aclose(self) -> None:
        await self.engine.dispose()
