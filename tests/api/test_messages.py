"""``/api/message/text|media/{instance}``: what a caller sees, and what the phone network receives."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ryze.api.settings import ApiSettings
from ryze.common.outbound.policy import LOOPBACK_ALLOW

from .harness import Api, make_settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    # The media servers below listen on loopback, which the outbound-fetch policy refuses by default.
    return make_settings(tmp_path, fetch_allow=LOOPBACK_ALLOW)


async def send_text(api: Api, token: str, **body: Any) -> Any:
    return await api.client.post("/api/message/text/orion", json=body, headers={"token": token})


async def send_media(api: Api, token: str, **body: Any) -> Any:
    return await api.client.post("/api/message/media/orion", json=body, headers={"token": token})


async def outbox(api: Api, token: str) -> list[dict[str, Any]]:
    resp = await api.client.get("/_simulator/orion/outbox", headers={"token": token})
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_send_text(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_text(api, token, number="5511988887777", message="Olá!")
    assert resp.status_code == 200
    body = resp.json()
    assert body["success"] is True
    assert body["message"] == "Message sent successfully"
    assert body["status"] == "sent"
    data = body["data"]
    assert data["direction"] == "outgoing"
    assert data["chat"]["jid"] == "5511988887777@s.whatsapp.net"
    assert data["sender"]["jid"] == "5511900000001@s.whatsapp.net"
    [item] = await outbox(api, token)
    assert item["id"] == data["messageId"]
    assert item["to"] == "5511988887777@s.whatsapp.net"
    assert item["text"] == "Olá!"
    assert item["origin"] == "api"


@pytest.mark.parametrize(
    "number", ["5511988887777@s.whatsapp.net", "+55 (11) 98888-7777", "120363@g.us", "99@lid"]
)
async def test_recipient_forms(api: Api, account_token: str, number: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_text(api, token, number=number, message="x")
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("number", ["abc", "123", "x@unknown.server", ""])
async def test_invalid_recipient_is_400(api: Api, account_token: str, number: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_text(api, token, number=number, message="x")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid number")


async def test_reply_to_quotes_a_stored_message(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    delivered = await api.client.post(
        "/_simulator/orion/messages",
        json={"from": "5511988887777", "text": "question?"},
        headers={"token": token},
    )
    [incoming_id] = delivered.json()["ids"]
    resp = await send_text(api, token, number="5511988887777", message="answer", replyTo=incoming_id)
    assert resp.status_code == 200
    assert resp.json()["data"]["replyTo"] == incoming_id
    [item] = await outbox(api, token)
    assert item["replyTo"] == incoming_id


async def test_reply_to_unknown_message_is_404(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_text(api, token, number="5511988887777", message="answer", replyTo="NOPE")
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "replyTo message not found: NOPE"


async def test_not_connected_is_503(api: Api, account_token: str) -> None:
    token = await api.instance(account_token)
    resp = await send_text(api, token, number="5511988887777", message="hi")
    assert resp.status_code == 503
    assert resp.json() == {"success": False, "error": {"message": "Instance is not connected to WhatsApp"}}
    resp = await send_media(api, token, number="5511988887777", mediaType="image", mediaBase64="aGk=")
    assert resp.status_code == 503


async def test_disconnected_after_network_drop_is_503(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await api.client.post("/_simulator/orion/disconnect", headers={"token": token})
    resp = await send_text(api, token, number="5511988887777", message="hi")
    assert resp.status_code == 503
    # reconnecting resumes the stored login: no QR
    resp = await api.client.get("/api/instance/connect/orion", headers={"token": token})
    assert resp.json()["status"] == "connected"
    assert (await send_text(api, token, number="5511988887777", message="hi")).status_code == 200


async def test_unknown_instance_is_404(api: Api, account_token: str) -> None:
    resp = await api.client.post(
        "/api/message/text/ghost",
        json={"number": "5511988887777", "message": "x"},
        headers={"token": account_token},
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Instance not found"


async def test_send_media_base64_image(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_media(
        api, token, number="5511988887777", mediaType="image", mediaBase64=base64.b64encode(PNG).decode(),
        message="a caption",
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["messageType"] == "image"
    assert data["mediaMimeType"] == "image/png"
    assert data["mediaSize"] == len(PNG)
    [item] = await outbox(api, token)
    assert item["kind"] == "image" and item["text"] == "a caption"
    assert item["media"]["mimetype"] == "image/png"
    blob = await api.client.get(
        f"/_simulator/orion/media/{item['media']['handle']}", headers={"token": token}
    )
    assert blob.content == PNG
    # the stored message's media can be downloaded again (what the bridge's media route serves)
    data_bytes, mimetype, _ = await api.services.messaging.get_media("orion", data["messageId"])
    assert (data_bytes, mimetype) == (PNG, "image/png")


async def test_send_media_data_url_and_document_name(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    pdf = b"%PDF-1.4 fake"
    resp = await send_media(
        api, token, number="5511988887777", mediaType="document", fileName="report.pdf",
        mediaBase64="data:application/pdf;base64," + base64.b64encode(pdf).decode(),
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["fileName"] == "report.pdf" and data["mediaMimeType"] == "application/pdf"


async def test_audio_is_a_voice_note_unless_told_otherwise(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    ogg = base64.b64encode(b"OggS" + b"\x00" * 10).decode()
    await send_media(api, token, number="5511988887777", mediaType="audio", mediaBase64=ogg)
    await send_media(api, token, number="5511988887777", mediaType="audio", mediaBase64=ogg, isVoice=False)
    first, second = await outbox(api, token)
    assert first["media"]["kind"] == "ptt"
    assert second["media"]["kind"] == "audio"


@pytest.fixture
async def media_server() -> AsyncIterator[str]:
    async def image(_request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/files/pic.png")

    async def missing(_request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/files/pic.png", image)
    app.router.add_get("/moved", moved)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_send_media_by_url_follows_redirects(api: Api, account_token: str, media_server: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_media(
        api, token, number="5511988887777", mediaType="image", mediaUrl=f"{media_server}/moved"
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["mediaMimeType"] == "image/png"
    assert resp.json()["data"]["mediaSize"] == len(PNG)


async def test_send_media_by_unreachable_url_is_400(api: Api, account_token: str, media_server: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_media(
        api, token, number="5511988887777", mediaType="image", mediaUrl=f"{media_server}/missing"
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "Failed to download media from mediaUrl: HTTP 404"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Invalid request body: field 'mediaUrl' or 'mediaBase64' is required"),
        (
            {"mediaUrl": "http://x/y", "mediaBase64": "aGk="},
            "Invalid request body: send mediaUrl or mediaBase64, not both",
        ),
        ({"mediaBase64": "!!not base64!!"}, "Invalid request body: field 'mediaBase64' is not valid base64"),
        ({"mediaUrl": "ftp://x/y"}, "Invalid request body: field 'mediaUrl' must be an http or https URL"),
    ],
)
async def test_media_source_errors(api: Api, account_token: str, body: dict[str, Any], message: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_media(api, token, number="5511988887777", mediaType="image", **body)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == message


async def test_media_type_must_be_documented(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_media(api, token, number="5511988887777", mediaType="gif", mediaBase64="aGk=")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith("Invalid request body: field 'mediaType'")


async def test_get_message_returns_stored_messages(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    sent = (await send_text(api, token, number="5511988887777", message="keep me")).json()["data"][
        "messageId"
    ]
    resp = await api.client.get(f"/api/chat/getMessage/orion?messageId={sent}", headers={"token": token})
    assert resp.status_code == 200
    assert resp.json()["data"]["content"] == {"text": "keep me"}
    resp = await api.client.get("/api/chat/getMessage/orion?messageId=NOPE", headers={"token": token})
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Message not found"


@pytest.mark.parametrize(("retryable", "status"), [(True, 503), (False, 500)])
async def test_engine_failures_say_whether_to_try_again(
    api: Api, account_token: str, monkeypatch: pytest.MonkeyPatch, retryable: bool, status: int
) -> None:
    """WhatsApp's servers unreachable is a 503 (the same call may work later); whatsmeow refusing
    the operation is the documented 500. Either way the engine's message reaches the caller."""
    from ryze.engines.base import EngineError

    token = await api.connected_instance(account_token)
    session = api.engine.session("orion")
    assert session is not None

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise EngineError("Could not reach WhatsApp servers", retryable=retryable)

    monkeypatch.setattr(session, "send_text", refuse)
    resp = await api.client.post(
        "/api/message/text/orion", json={"number": "5511999999999", "message": "x"}, headers={"token": token}
    )
    assert resp.status_code == status
    assert resp.json() == {"success": False, "error": {"message": "Could not reach WhatsApp servers"}}


