"""Agent actions (Python and /_emulator API), the real server, seeding and the self-test."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import httpx

from ryze.emulator import ChatwootEmulator, EmulatorSeed, run_emulator
from ryze.emulator.selftest import ameasure_message_create

from .conftest import A1, ADMIN, Api, Receiver


async def test_agent_reply_fires_outgoing_webhook(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    msg = await emu.agent_reply(
        1, conv, "from the dashboard", attachments=[("a.pdf", b"%PDF", "application/pdf")]
    )
    note = await emu.agent_reply(1, conv, "internal", private=True, user_email="agent@acme.test")
    assert msg["message_type"] == 1 and msg["attachments"][0]["file_type"] == "file"
    assert note["private"] is True and note["sender"]["name"] == "Acme Agent"
    await emu.incoming_dispatch_idle()
    created = [r.json for r in receiver.events("message_created")]
    assert [(m["content"], m["message_type"], m["private"]) for m in created] == [
        ("from the dashboard", "outgoing", False),
        ("internal", "outgoing", True),
    ]
    assert created[0]["sender"]["type"] == "user"


async def test_agent_http_api_reply_delete_resolve(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    base = f"/_emulator/accounts/1/conversations/{conv}"
    r = await client.post(
        base + "/messages",
        data={"content": "hi", "private": "false"},
        files=[("attachments[]", ("p.png", b"PNG", "image/png"))],
    )
    assert r.status_code == 200
    mid = r.json()["id"]
    r = await client.delete(f"{base}/messages/{mid}")
    assert r.json()["content_attributes"] == {"deleted": True}
    r = await client.post(base + "/toggle_status", json={"status": "resolved"})
    assert r.json()["status"] == "resolved"
    r = await client.post(base + "/toggle_status", json={})
    assert r.json()["status"] == "open"
    r = await client.get(base + "/messages")
    assert r.json()["conversation"]["id"] == conv
    r = await client.get("/_emulator/accounts/1/conversations")
    assert [c["id"] for c in r.json()["payload"]] == [conv]
    assert (await client.get("/_emulator/accounts/1/conversations/99/messages")).status_code == 404
    await emu.incoming_dispatch_idle()
    events = [r.event for r in receiver.received]
    assert events.count("message_created") == 1 and events.count("message_updated") == 1
    assert events.count("conversation_status_changed") == 2
    r = await client.get("/_emulator/webhooks")
    assert len(r.json()) == len(receiver.received)


async def test_agent_page_is_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/app")
    assert r.status_code == 200 and "<script>" in r.text
    assert (await client.get("/")).headers["location"] == "/app"


async def test_settings_api(emu: ChatwootEmulator, client: httpx.AsyncClient) -> None:
    r = await client.post("/_emulator/settings", json={"webhook_timeout": 1.5, "storage_delay_ms": 10})
    assert r.json()["webhook_timeout"] == 1.5 and r.json()["storage_delay_ms"] == 10
    assert emu.webhooks.timeout == 1.5
    r = await client.post("/_emulator/settings", json={"nope": 1})
    assert r.status_code == 422


async def test_run_emulator_serves_on_loopback_and_data_url_redirects() -> None:
    async with run_emulator(host="127.0.0.1", port=0) as running:
        assert running.url.startswith("http://127.0.0.1:")
        api = Api(httpx.AsyncClient(base_url=running.url))
        try:
            _, _, conv = await api.chat()
            r = await api.c.post(
                f"{A1}/conversations/{conv}/messages",
                files=[("attachments[]", ("v.ogg", b"OggS-data", "audio/ogg"))],
                headers=ADMIN,
            )
            url = r.json()["attachments"][0]["data_url"]
        finally:
            await api.c.aclose()
        assert url.startswith(running.url + "/rails/active_storage/blobs/redirect/")
        async with aiohttp.ClientSession() as http, http.get(url) as resp:  # follows the 302
            assert resp.status == 200 and await resp.read() == b"OggS-data"
            assert len(resp.history) == 1 and resp.history[0].status == 302


def test_seed_from_file_and_env(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(
        json.dumps(
            {
                "accounts": [
                    {
                        "id": 7,
                        "name": "Seven",
                        "inbox_limit": 2,
                        "users": [
                            {"email": "a@s.test", "access_token": "t-a", "role": "administrator"},
                            {"email": "b@s.test", "access_token": "t-b"},
                        ],
                    }
                ]
            }
        )
    )
    seed = EmulatorSeed.from_env({"EMULATOR_SEED_FILE": str(seed_file)})
    emu = ChatwootEmulator(seed=seed)
    account = emu.state.accounts[7]
    assert account.inbox_limit == 2
    assert sorted(account.roles.values()) == ["administrator", "agent"]
    assert emu.state.users_by_token["t-b"].email == "b@s.test"
    env_seed = EmulatorSeed.from_env({"EMULATOR_ADMIN_TOKEN": "x1", "EMULATOR_AGENT_TOKEN": "x2"})
    tokens = {u.access_token: u.role for a in env_seed.accounts for u in a.users}
    assert tokens == {"x1": "administrator", "x2": "agent"}
    default = EmulatorSeed.default().accounts[0]
    assert (default.id, default.name) == (1, "Acme")
    assert {(u.email, u.access_token, u.role) for u in default.users} == {
        ("admin@acme.test", "cw-admin-token", "administrator"),
        ("agent@acme.test", "cw-agent-token", "agent"),
    }


async def test_selftest_measures_message_create_throughput() -> None:
    rate = await ameasure_message_create(n=200, concurrency=8)
    assert rate > 0


def test_serve_entry_point_reads_env(tmp_path: Path) -> None:
    """`python -m ryze.emulator` (what `ryze chatwoot-emulator` runs) on 127.0.0.1."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from .conftest import free_port

    port = free_port()
    env = {**os.environ, "EMULATOR_PORT": str(port), "EMULATOR_ADMIN_TOKEN": "from-env"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ryze.emulator", "--host", "127.0.0.1", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/accounts/1/inboxes"
        request = urllib.request.Request(url, headers={"api_access_token": "from-env"})
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request) as resp:
                    assert json.loads(resp.read()) == {"payload": []}
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/settings") as resp:
            assert json.loads(resp.read())["public_url"] == f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_agent_reply_errors_are_422(emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api) -> None:
    _, _, conv = await api.chat()
    emu.configure(message_per_minute_limit=1)
    base = f"/_emulator/accounts/1/conversations/{conv}/messages"
    assert (await client.post(base, json={"content": "one"})).status_code == 200
    r = await client.post(base, json={"content": "two"})
    assert (r.status_code, r.json()) == (422, {"error": "Validation failed: Too many messages"})
