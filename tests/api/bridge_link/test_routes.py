# ruff: noqa: E501 - the documented error strings are kept whole, one per line, to compare them by eye
"""set / list / delete over HTTP against the fake bridge: statuses, exact strings, storage."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ryze.common.crypto import CryptoError
from ryze.common.logging import JsonFormatter
from ryze.protocol import BridgeFailure, CheckOutcome, CheckResult, FailureKind, SelfCheckReport

from .fake_bridge import FakeBridge
from .harness import Ryze

CW_TOKEN = "cw-secret-access-token-XYZ987"
SET_BODY: dict[str, Any] = {
    "chatwootBaseUrl": "https://chatwoot.example.com/",
    "chatwootAccountId": 5,
    "chatwootApiToken": CW_TOKEN,
}
GATE = "integration gateway not configured (set BRIDGE_URL and BRIDGE_TOKEN)"


def err(message: str) -> dict[str, Any]:
    return {"success": False, "error": {"message": message}}


async def activate(ryze: Ryze, name: str, **extra: Any) -> httpx.Response:
    async with ryze.client() as c:
        return await c.post(f"/api/chatwoot/set/{name}", json={**SET_BODY, **extra})


async def stored_row(ryze: Ryze, name: str) -> dict[str, Any] | None:
    async with ryze.services.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM chatwoot_integrations WHERE instance_name = :n"), {"n": name}
            )
        ).first()
    return dict(row._mapping) if row is not None else None


# ------------------------------------------------------------------------------------- gating


async def test_module_disabled_answers_503_after_auth_and_has_no_link_route(ryze_off: Ryze) -> None:
    await ryze_off.new_instance("off1")
    async with ryze_off.client(token="") as anon:
        r = await anon.get("/api/chatwoot/list/off1")
        assert r.status_code == 401  # auth comes first
    async with ryze_off.client() as c:
        for method, path in [
            ("POST", "/api/chatwoot/set/off1"),
            ("GET", "/api/chatwoot/list/off1"),
            ("DELETE", "/api/chatwoot/delete/off1"),
            ("GET", "/api/chatwoot/list/does-not-exist"),  # the gate comes before the lookup
        ]:
            r = await c.request(method, path, json=SET_BODY if method == "POST" else None)
            assert (r.status_code, r.json()) == (503, err(GATE)), path
        assert (await c.get("/ws/chatwoot/off1")).status_code == 404
        assert (await c.get("/internal/media/off1/abc")).status_code == 404
    routes = {getattr(r, "path", "") for r in ryze_off.app.routes}
    assert "/ws/chatwoot/{instance}" not in routes


async def test_websocket_upgrade_to_an_unregistered_path_answers_404_with_the_envelope(
    ryze_off: Ryze,
) -> None:
    """The plain GET above always got 404; the upgrade itself got uvicorn's bare 403."""
    await ryze_off.new_instance("off3")
    token = {"token": ryze_off.account_token}
    for path in ("/ws/chatwoot/off3", "/ws/nothing-here", "/not-a-websocket-route"):
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ryze_off.ws_base + path, additional_headers=token, compression=None):
                pass
        response = caught.value.response
        assert response.status_code == 404, path
        assert json.loads(response.body or b"{}") == err("Not found"), path


