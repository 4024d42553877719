"""``/api/instance/*``: creation rules, listing, deletion, connect (QR / pairing code), state."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ryze.api.records import InstanceRecord

from .harness import Api


async def create(api: Api, token: str, body: Any) -> Any:
    return await api.client.post("/api/instance/new", json=body, headers={"token": token})


async def test_create_returns_the_instance_token(api: Api, account_token: str) -> None:
    resp = await create(api, account_token, {"name": "orion"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["success"] is True
    assert body["instance"]["name"] == "orion"
    assert body["instance"]["status"] == "disconnected"
    assert len(body["instance"]["token"]) >= 32
    assert body["webhook"]["enabled"] is False


async def test_create_with_custom_token_and_blocks(api: Api, account_token: str) -> None:
    body = {
        "name": "orion",
        "token": "my-own-instance-token-123",
        "proxyEnabled": True,
        "proxyHost": "proxy.local",
        "proxyPort": "1080",
        "proxyProtocol": "SOCKS5",
        "proxyUsername": "bob",
        "proxyPassword": "hunter2-secret",
        "webhookEnabled": True,
        "webhookURL": "https://hooks.example/x",
        "webhookAuthorization": "Bearer wh-secret",
        "webhookEvents": ["message.exchange"],
        "websocketEnabled": True,
        "websocketEvents": ["instance.state"],
        "ignoreGroupMessages": True,
        "s3Enabled": True,
        "s3Bucket": "media",
        "s3SecretKey": "s3-secret",
    }
    resp = await create(api, account_token, body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["instance"]["token"] == "my-own-instance-token-123"
    assert out["proxy"] == {
        "enabled": True, "host": "proxy.local", "port": "1080", "protocol": "SOCKS5", "username": "bob",
    }  # fmt: skip
    assert out["webhook"]["url"] == "https://hooks.example/x"
    assert "authorization" not in out["webhook"]
    assert out["websocket"] == {"enabled": True, "events": ["instance.state"], "mediaBase64": False}
    assert out["settings"]["ignoreGroupMessages"] is True
    assert "secretKey" not in out["s3"]
    assert "hunter2-secret" not in resp.text and "wh-secret" not in resp.text and "s3-secret" not in resp.text
    # the custom token authenticates
    status = await api.client.get(
        "/api/instance/status/orion", headers={"token": "my-own-instance-token-123"}
    )
    assert status.status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, None])
async def test_name_is_required(api: Api, account_token: str, body: Any) -> None:
    resp = await create(api, account_token, body)
    assert resp.status_code == 400
    assert resp.json() == {"success": False, "error": {"message": "Instance name is required"}}


@pytest.mark.parametrize("name", ["has space", "-leading", "a/b", "x" * 65, "ünï"])
async def test_name_rules(api: Api, account_token: str, name: str) -> None:
    resp = await create(api, account_token, {"name": name})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid instance name")


async def test_duplicate_name_is_409(api: Api, account_token: str) -> None:
    await api.instance(account_token, "orion")
    resp = await create(api, account_token, {"name": "orion"})
    assert resp.status_code == 409
    assert "Duplicate instance name" in resp.json()["error"]["message"]
    # names are global: another account cannot take it either
    other = await api.account("other")
    assert (await create(api, other, {"name": "orion"})).status_code == 409


async def test_duplicate_custom_token_is_409(api: Api, account_token: str) -> None:
    await api.instance(account_token, "orion", token="shared-token-0123456789")
    resp = await create(api, account_token, {"name": "vega", "token": "shared-token-0123456789"})
    assert resp.status_code == 409
    assert resp.json()["error"]["message"] == "Token already in use by another instance"


async def test_short_custom_token_is_400(api: Api, account_token: str) -> None:
    resp = await create(api, account_token, {"name": "orion", "token": "short"})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid token")


async def test_quota_is_403(api: Api) -> None:
    token = await api.account("small", quota=1)
    await api.instance(token, "one")
    resp = await create(api, token, {"name": "two"})
    assert resp.status_code == 403
    assert resp.json() == {"success": False, "error": {"message": "Account instance quota exceeded"}}


async def test_list_counts_and_filters(api: Api, account_token: str) -> None:
    for name in ("a1", "a2", "a3"):
        await api.instance(account_token, name)
    other = await api.account("other")
    await api.instance(other, "foreign")

    resp = await api.client.get("/api/instance/list", headers={"token": account_token})
    body = resp.json()
    assert body["message"] == "3 Instances found"
    assert [i["name"] for i in body["instances"]] == ["a1", "a2", "a3"]
    item = body["instances"][0]
    assert item["connection"] == {
        "state": "disconnected", "numberJid": None, "presenceStatus": "unavailable",
        "displayStatus": "disconnected",
    }  # fmt: skip
    assert set(item) >= {"profile", "webhook", "websocket", "proxy", "settings", "s3"}

    resp = await api.client.get(
        "/api/instance/list?instanceName=a1,ghost,a3", headers={"token": account_token}
    )
    assert resp.json()["message"] == "2 Instances found"

    resp = await api.client.get("/api/instance/list?instanceName=a2", headers={"token": account_token})
    assert resp.json()["message"] == "1 Instance found"

    resp = await api.client.get("/api/instance/list?instanceName=foreign", headers={"token": account_token})
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Instance not found"


async def test_list_with_instance_token_shows_only_itself(api: Api, account_token: str) -> None:
    token = await api.instance(account_token, "a1")
    await api.instance(account_token, "a2")
    resp = await api.client.get("/api/instance/list?instanceName=a2", headers={"token": token})
    body = resp.json()
    assert body["message"] == "1 Instance found"
    assert [i["name"] for i in body["instances"]] == ["a1"]


class RecordingHooks:
    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.deleting: list[str] = []

    async def on_created(self, instance: InstanceRecord, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append((instance.name, body))
        return {"chatwoot": {"status": "active"}} if body.get("chatwootEnabled") else {}

    async def on_deleting(self, instance: InstanceRecord) -> None:
        self.deleting.append(instance.name)


async def test_hooks_receive_the_chatwoot_block(api: Api, account_token: str) -> None:
    hooks = RecordingHooks()
    api.services.instance_hooks.append(hooks)
    body = {
        "name": "suporte", "chatwootEnabled": True, "chatwootBaseUrl": "https://cw.example",
        "chatwootAccountId": 5, "chatwootApiToken": "sk_live_abc", "chatwootInboxName": "WhatsApp - Orion",
    }  # fmt: skip
    resp = await create(api, account_token, body)
    assert resp.status_code == 201
    assert resp.json()["chatwoot"] == {"status": "active"}
    assert hooks.created == [("suporte", body)]
    resp = await api.client.delete("/api/instance/delete/suporte", headers={"token": account_token})
    assert resp.status_code == 200
    assert hooks.deleting == ["suporte"]


async def test_delete_logs_out_and_removes_everything(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await api.client.delete("/api/instance/delete/orion", headers={"token": account_token})
    assert resp.status_code == 200
    assert resp.json() == {"success": True, "message": "Instance deleted", "instance": {"status": "deleted"}}
    assert "orion" not in api.engine.logins
    assert [e.data["state"] for e in api.of("instance.state")][-1] == "loggedout"
    # the token is gone with it, and the name is free again
    resp = await api.client.get("/api/instance/list", headers={"token": token})
    assert resp.status_code == 401
    resp = await api.client.delete("/api/instance/delete/orion", headers={"token": account_token})
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Instance not found"
    await api.instance(account_token, "orion")


async def test_connect_returns_a_qr_code(api: Api, account_token: str) -> None:
    token = await api.instance(account_token)
    resp = await api.client.get("/api/instance/connect/orion", headers={"token": token})
    assert resp.status_code == 200
    body = resp.json()
    assert body["success"] is True
    assert body["message"] == "QR code generated"
    assert body["status"] == "qr"
    assert body["qrCode"].startswith("2@")
    prefix = "data:image/png;base64,"
    assert body["qrCodeBase64"].startswith(prefix)
    assert base64.b64decode(body["qrCodeBase64"][len(prefix) :]).startswith(b"\x89PNG")
    assert [e.data for e in api.of("instance.state")] == [
        {"state": "connecting"},
        {"state": "qr_ready", "qr": body["qrCode"]},
    ]


async def test_connect_with_number_returns_a_pairing_code(api: Api, account_token: str) -> None:
    token = await api.instance(account_token)
    resp = await api.client.get("/api/instance/connect/orion?number=5511999999999", headers={"token": token})
    assert resp.status_code == 200
    body = resp.json()
    assert body["message"] == "Pairing code generated"
    assert len(body["pairingCode"]) == 8 and body["pairingCode"].isalnum()
    # the phone enters the code: the instance connects as that number
    await api.client.post("/_simulator/orion/scan", json={}, headers={"token": token})
    status = await api.client.get("/api/instance/status/orion", headers={"token": token})
    assert status.json()["instance"] == {
        "name": "orion",
        "state": "connected",
        "numberJid": "5511999999999@s.whatsapp.net",
    }


async def test_connect_with_invalid_number_is_400(api: Api, account_token: str) -> None:
    token = await api.instance(account_token)
    resp = await api.client.get("/api/instance/connect/orion?number=abc", headers={"token": token})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid number")


async def test_pairing_number_takes_ascii_digits_only(api: Api, account_token: str) -> None:
    token = await api.instance(account_token)
    resp = await api.client.get(
        "/api/instance/connect/orion", params={"number": "٥٥١١٩٩٩٩٩٩٩٩٩"}, headers={"token": token}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid number")


async def test_connect_when_connected(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await api.client.get("/api/instance/connect/orion", headers={"token": token})
    assert resp.json() == {
        "success": True, "message": "Instance already connected", "status": "connected",
        "numberJid": "5511900000001@s.whatsapp.net",
    }  # fmt: skip
    listed = await api.client.get("/api/instance/list", headers={"token": token})
    assert listed.json()["instances"][0]["connection"]["state"] == "connected"
    assert listed.json()["instances"][0]["connection"]["numberJid"] == "5511900000001@s.whatsapp.net"


class BrokenHooks:
    async def on_created(self, instance: InstanceRecord, body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("hook bug")

    async def on_deleting(self, instance: InstanceRecord) -> None:
        raise RuntimeError("hook bug")


async def test_a_broken_hook_does_not_break_create_or_delete(api: Api, account_token: str) -> None:
    api.services.instance_hooks.append(BrokenHooks())
    resp = await create(api, account_token, {"name": "orion"})
    assert resp.status_code == 201 and resp.json()["instance"]["token"]
    resp = await api.client.delete("/api/instance/delete/orion", headers={"token": account_token})
    assert resp.status_code == 200
