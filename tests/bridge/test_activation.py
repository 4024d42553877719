"""The service API: activation (and its failure classification), second activation, delete, pause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ryze.emulator import RunningEmulator

from .conftest import ADMIN_TOKEN, AGENT_TOKEN, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI


async def test_activate_answers_view_and_stores_token_encrypted(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    status, view = await bridge.activate(fake, emulator.url, sign_messages=True)
    assert status == 201
    assert (
        view["instance"] == "shop" and view["inbox_name"] == "WhatsApp Shop" and view["sign_messages"] is True
    )
    assert ADMIN_TOKEN not in str(view)
    inbox = emulator.emulator.state.inboxes[view["inbox_id"]]
    assert inbox.name == "WhatsApp Shop"
    status, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
    assert status == 200 and shown["id"] == view["id"] and shown["link_connected"] is True
    async with bridge.services.db.connect() as conn:
        row = (
            await conn.execute(sa.text("SELECT token_enc, inbox_secret_enc FROM bridge_integrations"))
        ).one()
    assert ADMIN_TOKEN not in row[0] and row[0].startswith("v1:")
    assert inbox.secret not in row[1]


async def test_service_api_requires_the_bridge_token(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    status, body = await bridge.call("GET", "/v1/integrations/nope", token=None)
    assert status == 401 and body["error"]["kind"] == "unauthorized"
    status, body = await bridge.call("GET", "/v1/integrations/nope", token="wrong")
    assert status == 401
    status, body = await bridge.call("GET", "/v1/integrations/nope")
    assert status == 404 and body["error"]["kind"] == "not_found"
    status, body = await bridge.call("POST", "/v1/integrations/activate", json={"instance": "x"})
    assert status == 400 and body["error"]["kind"] == "invalid_request"


async def test_activation_failures_are_classified(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    status, body = await bridge.activate(fake, emulator.url, chatwoot_api_token="not-a-token")
    assert status == 502
    err = body["error"]
    assert err["kind"] == "chatwoot_http" and err["chatwoot_status"] == 401
    assert "Invalid Access Token" in err["detail"]
    assert err["chatwoot_endpoint"] == "POST /api/v1/accounts/1/inboxes"

    status, body = await bridge.activate(fake, emulator.url, chatwoot_api_token=AGENT_TOKEN)
    assert status == 502 and body["error"]["chatwoot_status"] == 401
    assert "not authorized to do this action" in body["error"]["detail"]

    status, body = await bridge.activate(fake, emulator.url, chatwoot_account_id=999)
    assert body["error"]["chatwoot_status"] == 404

    for code in (422, 402):
        rule = emulator.emulator.faults.add(method="POST", path=r".*/inboxes$", status=code, count=1)
        status, body = await bridge.activate(fake, emulator.url)
        assert body["error"]["chatwoot_status"] == code, body
        emulator.emulator.faults.rules.remove(rule)

    status, body = await bridge.activate(fake, "http://127.0.0.1:9")
    assert status == 502 and body["error"]["kind"] == "chatwoot_unreachable"
    assert not emulator.emulator.state.inboxes
    assert ADMIN_TOKEN not in str(body)


async def test_activation_timeout_is_classified(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, activate_timeout=0.5) as bridge:
        emulator.emulator.faults.add(method="POST", path=r".*/inboxes$", hang=True, hang_seconds=3, count=1)
        status, body = await bridge.activate(fake, emulator.url)
        assert status == 504 and body["error"]["kind"] == "chatwoot_timeout"


async def test_activation_waits_on_chatwoot_for_the_set_budget_not_the_relay_timeout(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    """`set` documents 60 s; its 504 came after the relay's 15 s per-call time-out."""
    async with run_bridge(tmp_path, chatwoot_timeout=0.2, activate_timeout=10.0) as bridge:
        emulator.emulator.faults.add(method="POST", path=r".*/inboxes$", latency=0.6, count=1)
        status, body = await bridge.activate(fake, emulator.url)
        assert status == 201, body


