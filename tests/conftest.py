"""Fixtures every test package may use.

``database_url`` runs a test on both storage back ends: a fresh SQLite file, and a fresh database
on the local PostgreSQL server (127.0.0.1:5432, trust auth), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

PG_ADMIN_URL = os.environ.get("RYZE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@asynccontextmanager
async def _fresh_postgres_database() -> AsyncIterator[str]:
    """A brand-new database on the local server, dropped (connections forced out) afterwards."""
    name = f"ryze_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _pg_url(name)
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A brand-new PostgreSQL database for one test."""
    async with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ryze.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Parametrizes a test over SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ryze.db'}"
        return
    async with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path
