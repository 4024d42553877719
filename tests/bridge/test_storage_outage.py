"""An outbound job survives a storage outage shorter than Chatwoot's webhook timeout.

Chatwoot delivers a webhook once and marks the agent's message failed on an error answer, so the
job insert behind the answer is retried for a few seconds (``ryze.bridge.store.transient``). Here
the first attempts fail as a restarting PostgreSQL or a full disk make them fail; both back ends.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from ryze.bridge.store import repositories as repositories_module
from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import IntegrationRecord, Repositories
from ryze.bridge.store.transient import is_transient

ENQUEUE = Callable[[dict[str, Any]], Awaitable[int | None]]


def _record(integration_id: str = "b" * 32) -> IntegrationRecord:
    now = time.time()
    return IntegrationRecord(
        id=integration_id, instance="shop", ryzeapi_url="http://127.0.0.1:1", chatwoot_base_url="http://cw",
        chatwoot_account_id=1, token_enc="v1:x:y", inbox_id=7, inbox_name="WhatsApp", inbox_secret_enc="",
        path_secret_hash="0" * 64, sign_messages=False, ignore_groups=False, start_as_pending=False,
        reopen_resolved=False, status="paused", last_error="", operator_paused=False, watermark=0,
        created_at=now, updated_at=now,
    )  # fmt: skip


@pytest.fixture
async def repos(database_url: str) -> AsyncIterator[Repositories]:
    db = BridgeDB(database_url)
    await db.migrate()
    db.start()
    repos = Repositories.create(db)
    await repos.integrations.insert(_record())
    yield repos
    await db.close()


def _full_disk() -> OperationalError:
    return OperationalError(
        "INSERT INTO bridge_outbound_jobs ...", {}, sqlite3.OperationalError("database or disk is full")
    )


def _failing(real: ENQUEUE, failures: int, *, after_commit: bool = False) -> tuple[ENQUEUE, list[int]]:
    calls: list[int] = []

    async def enqueue(values: dict[str, Any]) -> int | None:
        calls.append(1)
        if len(calls) <= failures:
            if after_commit:
                await real(values)  # committed, then the connection is lost before the answer
            raise _full_disk()
        return await real(values)

    return enqueue, calls


async def test_a_brief_outage_delays_the_job_instead_of_failing_it(repos: Repositories) -> None:
    fake, calls = _failing(repos.outbound._enqueue, failures=2)
    repos.outbound._enqueue = fake  # type: ignore[assignment,method-assign]
    job = await repos.outbound.enqueue("b" * 32, 101, 9, "send", "{}")
    assert job is not None and job.chatwoot_message_id == 101 and len(calls) == 3
    assert [j.id for j in await repos.outbound.pending("b" * 32)] == [job.id]


async def test_a_write_that_committed_before_its_error_is_still_this_webhooks_job(
    repos: Repositories,
) -> None:
    fake, calls = _failing(repos.outbound._enqueue, failures=1, after_commit=True)
    repos.outbound._enqueue = fake  # type: ignore[assignment,method-assign]
    job = await repos.outbound.enqueue("b" * 32, 102, 9, "send", "{}")
    assert job is not None and job.chatwoot_message_id == 102 and len(calls) == 2
    assert [j.id for j in await repos.outbound.pending("b" * 32)] == [job.id]
    # A real duplicate webhook afterwards is still recognised as one.
    assert await repos.outbound.enqueue("b" * 32, 102, 9, "send", "{}") is None


async def test_an_outage_longer_than_the_budget_fails_the_answer(
    repos: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repositories_module, "WEBHOOK_WRITE_BUDGET", 0.3)
    fake, calls = _failing(repos.outbound._enqueue, failures=10_000)
    repos.outbound._enqueue = fake  # type: ignore[assignment,method-assign]
    with pytest.raises(OperationalError):
        await repos.outbound.enqueue("b" * 32, 103, 9, "send", "{}")
    assert 1 < len(calls) < 10
    assert await repos.outbound.pending("b" * 32) == []


def test_only_storage_outages_are_transient() -> None:
    assert is_transient(_full_disk())
    assert is_transient(ConnectionResetError())
    assert not is_transient(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not is_transient(ValueError("bad payload"))
    # A restarting PostgreSQL, as asyncpg reports it through SQLAlchemy (a plain DB-API error).
    assert is_transient(DBAPIError("SELECT 1", {}, RuntimeError("the database system is starting up")))
    assert not is_transient(ProgrammingError("SELEC", {}, RuntimeError("syntax error")))
