"""Storage on SQLite and PostgreSQL: migrations, hashed/encrypted tokens, the message store, restarts."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from sqlalchemy import select, text

from ryze.api.db.models import AccountRow, InstanceRow, MessageRow
from ryze.engines.simulated import SimulatedEngine

from .harness import Api, make_settings, start_api


async def test_storage_round_trip_and_restart(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    engine = SimulatedEngine(auto_connect_seconds=None)
    async for api in start_api(settings, engine):
        account_token = await api.account()
        token = await api.connected_instance(account_token)
        resp = await api.client.post(
            "/_simulator/orion/messages",
            json={"messages": [{"from": "5511988887777", "text": f"m{i}"} for i in range(20)]},
            headers={"token": token},
        )
        ids = resp.json()["ids"]
        sent = await api.services.messaging.send_text("orion", "5511988887777", "reply", reply_to=ids[0])

        async with api.services.db.session() as session:
            version = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            assert "0001_core" in version or any(v.startswith("0002") for v in version)
            account = (await session.scalars(select(AccountRow))).one()
            assert account.token_hash == hashlib.sha256(account_token.encode()).hexdigest()
            instance = (await session.scalars(select(InstanceRow))).one()
            assert instance.token_hash == hashlib.sha256(token.encode()).hexdigest()
            assert token not in instance.token_enc
            rows = (await session.scalars(select(MessageRow).order_by(MessageRow.id))).all()
            assert len(rows) == 21
            assert rows[-1].wa_id == sent.id and rows[-1].source == "api" and rows[-1].from_me

    # a new process on the same database: everything is still there
    async for api in start_api(settings, engine):
        resp = await api.client.get("/api/instance/list", headers={"token": token})
        assert resp.json()["message"] == "1 Instance found"
        stored = await api.services.messaging.get_message("orion", ids[5])
        assert stored.text == "m5" and stored.source == "contact"
        # the encrypted instance token still decrypts into the envelope's instanceData.token
        record = await api.services.instances.get("orion")
        assert record is not None and record.token == token


async def test_concurrent_sessions_share_commits(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    async for api in start_api(settings, SimulatedEngine(auto_connect_seconds=None)):
        account_token = await api.account()
        tokens = [await api.connected_instance(account_token, f"i{n}", f"551190000000{n}") for n in range(4)]

        async def burst(n: int, api: Api = api, tokens: list[str] = tokens) -> None:
            body = {"messages": [{"from": "5511988887777", "text": f"{n}-{i}"} for i in range(25)]}
            resp = await api.client.post(
                f"/_simulator/i{n}/messages", json=body, headers={"token": tokens[n]}
            )
            assert resp.status_code == 200

        await asyncio.gather(*(burst(n) for n in range(4)))
        async with api.services.db.session() as session:
            count = len((await session.scalars(select(MessageRow.id))).all())
        assert count == 100
        assert len(api.of("message.exchange")) == 100


async def test_a_pairing_in_progress_does_not_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async for api in start_api(settings):
        account_token = await api.account()
        token = await api.instance(account_token)
        await api.client.get("/api/instance/connect/orion", headers={"token": token})
    async for api in start_api(settings):
        resp = await api.client.get("/api/instance/status/orion", headers={"token": token})
        assert resp.json()["instance"]["state"] == "disconnected"