async def test_second_activate_updates_in_place(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, first = await bridge.activate(fake, emulator.url)
    status, second = await bridge.activate(
        fake, emulator.url, inbox_name="Renamed", reopen_resolved=True, replace_integration_id=first["id"]
    )
    assert status == 201
    assert second["id"] == first["id"] and second["inbox_id"] == first["inbox_id"]
    assert second["inbox_name"] == "Renamed" and second["reopen_resolved"] is True
    assert emulator.emulator.state.inboxes[first["inbox_id"]].name == "Renamed"
    assert len(emulator.emulator.state.inboxes) == 1


async def test_second_activate_new_inbox_when_the_old_one_is_gone(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, first = await bridge.activate(fake, emulator.url)
    del emulator.emulator.state.inboxes[first["inbox_id"]]  # deleted in Chatwoot behind our back
    status, second = await bridge.activate(fake, emulator.url, replace_integration_id=first["id"])
    assert status == 201 and second["id"] != first["id"] and second["inbox_id"] != first["inbox_id"]
    status, _ = await bridge.call("GET", f"/v1/integrations/{first['id']}")
    assert status == 404


async def test_second_activate_other_chatwoot_provisions_new_inbox_and_removes_old(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, first = await bridge.activate(fake, emulator.url)
    other_base = emulator.url.replace("127.0.0.1", "localhost")
    status, second = await bridge.activate(fake, other_base, replace_integration_id=first["id"])
    assert status == 201 and second["inbox_id"] != first["inbox_id"]
    await eventually(lambda: first["inbox_id"] not in emulator.emulator.state.inboxes)


async def test_delete_removes_inbox_or_keeps_it(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, one = await bridge.activate(fake, emulator.url)
    status, body = await bridge.call("DELETE", f"/v1/integrations/{one['id']}")
    assert status == 200 and body == {"deleted": True, "inbox_deleted": True}
    await eventually(lambda: one["inbox_id"] not in emulator.emulator.state.inboxes)
    status, _ = await bridge.call("DELETE", f"/v1/integrations/{one['id']}")
    assert status == 404

    _, two = await bridge.activate(fake, emulator.url, instance="other")
    status, body = await bridge.call("DELETE", f"/v1/integrations/{two['id']}?keepInbox=true")
    assert status == 200 and body["inbox_deleted"] is False
    assert two["inbox_id"] in emulator.emulator.state.inboxes
    await eventually(lambda: not fake.connected("other"))


async def test_pause_and_resume(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> None:
    _, view = await bridge.activate(fake, emulator.url)
    await eventually(lambda: fake.connected("shop"))
    status, paused = await bridge.call("POST", f"/v1/integrations/{view['id']}/pause")
    assert status == 200 and paused["status"] == "paused" and paused["last_error"] == "paused by the operator"
    await eventually(lambda: not fake.connected("shop"))
    status, resumed = await bridge.call("POST", f"/v1/integrations/{view['id']}/resume")
    assert status == 200 and resumed["status"] == "active"
    await eventually(lambda: fake.connected("shop"))


async def test_link_down_shows_paused_then_active(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, view = await bridge.activate(fake, emulator.url)
    await eventually(lambda: fake.connected("shop"))
    fake.refuse = True
    await fake.drop("shop")

    async def paused() -> bool:
        _, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
        return bool(shown["status"] == "paused" and "503" in shown["last_error"])

    await eventually(paused)
    fake.refuse = False

    async def active() -> bool:
        _, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
        return bool(shown["status"] == "active")

    await eventually(active)


async def test_link_refused_as_removed_shows_error(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, view = await bridge.activate(fake, emulator.url)
    await eventually(lambda: fake.connected("shop"))
    fake.refuse, fake.refuse_status = True, 404
    await fake.drop("shop")

    async def in_error() -> bool:
        _, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
        return bool(shown["status"] == "error" and "HTTP 404" in shown["last_error"])

    await eventually(in_error)


async def test_an_upper_case_scheme_is_the_same_url(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """RyzeAPI accepted ``HTTP://`` and the bridge refused it: one scheme check now serves both."""
    upper = "HTTP://" + emulator.url.split("://", 1)[1]
    status, view = await bridge.activate(fake, upper)
    assert status == 201, view


async def test_an_unreadable_body_gets_the_bridges_error_body(bridge: RunningBridge) -> None:
    """Found by the OpenAPI property run: FastAPI's own `{"detail": ...}` reached the client."""
    async with bridge.http.post(
        bridge.url + "/v1/integrations/activate",
        data=b"\x80",
        headers={"Authorization": "Bearer bridge-token-for-tests", "content-type": "application/json"},
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["kind"] == "invalid_request"
    assert body["error"]["message"] == "invalid body: not valid JSON"


async def test_a_websocket_upgrade_gets_404_with_the_bridges_error_body(bridge: RunningBridge) -> None:
    """The bridge serves no WebSocket (uvicorn runs it with ws="none"): an upgrade is a plain
    request to an unknown path, answered like any other."""
    with pytest.raises(InvalidStatus) as caught:
        async with connect(bridge.url.replace("http://", "ws://") + "/ws/anything"):
            pass
    response = caught.value.response
    assert response.status_code == 404
    assert json.loads(response.body or b"{}")["error"]["kind"] == "not_found"


async def test_a_token_that_cannot_be_a_header_is_400_not_500(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """Found by the OpenAPI property run: a control character in the Chatwoot token made aiohttp
    refuse the header, and the bridge answered a plain-text 500."""
    for token in ("\x1b", "abc def", "tökén", "x\r\nInjected: 1"):
        status, body = await bridge.activate(fake, emulator.url, chatwoot_api_token=token)
        assert status == 400, (token, body)
        assert body["error"]["kind"] == "invalid_request"


async def test_an_inbox_name_with_u0000_is_400(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    status, body = await bridge.activate(fake, emulator.url, inbox_name="a\x00b")
    assert status == 400 and body["error"]["kind"] == "invalid_request"
