"""Token transports, the documented 401 strings and ownership (403)."""

from __future__ import annotations

import pytest

from .harness import Api


async def test_header_token_is_accepted(api: Api, account_token: str) -> None:
    resp = await api.client.get("/api/instance/list", headers={"token": account_token})
    assert resp.status_code == 200
    assert resp.json()["message"] == "0 Instances found"


async def test_bearer_token_is_accepted(api: Api, account_token: str) -> None:
    resp = await api.client.get("/api/instance/list", headers={"Authorization": f"Bearer {account_token}"})
    assert resp.status_code == 200


async def test_header_wins_over_bearer(api: Api, account_token: str) -> None:
    headers = {"token": account_token, "Authorization": "Bearer not-a-token"}
    resp = await api.client.get("/api/instance/list", headers=headers)
    assert resp.status_code == 200


async def test_query_token_is_not_accepted_on_http_routes(api: Api, account_token: str) -> None:
    resp = await api.client.get("/api/instance/list", params={"token": account_token})
    assert resp.status_code == 401
    assert resp.json() == {"success": False, "error": {"message": "Missing token in header"}}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}])
async def test_missing_token(api: Api, headers: dict[str, str]) -> None:
    resp = await api.client.get("/api/instance/list", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "Missing token in header"


async def test_unknown_token(api: Api) -> None:
    resp = await api.client.get("/api/instance/list", headers={"token": "nope-nope-nope"})
    assert resp.status_code == 401
    assert resp.json() == {"success": False, "error": {"message": "Invalid token"}}


async def test_instance_token_cannot_create_or_delete(api: Api, account_token: str) -> None:
    instance_token = await api.instance(account_token)
    resp = await api.client.post(
        "/api/instance/new", json={"name": "other"}, headers={"token": instance_token}
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "Invalid token"
    resp = await api.client.delete("/api/instance/delete/orion", headers={"token": instance_token})
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "Invalid token"


async def test_instance_token_of_another_instance_is_forbidden(api: Api, account_token: str) -> None:
    await api.instance(account_token, "orion")
    other = await api.instance(account_token, "vega")
    resp = await api.client.get("/api/instance/connect/orion", headers={"token": other})
    assert resp.status_code == 403
    assert resp.json()["error"]["message"].startswith("Instance token does not ma")


async def test_account_token_of_another_account_is_forbidden(api: Api, account_token: str) -> None:
    await api.instance(account_token, "orion")
    stranger = await api.account("stranger")
    for method, path in [
        ("GET", "/api/instance/connect/orion"),
        ("GET", "/api/instance/status/orion"),
        ("DELETE", "/api/instance/delete/orion"),
        ("POST", "/api/message/text/orion"),
    ]:
        resp = await api.client.request(
            method, path, headers={"token": stranger}, json={"number": "5511999999999", "message": "x"}
        )
        assert resp.status_code == 403, path
        assert resp.json()["error"]["message"] == "Account token does not own this instance"


async def test_unknown_instance_is_404_before_ownership(api: Api, account_token: str) -> None:
    resp = await api.client.get("/api/instance/connect/ghost", headers={"token": account_token})
    assert resp.status_code == 404
    assert resp.json() == {"success": False, "error": {"message": "Instance not found"}}


async def test_auth_is_checked_before_the_instance_exists(api: Api) -> None:
    resp = await api.client.get("/api/instance/connect/ghost")
    assert resp.status_code == 401


async def test_account_token_works_on_its_instances(api: Api, account_token: str) -> None:
    await api.instance(account_token)
    resp = await api.client.get("/api/instance/status/orion", headers={"token": account_token})
    assert resp.status_code == 200
    assert resp.json()["instance"]["state"] == "disconnected"