@pytest.mark.parametrize(
    "number",
    [
        "٥٥١١٩٨٨٨٨٧٧٧٧",  # Arabic-Indic digits: \d took them as a phone number
        "５５１１９８８８８７７７７",  # fullwidth digits
        "٥٥١١٩٨٨٨٨٧٧٧٧@s.whatsapp.net",
        "ab\x00c@s.whatsapp.net",
        "../../x@g.us",
    ],
)
async def test_only_ascii_digits_make_a_number_or_jid(api: Api, account_token: str, number: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await send_text(api, token, number=number, message="x")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["message"].startswith("Invalid number")
    assert await outbox(api, token) == []


async def test_text_and_caption_follow_whatsapps_length_limit(api: Api, account_token: str) -> None:
    """A 15 MB text used to go out; WhatsApp's apps stop at 65,536 characters."""
    token = await api.connected_instance(account_token)
    at_limit = await send_text(api, token, number="5511988887777", message="x" * 65_536)
    assert at_limit.status_code == 200, at_limit.text
    over = await send_text(api, token, number="5511988887777", message="x" * 65_537)
    assert over.status_code == 400
    assert over.json()["error"]["message"] == (
        "Invalid request body: field 'message' is longer than 65536 characters"
    )
    png = base64.b64encode(PNG).decode()
    caption = await send_media(
        api, token, number="5511988887777", mediaType="image", mediaBase64=png, message="c" * 65_537
    )
    assert caption.status_code == 400
    assert "field 'message' is longer than 65536" in caption.json()["error"]["message"]
    name = await send_media(
        api, token, number="5511988887777", mediaType="document", mediaBase64=png, fileName="n" * 256
    )
    assert name.status_code == 400
    assert "field 'fileName' is longer than 255" in name.json()["error"]["message"]
    assert len(await outbox(api, token)) == 1  # only the text at the limit went out
