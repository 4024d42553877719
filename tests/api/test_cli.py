"""``ryze account create`` and ``ryze keygen``."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ryze.api.db import Database
from ryze.api.db.models import AccountRow
from ryze.cli import app


def test_keygen_prints_a_256_bit_key() -> None:
    result = CliRunner().invoke(app, ["keygen"])
    assert result.exit_code == 0
    assert len(base64.b64decode(result.stdout.strip())) == 32


async def test_account_create_prints_the_token_once_and_stores_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    # the command runs its own event loop: run it in a worker thread, off the test loop
    import asyncio

    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["account", "create", "--name", "acme", "--quota", "3"]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("acc_")
    db = Database(url)
    try:
        async with db.session() as session:
            row = (await session.scalars(select(AccountRow))).one()
    finally:
        await db.aclose()
    assert row.name == "acme" and row.instance_quota == 3
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
