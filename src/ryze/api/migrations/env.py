"""Alembic environment for RyzeAPI (core + Chatwoot module tables, one version history).

``ryze api`` runs it through ``ryze.common.database.upgrade_schema``, which hands over a live
connection in ``config.attributes["connection"]``. Run by hand (``alembic -x url=...``), it opens
its own async engine.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from ryze.api.bridge_link import models as _chatwoot_models  # noqa: F401  (its tables join Base.metadata)
from ryze.api.db.models import Base
from ryze.common.database import make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or "sqlite:///./data/ryzeapi.db"
    asyncio.run(_run_async(url))
