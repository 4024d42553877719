"""Contract details pinned by the public-contract review: media downloads are complete, every
response carries the rate-limit headers (500 included), token transport edge cases, the pairing
code's documented length, RFC 3339 timestamps, the published OpenAPI never promising FastAPI's
422 body, and secrets kept out of reprs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from ryze.api.bridge_link.config import ChatwootConfig
from ryze.api.bridge_link.validation import ActivationInput
from ryze.api.services import media as media_io
from ryze.api.settings import ApiSettings
from ryze.common.outbound import Fetcher, FetchLimits, FetchPolicy
from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.engines.base import ConnectionState, ConnectResult

from .harness import BASE, Api, make_settings

# Larger than one aiohttp read chunk (64 KiB) and sent in many writes: a single
# ``StreamReader.read(n)`` returns only what is buffered and used to truncate such files.
BIG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8192  # ~2 MiB
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def big_file_server() -> AsyncIterator[str]:
    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        await resp.prepare(request)
        for i in range(0, len(BIG), 32 * 1024):
            await resp.write(BIG[i : i + 32 * 1024])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    async def sized(_request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/chunked.png", chunked)
    app.router.add_get("/sized.png", sized)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- media by URL ---------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    # The media server listens on loopback, which the outbound-fetch policy refuses by default.
    return make_settings(tmp_path, fetch_allow=LOOPBACK_ALLOW)


def loopback_fetcher(max_bytes: int = 100 * 1024 * 1024) -> Fetcher:
    policy = FetchPolicy.from_setting(LOOPBACK_ALLOW, setting="FETCH_ALLOW")
    return Fetcher(policy, FetchLimits(max_bytes=max_bytes))


@pytest.mark.parametrize("path", ["/chunked.png", "/sized.png"])
async def test_download_reads_the_whole_body(big_file_server: str, path: str) -> None:
    data, content_type, name = await media_io.download(loopback_fetcher(), big_file_server + path)
    assert len(data) == len(BIG)
    assert data == BIG
    assert content_type == "image/png"
    assert name == path.lstrip("/")


@pytest.mark.parametrize("path", ["/chunked.png", "/sized.png"])
async def test_download_over_the_media_limit_is_413(big_file_server: str, path: str) -> None:
    from ryze.api.errors import ApiError

    with pytest.raises(ApiError) as caught:
        await media_io.download(loopback_fetcher(max_bytes=100_000), big_file_server + path)
    assert (caught.value.status, caught.value.message) == (413, "Media too large")


async def test_send_media_by_url_sends_every_byte(api: Api, account_token: str, big_file_server: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await api.client.post(
        "/api/message/media/orion",
        json={"number": "5511988887777", "mediaType": "image", "mediaUrl": f"{big_file_server}/chunked.png"},
        headers={"token": token},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["mediaSize"] == len(BIG)
    items = (await api.client.get("/_simulator/orion/outbox", headers={"token": token})).json()["items"]
    handle = items[-1]["media"]["handle"]
    blob = await api.client.get(f"/_simulator/orion/media/{handle}", headers={"token": token})
    assert blob.status_code == 200
    assert blob.content == BIG


# -- rate-limit headers on every response -----------------------------------------------------------


async def test_unexpected_500_still_carries_rate_limit_headers(
    api: Api, account_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await api.connected_instance(account_token)

    async def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(api.services.messaging, "send_text", crash)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        resp = await client.post(
            "/api/message/text/orion",
            json={"number": "5511999999999", "message": "x"},
            headers={"token": token},
        )
    assert resp.status_code == 500
    assert resp.json() == {"success": False, "error": {"message": "Internal server error"}}
    for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert resp.headers[header].isdigit(), header


# -- token transport ------------------------------------------------------------------------------


async def test_blank_token_header_falls_back_to_bearer(api: Api, account_token: str) -> None:
    resp = await api.client.get(
        "/api/instance/list", headers={"token": "   ", "Authorization": f"Bearer {account_token}"}
    )
    assert resp.status_code == 200, resp.text


async def test_query_token_is_refused_on_chatwoot_routes_too(api: Api, account_token: str) -> None:
    resp = await api.client.get("/api/chatwoot/list/orion", params={"token": account_token})
    assert resp.status_code == 401
    assert resp.json() == {"success": False, "error": {"message": "Missing token in header"}}


# -- connect: the documented 8-character pairing code ---------------------------------------------


async def test_pairing_code_is_the_eight_characters_to_type(
    api: Api, account_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await api.instance(account_token)
    record = await api.services.instances.get("orion")
    assert record is not None
    session = await api.services.sessions.get(record)

    async def whatsmeow_style(*_args: Any, **_kwargs: Any) -> ConnectResult:
        # whatsmeow's PairPhone formats the code as "ABCD-EFGH"
        return ConnectResult(state=ConnectionState.QR_READY, qr="qr-data", pairing_code="ABCD-EFGH")

    monkeypatch.setattr(session, "connect", whatsmeow_style)
    resp = await api.client.get("/api/instance/connect/orion?number=5511999999999", headers={"token": token})
    assert resp.status_code == 200, resp.text
    assert resp.json()["pairingCode"] == "ABCDEFGH"


# -- timestamps -----------------------------------------------------------------------------------


async def test_created_at_is_rfc3339_utc_on_create_and_list(api: Api, account_token: str) -> None:
    created = await api.client.post(
        "/api/instance/new", json={"name": "orion"}, headers={"token": account_token}
    )
    assert RFC3339_UTC.match(created.json()["instance"]["createdAt"]), created.json()["instance"]
    # drop the in-process cache so the value comes back from the database (naive on SQLite)
    api.services.instances._by_name.clear()
    api.services.instances._by_token_hash.clear()
    listed = await api.client.get("/api/instance/list", headers={"token": account_token})
    stamp = listed.json()["instances"][0]["createdAt"]
    assert RFC3339_UTC.match(stamp), stamp
    assert stamp == created.json()["instance"]["createdAt"]


# -- the published schema -------------------------------------------------------------------------


async def test_openapi_documents_the_error_envelope_not_fastapis_422(api: Api) -> None:
    resp = await api.client.get("/openapi.json")
    assert resp.status_code == 200
    schema = resp.json()
    text = resp.text
    assert '"422"' not in text
    assert "HTTPValidationError" not in text
    send_text = schema["paths"]["/api/message/text/{instance}"]["post"]["responses"]
    assert send_text["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["success", "error"]
    assert envelope["properties"]["error"]["properties"] == {"message": {"type": "string"}}


# -- secrets stay out of reprs --------------------------------------------------------------------


def test_secrets_are_not_in_reprs() -> None:
    settings = ApiSettings(
        _env_file=None,  # type: ignore[call-arg]
        bridge_token="bridge-secret-123",
        encryption_key="key-secret-456",
        database_url="postgresql://u:db-secret-789@host/db",
    )
    config = ChatwootConfig("http://bridge", "bridge-secret-123", "http://ryze")
    activation = ActivationInput("https://cw.example", 5, "chatwoot-secret-000", "inbox")
    for text in (repr(settings), str(settings), repr(config), repr(activation)):
        for secret in ("bridge-secret-123", "key-secret-456", "db-secret-789", "chatwoot-secret-000"):
            assert secret not in text
    # the values themselves are untouched
    assert settings.bridge_token == "bridge-secret-123"
    assert config.bridge_token == "bridge-secret-123"
    assert activation.api_token == "chatwoot-secret-000"


# -- check order: auth (401) → instance (404) → ownership (403) → body (400) ----------------------


@pytest.mark.parametrize(
    ("path", "headers_for", "status", "message"),
    [
        ("/api/message/text/orion", "none", 401, "Missing token in header"),
        ("/api/message/text/orion", "unknown", 401, "Invalid token"),
        ("/api/message/media/orion", "none", 401, "Missing token in header"),
        ("/api/instance/new", "none", 401, "Missing token in header"),
        ("/api/instance/new", "instance", 401, "Invalid token"),  # TokenAccount only
        ("/api/message/text/ghost", "instance", 404, "Instance not found"),
        ("/api/message/media/ghost", "account", 404, "Instance not found"),
        ("/api/message/text/orion", "other", 403, "Instance token does not match this instance"),
        ("/api/message/media/orion", "other", 403, "Instance token does not match this instance"),
    ],
)
@pytest.mark.parametrize("content", [b"{not json", b'{"number": 5}', b""])
async def test_malformed_bodies_do_not_skip_auth_or_ownership(
    api: Api, account_token: str, path: str, headers_for: str, status: int, message: str, content: bytes
) -> None:
    tokens = {
        "none": None,
        "unknown": "not-a-token-of-anyone",
        "account": account_token,
        "instance": await api.instance(account_token, "orion"),
        "other": await api.instance(account_token, "other"),
    }
    token = tokens[headers_for]
    headers = {"content-type": "application/json"} | ({"token": token} if token else {})
    resp = await api.client.post(path, content=content, headers=headers)
    assert resp.status_code == status, resp.text
    assert resp.json() == {"success": False, "error": {"message": message}}


async def test_bodies_are_json_whatever_the_content_type(api: Api, account_token: str) -> None:
    # ``curl -d`` sends application/x-www-form-urlencoded; the JSON body is still read.
    resp = await api.client.post(
        "/api/instance/new",
        content=b'{"name": "orion"}',
        headers={"token": account_token, "content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 201, resp.text


async def test_openapi_still_documents_the_request_bodies(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    for path, required in (
        ("/api/message/text/{instance}", {"number", "message"}),
        ("/api/message/media/{instance}", {"number", "mediaType"}),
        ("/api/instance/new", set()),
    ):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(body.get("required", [])) == required, path
        assert "properties" in body