async def test_an_upper_case_scheme_reaches_the_bridge_in_lower_case(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    await ryze_lite.new_instance("upper")
    resp = await activate(ryze_lite, "upper", chatwootBaseUrl="HTTPS://Chatwoot.Example.com/")
    assert resp.status_code == 201, resp.text
    [call] = fake_bridge.calls("POST")
    assert call.body is not None and call.body["chatwoot_base_url"] == "https://chatwoot.example.com"


async def test_a_chatwoot_token_that_cannot_be_a_header_is_refused_before_the_bridge(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    await ryze_lite.new_instance("ctl")
    for token in ("\x1b", "two words", "tökén"):
        resp = await activate(ryze_lite, "ctl", chatwootApiToken=token)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["message"].startswith(
            "invalid body: chatwootApiToken must be printable ASCII"
        )
    assert fake_bridge.calls("POST") == []


async def test_an_inbox_name_with_u0000_is_refused(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    """Chatwoot and the bridge store the name on PostgreSQL, which cannot hold U+0000."""
    await ryze_lite.new_instance("nulname")
    resp = await activate(ryze_lite, "nulname", inboxName="a\x00b")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "invalid body: inboxName must not contain U+0000"
    assert fake_bridge.calls("POST") == []


async def test_inline_activation_with_module_disabled_reports_the_gate(ryze_off: Ryze) -> None:
    body = await ryze_off.new_instance("off2", chatwootEnabled=True, **SET_BODY)
    assert body["instance"]["name"] == "off2"
    assert body["chatwoot"] == {"status": "error", "error": GATE}


async def test_check_order_auth_lookup_ownership(ryze_lite: Ryze) -> None:
    await ryze_lite.new_instance("mine")
    other = await ryze_lite.services.accounts.create("other")
    async with ryze_lite.client(token="") as anon:
        assert (await anon.get("/api/chatwoot/list/mine")).status_code == 401
    async with ryze_lite.client(token="not-a-token") as bad:
        assert (await bad.get("/api/chatwoot/list/mine")).status_code == 401
    async with ryze_lite.client() as c:
        r = await c.get("/api/chatwoot/list/ghost")
        assert (r.status_code, r.json()) == (404, err("instance not found"))
        r = await c.post("/api/chatwoot/set/ghost", json=SET_BODY)
        assert (r.status_code, r.json()) == (404, err("instance not found"))
        r = await c.delete("/api/chatwoot/delete/ghost")
        assert (r.status_code, r.json()) == (404, err("instance not found"))
    async with ryze_lite.client(token=other.token) as c:
        assert (await c.get("/api/chatwoot/list/mine")).status_code == 403
        assert (await c.post("/api/chatwoot/set/mine", json=SET_BODY)).status_code == 403


# ------------------------------------------------------------------------------------- set


async def test_set_activates_and_stores_the_token_encrypted(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze.new_instance("suporte")
    r = await activate(ryze, "suporte")
    assert r.status_code == 201, r.text
    assert r.json() == {
        "instance": "suporte",
        "status": "active",
        "bridge_integration_id": "int_1",
        "message": "chatwoot integration activated",
    }
    [call] = fake_bridge.calls("POST")
    assert call.headers["Authorization"] == f"Bearer {fake_bridge.token}"
    assert call.body == {
        "instance": "suporte",
        "ryzeapi_url": "http://ryzeapi.internal:8080",
        "chatwoot_base_url": "https://chatwoot.example.com",
        "chatwoot_account_id": 5,
        "chatwoot_api_token": CW_TOKEN,
        "inbox_name": "suporte",
        "sign_messages": False,
        "ignore_groups": False,
        "start_as_pending": False,
        "reopen_resolved": False,
        "replace_integration_id": None,
    }
    row = await stored_row(ryze, "suporte")
    assert row is not None
    assert row["bridge_integration_id"] == "int_1" and row["chatwoot_inbox_id"] == 41
    assert row["chatwoot_base_url"] == "https://chatwoot.example.com"
    stored = row["chatwoot_api_token"]
    assert CW_TOKEN not in stored and stored.startswith("v1:")
    box = ryze.services.secret_box
    assert box.decrypt(stored, row["id"]) == CW_TOKEN
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(CryptoError):
        box.decrypt(tampered, row["id"])
    with pytest.raises(CryptoError):  # bound to its row: copied elsewhere it does not open
        box.decrypt(stored, "another-row-id")
    # The module's own read path refuses a tampered row too.
    service = ryze.module.service
    integration = await service.repo.get("suporte")
    assert integration is not None and service.decrypt_token(integration) == CW_TOKEN
    with pytest.raises(CryptoError):
        service.decrypt_token(dataclasses.replace(integration, chatwoot_api_token_enc=tampered))


async def test_second_set_updates_in_place_or_replaces(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze.new_instance("again")
    assert (await activate(ryze, "again")).status_code == 201
    first = await stored_row(ryze, "again")
    r = await activate(
        ryze, "again", inboxName="Renamed", signMessages=True, chatwootApiToken="other-token-123"
    )
    assert r.status_code == 201 and r.json()["bridge_integration_id"] == "int_1"
    second = await stored_row(ryze, "again")
    assert first is not None and second is not None
    assert second["id"] == first["id"] and second["created_at"] == first["created_at"]
    assert second["sign_messages"] is True or second["sign_messages"] == 1
    assert ryze.services.secret_box.decrypt(second["chatwoot_api_token"], second["id"]) == "other-token-123"
    assert fake_bridge.calls("POST")[1].body["replace_integration_id"] == "int_1"  # type: ignore[index]
    r = await activate(ryze, "again", chatwootBaseUrl="https://elsewhere.example.com")
    assert r.json()["bridge_integration_id"] == "int_2"
    third = await stored_row(ryze, "again")
    assert third is not None and third["id"] == first["id"] and third["chatwoot_inbox_id"] == 42


INVALID_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"chatwootAccountId": 5, "chatwootApiToken": "t"}, "invalid body: chatwootBaseUrl is required"),
    ({**SET_BODY, "chatwootAccountId": -1}, "invalid body: chatwootAccountId must be greater than 0"),
    ({**SET_BODY, "chatwootApiToken": ""}, "invalid body: chatwootApiToken is required"),
    (
        {**SET_BODY, "chatwootBaseUrl": "chatwoot.example.com"},
        "invalid body: chatwootBaseUrl must be an http or https URL",
    ),
    ({**SET_BODY, "reopenResolved": "true"}, "invalid body: reopenResolved must be a boolean"),
]


async def test_set_validation(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("val")
    async with ryze_lite.client() as c:
        for body, message in INVALID_BODIES:
            r = await c.post("/api/chatwoot/set/val", json=body)
            assert (r.status_code, r.json()) == (400, err(message))
        r = await c.post(
            "/api/chatwoot/set/val", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert (r.status_code, r.json()) == (400, err("invalid body: malformed JSON"))
    assert fake_bridge.calls("POST") == []


FAILURES = [
    (
        BridgeFailure(kind=FailureKind.CHATWOOT_HTTP, message="m", chatwoot_status=401,
                      detail='{"errors":["Invalid Access Token"]}'),
        401, 'Chatwoot rejected the API token — verify chatwootApiToken. Detail: {"errors":["Invalid Access Token"]}',
    ),
    (
        BridgeFailure(kind=FailureKind.CHATWOOT_HTTP, message="m", chatwoot_status=401,
                      detail='{"error":"You are not authorized to do this action"}'),
        403, "Chatwoot denied the request — verify the API token has admin scope on account 5. "
             'Detail: {"error":"You are not authorized to do this action"}',
    ),
    (
        BridgeFailure(kind=FailureKind.CHATWOOT_HTTP, message="m", chatwoot_status=404,
                      detail='{"error":"Resource could not be found"}', chatwoot_endpoint="GET /api/v1/accounts/5"),
        400, "Chatwoot account or endpoint not found — verify chatwootBaseUrl (https://chatwoot.example.com) "
             'and chatwootAccountId (5). Detail: {"error":"Resource could not be found"}',
    ),
    (
        BridgeFailure(kind=FailureKind.CHATWOOT_HTTP, message="m", chatwoot_status=422,
                      detail='{"message":"Name is invalid"}', chatwoot_endpoint="POST /api/v1/accounts/5/inboxes"),
        400, 'Chatwoot rejected the request as invalid — verify the inbox settings. Detail: {"message":"Name is invalid"}',
    ),
    (
        BridgeFailure(kind=FailureKind.CHATWOOT_UNREACHABLE, message="m", detail="Cannot connect to host"),
        502, "Chatwoot unreachable — verify chatwootBaseUrl (https://chatwoot.example.com). Detail: Cannot connect to host",
    ),
    (
        BridgeFailure(kind=FailureKind.CHATWOOT_TIMEOUT, message="m", detail="read timed out after 55s"),
        504, "Chatwoot did not answer within 60s — verify chatwootBaseUrl (https://chatwoot.example.com). "
             "Detail: read timed out after 55s",
    ),
]  # fmt: skip


async def test_set_maps_bridge_failures(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("fails")
    for n, (failure, status, message) in enumerate(FAILURES):
        fake_bridge.fail_activate(502, failure)
        r = await activate(ryze_lite, "fails")
        assert (r.status_code, r.json()) == (status, err(message))
        assert await stored_row(ryze_lite, "fails") is None
        # The inline path words the same failure identically, and still creates the instance.
        body = await ryze_lite.new_instance(f"fails-inline-{n}", chatwootEnabled=True, **SET_BODY)
        assert body["chatwoot"] == {"status": "error", "error": message}


async def test_set_when_the_bridge_is_down_slow_or_garbled(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("gw")
    fake_bridge.activate_raw = (500, "<html>proxy error</html>")
    r = await activate(ryze_lite, "gw")
    assert (r.status_code, r.json()) == (
        502,
        err("integration gateway unreachable. Detail: HTTP 500: <html>proxy error</html>"),
    )
    fake_bridge.activate_raw = None
    fake_bridge.activate_delay = 5
    ryze_lite.module.service.config = dataclasses.replace(
        ryze_lite.module.service.config, activate_timeout=0.2, activate_grace=0.1
    )
    r = await activate(ryze_lite, "gw")
    assert r.status_code == 504
    # The message names the budget it waited (60 s in production, the documented figure).
    assert r.json()["error"]["message"].startswith(
        "Chatwoot did not answer within 0.2s — verify chatwootBaseUrl (https://chatwoot.example.com). Detail: "
    )
    await fake_bridge.stop()
    r = await activate(ryze_lite, "gw")
    assert r.status_code == 502
    assert r.json()["error"]["message"].startswith("integration gateway unreachable. Detail: ")


async def test_token_never_leaks_into_responses_or_logs(
    ryze_lite: Ryze, fake_bridge: FakeBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await ryze_lite.new_instance("leak")
    responses: list[httpx.Response] = []
    # A Chatwoot error that echoes the token back must not carry it to the client either.
    fake_bridge.fail_activate(
        502,
        BridgeFailure(
            kind=FailureKind.CHATWOOT_HTTP, message="m", chatwoot_status=401, detail=f"bad token {CW_TOKEN}"
        ),
    )
    responses.append(await activate(ryze_lite, "leak"))
    fake_bridge.activate_failure = None
    responses.append(await activate(ryze_lite, "leak"))
    async with ryze_lite.client() as c:
        responses.append(await c.get("/api/chatwoot/list/leak"))
        responses.append(await c.delete("/api/chatwoot/delete/leak"))
    inline = await ryze_lite.new_instance("leak2", chatwootEnabled=True, **SET_BODY)
    assert inline["chatwoot"]["status"] == "active"
    assert [r.status_code for r in responses] == [401, 201, 200, 200]
    assert "[redacted]" in responses[0].json()["error"]["message"]
    for r in responses:
        assert CW_TOKEN not in r.text
        assert all(CW_TOKEN not in v for v in r.headers.values())
    assert CW_TOKEN not in str(inline)
    formatter = JsonFormatter()
    assert caplog.records
    for record in caplog.records:
        assert CW_TOKEN not in record.getMessage()
        assert CW_TOKEN not in formatter.format(record)
        assert CW_TOKEN not in str(record.__dict__)


# ------------------------------------------------------------------------------------- list


async def test_list_without_integration(ryze_lite: Ryze) -> None:
    await ryze_lite.new_instance("empty")
    async with ryze_lite.client() as c:
        r = await c.get("/api/chatwoot/list/empty")
    assert (r.status_code, r.json()) == (404, err("no chatwoot integration for this instance"))


async def test_list_enriched_from_the_bridge(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze.new_instance("live")
    fake_bridge.next_inbox_id = 0  # the inbox id is not known yet at activation
    assert (
        await activate(ryze, "live", inboxName="WhatsApp - Orion", reopenResolved=True)
    ).status_code == 201
    fake_bridge.live_status, fake_bridge.live_error, fake_bridge.live_inbox_id = "paused", "link down", 42
    async with ryze.client() as c:
        r = await c.get("/api/chatwoot/list/live")
    assert r.status_code == 200
    body = r.json()
    created_at = body.pop("created_at")
    assert len(created_at) == 20 and created_at.endswith("Z")
    assert body == {
        "instance_name": "live",
        "status": "paused",
        "bridge_integration_id": "int_1",
        "chatwoot_base_url": "https://chatwoot.example.com",
        "chatwoot_account_id": 5,
        "chatwoot_inbox_id": 42,
        "chatwoot_inbox_name": "WhatsApp - Orion",
        "last_error": "link down",
        "sign_messages": False,
        "ignore_groups": False,
        "start_as_pending": False,
        "reopen_resolved": True,
    }
    row = await stored_row(ryze, "live")
    assert row is not None and row["chatwoot_inbox_id"] == 42  # back-filled
    assert row["status"] == "active"  # live values are not written back
    [get] = fake_bridge.calls("GET")
    assert get.path == "/v1/integrations/int_1"
    assert get.headers["Authorization"] == f"Bearer {fake_bridge.token}"


async def test_list_shows_the_bridges_last_self_check_next_to_the_documented_fields(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    await ryze.new_instance("checked")
    assert (await activate(ryze, "checked")).status_code == 201
    async with ryze.client() as c:
        before = (await c.get("/api/chatwoot/list/checked")).json()
    assert "checks" not in before  # no self-check finished yet
    fake_bridge.live_checks = SelfCheckReport(
        status=CheckOutcome.FAIL,
        trigger="activation",
        ran_at="2026-12-04T22:00:00Z",
        checks=[
            CheckResult(name="token_admin", status=CheckOutcome.OK, message="The token is an admin's."),
            CheckResult(name="round_trip", status=CheckOutcome.FAIL, message="Chatwoot cannot reach it."),
        ],
    )
    async with ryze.client() as c:
        body = (await c.get("/api/chatwoot/list/checked")).json()
    assert body.pop("checks") == {
        "status": "fail",
        "trigger": "activation",
        "ran_at": "2026-12-04T22:00:00Z",
        "checks": [
            {"name": "token_admin", "status": "ok", "message": "The token is an admin's."},
            {"name": "round_trip", "status": "fail", "message": "Chatwoot cannot reach it."},
        ],
    }
    assert body == before  # every documented field as it was


async def test_list_falls_back_when_the_bridge_is_slow_or_down(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze.new_instance("fallback")
    assert (await activate(ryze, "fallback")).status_code == 201
    fake_bridge.live_status = "error"
    fake_bridge.get_delay = 30
    ryze.module.service.config = dataclasses.replace(ryze.module.service.config, status_timeout=0.2)
    async with ryze.client() as c:
        slow = await c.get("/api/chatwoot/list/fallback")
        fake_bridge.get_delay = 0
        fake_bridge.get_status = 500
        failing = await c.get("/api/chatwoot/list/fallback")
        await fake_bridge.stop()
        down = await c.get("/api/chatwoot/list/fallback")
    for r in (slow, failing, down):
        assert r.status_code == 200
        assert (r.json()["status"], r.json()["last_error"], r.json()["chatwoot_inbox_id"]) == (
            "active",
            "",
            41,
        )


# ------------------------------------------------------------------------------------- delete


@pytest.mark.parametrize("bridge_status", [200, 404, 500])
async def test_delete_removes_the_row_whatever_the_bridge_says(
    ryze: Ryze, fake_bridge: FakeBridge, bridge_status: int, caplog: pytest.LogCaptureFixture
) -> None:
    await ryze.new_instance("bye")
    assert (await activate(ryze, "bye")).status_code == 201
    fake_bridge.delete_status = bridge_status
    caplog.set_level(logging.WARNING)
    async with ryze.client() as c:
        r = await c.delete("/api/chatwoot/delete/bye")
        assert (r.status_code, r.json()) == (200, {"message": "chatwoot integration deactivated"})
        again = await c.delete("/api/chatwoot/delete/bye")
        assert (again.status_code, again.json()) == (404, err("no chatwoot integration to delete"))
        listed = await c.get("/api/chatwoot/list/bye")
        assert listed.status_code == 404
    assert await stored_row(ryze, "bye") is None
    [call] = fake_bridge.calls("DELETE")
    assert call.path == "/v1/integrations/int_1" and call.query == {}
    warned = [rec for rec in caplog.records if "delete the integration" in rec.getMessage()]
    assert bool(warned) == (bridge_status == 500)


async def test_delete_keep_inbox_and_bridge_down(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze.new_instance("keep")
    assert (await activate(ryze, "keep")).status_code == 201
    async with ryze.client() as c:
        assert (await c.delete("/api/chatwoot/delete/keep?keepInbox=true")).status_code == 200
    assert fake_bridge.calls("DELETE")[0].query == {"keepInbox": "true"}
    assert (await activate(ryze, "keep")).status_code == 201
    await fake_bridge.stop()
    async with ryze.client() as c:
        assert (await c.delete("/api/chatwoot/delete/keep")).status_code == 200
    assert await stored_row(ryze, "keep") is None


async def test_instance_deletion_tears_the_integration_down(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze.new_instance("gone")
    assert (await activate(ryze, "gone")).status_code == 201
    async with ryze.client() as c:
        r = await c.delete("/api/instance/delete/gone")
    assert r.status_code == 200, r.text
    [call] = fake_bridge.calls("DELETE")
    assert call.path == "/v1/integrations/int_1" and call.query == {}
    assert await stored_row(ryze, "gone") is None


# ------------------------------------------------------------------------------------- inline


async def test_inline_activation_success(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    body = await ryze.new_instance(
        "inline",
        chatwootEnabled=True,
        chatwootBaseUrl="https://chatwoot.example.com",
        chatwootAccountId=5,
        chatwootApiToken=CW_TOKEN,
        chatwootInboxName="Inline Box",
        chatwootIgnoreGroups=True,
    )
    assert body["chatwoot"] == {"status": "active", "bridge_integration_id": "int_1", "chatwoot_inbox_id": 41}
    sent = fake_bridge.calls("POST")[0].body
    assert sent is not None and sent["inbox_name"] == "Inline Box" and sent["ignore_groups"] is True
    row = await stored_row(ryze, "inline")
    assert row is not None and row["chatwoot_inbox_name"] == "Inline Box"
    no_block = await ryze.new_instance("plain")
    assert "chatwoot" not in no_block


async def test_inline_activation_invalid_block(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    body = await ryze_lite.new_instance("inline-bad", chatwootEnabled=True, chatwootAccountId=5)
    assert body["chatwoot"] == {"status": "error", "error": "invalid body: chatwootBaseUrl is required"}
    assert fake_bridge.calls("POST") == []
