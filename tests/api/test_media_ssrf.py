"""``mediaUrl`` and Chatwoot attachment URLs under the outbound-fetch policy, as a caller sees it.

Before the policy any instance token could make RyzeAPI fetch ``http://127.0.0.1:…/metrics`` (or
the same through a 302) and deliver the body to any number, and the error texts told a closed port
from an HTTP 404. Every server here listens on loopback (127.0.0.1 allowed where a test allows
it, 127.0.0.2 standing for an internal service), so no request can leave the machine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ryze.api.errors import ApiError
from ryze.common.crypto import generate_key

from .harness import Api, make_settings, start_api

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _site(host: str, hits: list[str]) -> tuple[web.AppRunner, str]:
    async def image(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=PNG, content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=404)

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPFound(request.query["to"])

    async def big(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=PNG + b"\x00" * 10_000, content_type="image/png")

    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", image),
            web.get("/missing", missing),
            web.get("/redirect", redirect),
            web.get("/big.png", big),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def internal() -> AsyncIterator[tuple[str, list[str]]]:
    """A local service nobody should reach through RyzeAPI, on 127.0.0.2."""
    hits: list[str] = []
    runner, url = await _site("127.0.0.2", hits)
    try:
        yield url, hits
    finally:
        await runner.cleanup()


@pytest.fixture
async def public() -> AsyncIterator[tuple[str, list[str]]]:
    """The stand-in for a public media host: 127.0.0.1, allowed by the tests that use it."""
    hits: list[str] = []
    runner, url = await _site("127.0.0.1", hits)
    try:
        yield url, hits
    finally:
        await runner.cleanup()


async def _api(tmp_path: Path, **settings: Any) -> AsyncIterator[Api]:
    async for api in start_api(make_settings(tmp_path, encryption_key=generate_key(), **settings)):
        yield api


async def send(api: Api, token: str, url: str) -> Any:
    return await api.client.post(
        "/api/message/media/orion",
        json={"number": "5511988887777", "mediaType": "image", "mediaUrl": url},
        headers={"token": token},
    )


@pytest.mark.parametrize(
    "spelling", ["127.0.0.2", "0x7f000002", "2130706434", "127.0.2", "0177.0.0.2", "[::ffff:127.0.0.2]"]
)
async def test_internal_addresses_are_refused_in_every_spelling(
    api: Api, account_token: str, internal: tuple[str, list[str]], spelling: str
) -> None:
    url, hits = internal
    port = url.rsplit(":", 1)[1]
    token = await api.connected_instance(account_token)
    resp = await send(api, token, f"http://{spelling}:{port}/metrics")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        "Invalid request body: field 'mediaUrl' points to a loopback address, which the outbound-fetch "
        "policy refuses (allow it with FETCH_ALLOW)"
    )
    assert hits == []  # nothing was fetched, nothing was sent to WhatsApp
    outbox = (await api.client.get("/_simulator/orion/outbox", headers={"token": token})).json()["items"]
    assert outbox == []


async def test_localhost_is_refused_without_a_lookup(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send(api, token, "http://localhost:9/metrics")
    assert resp.status_code == 400
    assert "FETCH_ALLOW" in resp.json()["error"]["message"]


async def test_a_closed_port_and_a_404_read_the_same(
    api: Api, account_token: str, internal: tuple[str, list[str]]
) -> None:
    """No port scanning through error texts: a refused target is refused before connecting."""
    url, _ = internal
    token = await api.connected_instance(account_token)
    open_404 = await send(api, token, f"{url}/missing")
    closed = await send(api, token, "http://127.0.0.2:9/missing")
    assert open_404.status_code == closed.status_code == 400
    assert open_404.json() == closed.json()


async def test_credentials_in_the_url_are_refused_and_never_echoed(
    api: Api, account_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = await api.connected_instance(account_token)
    caplog.set_level(logging.DEBUG)
    # Loopback, closed port: even if the guard let credentials through, nothing leaves the machine.
    resp = await send(api, token, "http://alice:hunter2@127.0.0.1:9/a.png")
    assert resp.status_code == 400
    message = resp.json()["error"]["message"]
    assert message == "Invalid request body: field 'mediaUrl' must not carry credentials (user or password)"
    assert "hunter2" not in resp.text and "hunter2" not in caplog.text


@pytest.mark.parametrize("url", ["HTTP://127.0.0.2/x", "gopher://127.0.0.2:6379/_INFO", "http://[::1/x"])
async def test_odd_schemes_and_malformed_urls_are_400(api: Api, account_token: str, url: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send(api, token, url)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid request body: field 'mediaUrl' ")


async def test_a_redirect_to_an_internal_address_is_refused(
    tmp_path: Path, public: tuple[str, list[str]], internal: tuple[str, list[str]]
) -> None:
    public_url, public_hits = public
    internal_url, internal_hits = internal
    async for api in _api(tmp_path, fetch_allow="127.0.0.1"):
        token = await api.connected_instance(await api.account())
        resp = await send(api, token, f"{public_url}/redirect?to={internal_url}/metrics")
        assert resp.status_code == 400
        assert "FETCH_ALLOW" in resp.json()["error"]["message"]
        assert public_hits == ["/redirect"] and internal_hits == []
        # The allowed host itself still works.
        ok = await send(api, token, f"{public_url}/metrics")
        assert ok.status_code == 200, ok.text


async def test_the_allow_list_lets_an_operator_open_a_private_host(
    tmp_path: Path, internal: tuple[str, list[str]]
) -> None:
    url, hits = internal
    async for api in _api(tmp_path, fetch_allow="127.0.0.2/32"):
        token = await api.connected_instance(await api.account())
        resp = await send(api, token, f"{url}/metrics")
        assert resp.status_code == 200, resp.text
        assert hits == ["/metrics"]


async def test_media_max_bytes_is_a_setting(tmp_path: Path, public: tuple[str, list[str]]) -> None:
    url, _ = public
    async for api in _api(tmp_path, fetch_allow="127.0.0.1", media_max_bytes=1000):
        token = await api.connected_instance(await api.account())
        resp = await send(api, token, f"{url}/big.png")
        assert resp.status_code == 413
        assert resp.json()["error"]["message"] == "Media too large"


async def test_a_bridge_attachment_url_to_an_internal_address_is_refused_at_once(
    api: Api, account_token: str, internal: tuple[str, list[str]]
) -> None:
    """Agent attachments (Chatwoot ``data_url``, sent by the bridge as ``source="chatwoot"``) go
    through the same policy, and a refusal is not retried for 30 s like a not-yet-ready file."""
    url, hits = internal
    await api.connected_instance(account_token)
    with pytest.raises(ApiError) as caught:
        await api.services.messaging.send_media(
            "orion", "5511988887777", "document", url=f"{url}/metrics", source="chatwoot", command_id="c1"
        )
    assert caught.value.status == 400 and "FETCH_ALLOW" in caught.value.message
    assert hits == []


async def test_a_refusal_is_logged_without_the_url(
    api: Api, account_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = await api.connected_instance(account_token)
    caplog.set_level(logging.INFO, logger="ryze.common.outbound")
    resp = await send(api, token, "http://127.0.0.2:9/file?X-Amz-Signature=sig-s3cr3t")
    assert resp.status_code == 400
    refused = [r for r in caplog.records if r.getMessage() == "outbound fetch refused"]
    assert refused and "FETCH_ALLOW" in refused[0].error  # type: ignore[attr-defined]
    assert "sig-s3cr3t" not in caplog.text and "127.0.0.2" not in caplog.text
