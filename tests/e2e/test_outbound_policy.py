"""The outbound-fetch policy end to end, as a RyzeAPI caller meets it: RyzeAPI and the bridge as
real processes with their allow-lists empty (the default), the emulator standing for a Chatwoot on
this host's loopback. Nothing here can leave the machine: every URL is a loopback one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.devstack import EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_TOKEN, LocalSystem, start_system


@pytest.fixture(scope="module")
async def strict(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    workdir: Path = tmp_path_factory.mktemp("strict")
    running = await start_system(workdir, api_env={"FETCH_ALLOW": ""}, bridge_env={"BRIDGE_FETCH_ALLOW": ""})
    try:
        yield running
    finally:
        await running.aclose()


async def test_a_chatwoot_on_loopback_is_refused_with_the_setting_named(strict: LocalSystem) -> None:
    await strict.create_instance("strict", chatwoot=False)
    port = strict.emulator_url.rsplit(":", 1)[1]
    for base in (strict.emulator_url, f"http://0x7f000001:{port}", f"http://[::ffff:127.0.0.1]:{port}"):
        status, body = await strict.call(
            "POST",
            f"{strict.api_url}/api/chatwoot/set/strict",
            token=strict.account_token,
            json={
                "chatwootBaseUrl": base,
                "chatwootAccountId": EMULATOR_ACCOUNT_ID,
                "chatwootApiToken": EMULATOR_ADMIN_TOKEN,
            },
        )
        assert status == 400, body
        assert body["error"]["message"] == (
            "invalid body: chatwootBaseUrl points to a loopback address, which the outbound-fetch "
            "policy refuses (allow it with BRIDGE_FETCH_ALLOW)"
        )


async def test_a_media_url_on_loopback_is_refused_with_the_setting_named(strict: LocalSystem) -> None:
    await strict.create_instance("media", chatwoot=False)
    status, body = await strict.call(
        "POST",
        f"{strict.api_url}/api/message/media/media",
        token=strict.account_token,
        json={"number": "5511988887777", "mediaType": "document", "mediaUrl": f"{strict.api_url}/metrics"},
    )
    assert status == 400, body
    assert body["error"]["message"].endswith("(allow it with FETCH_ALLOW)")
    assert await strict.outbox("media") == []
