"""Every error leaves as ``{"success": false, "error": {"message": ...}}``; FastAPI's 422 never does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Api, make_settings, start_api


async def post_text(
    api: Api, token: str, content: bytes, content_type: str = "application/json"
) -> tuple[int, dict[str, object]]:
    resp = await api.client.post(
        "/api/message/text/orion", content=content, headers={"token": token, "content-type": content_type}
    )
    return resp.status_code, resp.json()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"number": 5511, "message": "x"}', "Invalid request body: field 'number' must be a string"),
        (b'{"number": "5511999999999"}', "Invalid request body: field 'message' is required"),
        (b'{"message": "x"}', "Invalid request body: field 'number' is required"),
        (
            b'{"number": "5511999999999", "message": ["x"]}',
            "Invalid request body: field 'message' must be a string",
        ),
        (
            b'{"number": "5511999999999", "message": "x", "delay": "soon"}',
            "Invalid request body: field 'delay' must be an integer",
        ),
        (
            b'{"number": "5511999999999", "message": "x", "linkPreview": "yes"}',
            "Invalid request body: field 'linkPreview' must be a boolean",
        ),
        (b'["number"]', "Invalid request body: expected a JSON object"),
        (b'{"number": "55', "Invalid JSON body"),
        (b"not json at all", "Invalid JSON body"),
        (b"", "Invalid request body: expected a JSON object"),
    ],
)
async def test_bad_bodies_are_400(api: Api, account_token: str, content: bytes, message: str) -> None:
    token = await api.connected_instance(account_token)
    status, body = await post_text(api, token, content)
    assert status == 400
    assert body == {"success": False, "error": {"message": message}}


async def test_wrong_type_on_instance_creation(api: Api, account_token: str) -> None:
    resp = await api.client.post("/api/instance/new", json={"name": 7}, headers={"token": account_token})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "Invalid request body: field 'name' must be a string"
    resp = await api.client.post(
        "/api/instance/new", json={"name": "ok", "webhookEvents": "all"}, headers={"token": account_token}
    )
    assert resp.json()["error"]["message"] == "Invalid request body: field 'webhookEvents' must be an array"


async def test_unknown_route_and_method(api: Api) -> None:
    resp = await api.client.get("/api/nothing-here")
    assert resp.status_code == 404
    assert resp.json() == {"success": False, "error": {"message": "Not found"}}
    resp = await api.client.put("/api/instance/list")
    assert resp.status_code == 405
    assert resp.json() == {"success": False, "error": {"message": "Method not allowed"}}


@pytest.fixture
async def small_api(tmp_path: Path) -> AsyncIterator[Api]:
    async for api in start_api(make_settings(tmp_path, max_body_bytes=1024)):
        yield api


async def test_oversized_body_is_413(small_api: Api) -> None:
    token = await small_api.account()
    await small_api.connected_instance(token)
    big = b'{"number": "5511999999999", "message": "' + b"x" * 2000 + b'"}'
    status, body = await post_text(small_api, token, big)
    assert status == 413
    assert body == {"success": False, "error": {"message": "Request body too large (limit 1024 bytes)"}}


async def test_oversized_chunked_body_is_413(small_api: Api) -> None:
    token = await small_api.account()
    await small_api.connected_instance(token)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"number": "5511999999999", "message": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    resp = await small_api.client.post(
        "/api/message/text/orion",
        content=chunks(),
        headers={"token": token, "content-type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["message"] == "Request body too large (limit 1024 bytes)"


async def test_bad_query_parameter_is_400(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await api.client.get("/_simulator/orion/outbox?after=soon", headers={"token": token})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "Invalid request: query parameter 'after' must be an integer"
    resp = await api.client.get("/api/chat/getMessage/orion", headers={"token": token})
    assert resp.json()["error"]["message"] == "Invalid request: query parameter 'messageId' is required"


async def test_engine_failures_keep_the_envelope(
    api: Api, account_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ryze.engines.base import EngineError, UnsupportedError

    token = await api.connected_instance(account_token)
    session = api.engine.session("orion")
    assert session is not None

    async def unsupported(*_args: object, **_kwargs: object) -> None:
        raise UnsupportedError("Stickers are not supported by this engine")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise EngineError("WhatsApp refused the message: not on WhatsApp")

    for fake, status in ((unsupported, 501), (broken, 500)):
        monkeypatch.setattr(session, "send_text", fake)
        status_code, body = await post_text(api, token, b'{"number": "5511999999999", "message": "x"}')
        assert status_code == status
        assert body["success"] is False and "error" in body


async def test_unexpected_errors_are_500_with_the_envelope(
    api: Api, account_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    token = await api.connected_instance(account_token)

    async def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(api.services.messaging, "send_text", crash)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ryze.test") as client:
        resp = await client.post(
            "/api/message/text/orion",
            json={"number": "5511999999999", "message": "x"},
            headers={"token": token},
        )
    assert resp.status_code == 500
    assert resp.json() == {"success": False, "error": {"message": "Internal server error"}}
