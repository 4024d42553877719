"""The phone server against a stand-in for RyzeAPI's simulator routes (no processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ryze.demo.phone import DemoContact, PhoneChat, PhoneServer

CONTACT = DemoContact()


@dataclass
class FakeSimulator:
    outbox: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    uploads: list[tuple[dict[str, str], bytes, str, str]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    broken: bool = False

    def app(self) -> web.Application:
        async def messages(request: web.Request) -> web.Response:
            self.tokens.append(request.headers.get("token", ""))
            if self.broken:
                return web.Response(status=500, text="<html>oops</html>", content_type="text/html")
            body = await request.json()
            self.delivered.append(body)
            return web.json_response({"success": True, "ids": [f"IN{len(self.delivered)}"]})

        async def outbox(request: web.Request) -> web.Response:
            after = int(request.query.get("after", "0"))
            return web.json_response({"success": True, "items": [i for i in self.outbox if i["seq"] > after]})

        async def media(request: web.Request) -> web.Response:
            post = await request.post()
            file = post["file"]
            assert isinstance(file, web.FileField)
            fields = {k: v for k, v in post.items() if isinstance(v, str)}
            self.uploads.append((fields, file.file.read(), file.filename, file.content_type))
            return web.json_response({"success": True, "ids": [f"UP{len(self.uploads)}"]})

        async def blob(request: web.Request) -> web.Response:
            data = self.blobs.get(request.match_info["handle"])
            if data is None:
                return web.json_response({"success": False}, status=404)
            return web.Response(body=data, content_type="application/octet-stream")

        async def receipts(request: web.Request) -> web.Response:
            self.receipts.append(await request.json())
            return web.json_response({"success": True})

        app = web.Application()
        app.router.add_post("/_simulator/demo/receipts", receipts)
        app.router.add_post("/_simulator/demo/media", media)
        app.router.add_get("/_simulator/demo/media/{handle}", blob)
        app.router.add_post("/_simulator/demo/messages", messages)
        app.router.add_get("/_simulator/demo/outbox", outbox)
        return app

    def sent(self, action: str, **fields: Any) -> None:
        self.outbox.append({"seq": len(self.outbox) + 1, "action": action, **fields})


@pytest.fixture
async def sim() -> AsyncIterator[tuple[FakeSimulator, str]]:
    fake = FakeSimulator()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def phone(sim: tuple[FakeSimulator, str]) -> AsyncIterator[tuple[FakeSimulator, PhoneServer]]:
    fake, url = sim
    async with aiohttp.ClientSession() as http:
        server = PhoneServer(PhoneChat(http, url, "acc_secret", "demo", CONTACT))
        await server.start()
        try:
            yield fake, server
        finally:
            await server.aclose()


async def _call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_chat_in_the_order_the_phone_saw_it(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    fake, server = phone
    fake.sent("message", id="OUT1", to=CONTACT.jid, kind="text", text="earlier, from the business")
    fake.sent("message", id="OTHER", to="999@s.whatsapp.net", kind="text", text="another chat")
    status, sent = await _call("POST", server.url + "/api/messages", {"text": "hello"})
    assert status == 200 and sent["id"] == "IN1"
    assert fake.delivered == [{"from": CONTACT.number, "pushName": CONTACT.name, "text": "hello"}]
    assert fake.tokens == ["acc_secret"]  # the token is used server side ...
    fake.sent("presence", chat=CONTACT.jid, state="composing")
    status, state = await _call("GET", server.url + "/api/chat")
    assert "acc_secret" not in str(state)  # ... and never handed to the page
    assert state["typing"] is True
    fake.sent("read", chat=CONTACT.jid, messageIds=["IN1"])
    fake.sent("message", id="OUT2", to=CONTACT.jid, kind="image", text="", media={"kind": "image"})
    status, state = await _call("GET", server.url + "/api/chat")
    assert [(m["from"], m["text"]) for m in state["messages"]] == [
        ("business", "earlier, from the business"),
        ("contact", "hello"),
        ("business", ""),  # an attachment without caption: shown as the file, not as text
    ]
    assert state["messages"][2]["media"]["kind"] == "image"
    assert state["messages"][1]["status"] == "read"
    assert state["typing"] is False


async def test_ryzeapi_errors_are_shown_not_raised(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    fake, server = phone
    fake.broken = True
    status, body = await _call("POST", server.url + "/api/messages", {"text": "hello"})
    assert status == 502 and body["error"] == "RyzeAPI answered HTTP 500"
    status, body = await _call("POST", server.url + "/api/messages", {"text": "x" * 5000})
    assert status == 400 and "at most" in body["error"]


async def test_unreachable_ryzeapi_is_a_502() -> None:
    async with aiohttp.ClientSession() as http:
        server = PhoneServer(PhoneChat(http, "http://127.0.0.1:9", "t", "demo", CONTACT))
        await server.start()
        try:
            status, body = await _call("GET", server.url + "/api/chat")
        finally:
            await server.aclose()
    assert status == 502 and body["error"].startswith("RyzeAPI unreachable")


async def _upload(url: str, name: str, data: bytes, ctype: str, **fields: str) -> tuple[int, Any]:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("file", data, filename=name, content_type=ctype)
    async with aiohttp.ClientSession() as http, http.post(url + "/api/files", data=form) as resp:
        return resp.status, await resp.json(content_type=None)


async def _get_bytes(url: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.read(), resp.headers.get("content-type", "")


async def test_photo_voice_note_and_document_are_uploaded(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    """Each file goes to the network as the WhatsApp type WhatsApp's attach menu would pick, with its
    bytes; the page shows the contact's own file again from the phone server."""
    fake, server = phone
    photo = b"\xff\xd8\xff" + bytes(100)
    status, sent = await _upload(server.url, "cat.jpg", photo, "image/jpeg", caption=" a *cat* ")
    assert status == 200 and sent["kind"] == "image" and sent["text"] == "a *cat*"
    status, voice = await _upload(server.url, "hi.ogg", b"OggS", "audio/ogg", voice="1", replyTo=sent["id"])
    assert status == 200 and voice["kind"] == "ptt" and voice["replyTo"] == sent["id"]
    status, song = await _upload(server.url, "song.mp3", b"ID3", "audio/mpeg", voice="0")
    assert status == 200 and song["kind"] == "audio"
    status, doc = await _upload(server.url, "terms.pdf", b"%PDF", "application/pdf")
    assert status == 200 and doc["kind"] == "document" and doc["media"]["fileName"] == "terms.pdf"
    kinds = [
        (f["type"], f.get("fileName"), f.get("replyTo"), data, ctype) for f, data, _, ctype in fake.uploads
    ]
    assert kinds == [
        ("image", None, None, photo, "image/jpeg"),
        ("ptt", None, "UP1", b"OggS", "audio/ogg"),
        ("audio", None, None, b"ID3", "audio/mpeg"),
        ("document", "terms.pdf", None, b"%PDF", "application/pdf"),
    ]
    assert fake.uploads[0][0]["text"] == "a *cat*" and fake.uploads[0][0]["from"] == CONTACT.number
    status, data, ctype = await _get_bytes(server.url + sent["media"]["url"])
    assert (status, data, ctype) == (200, photo, "image/jpeg")
    status, _, _ = await _get_bytes(server.url + "/api/files/NOPE")
    assert status == 404


@pytest.mark.parametrize(
    ("data", "fields", "error"),
    [
        (b"", {}, "the file is empty"),
        (b"x", {"replyTo": "UNKNOWN"}, "the message replied to is not in this chat"),
    ],
)
async def test_bad_uploads_are_400(
    phone: tuple[FakeSimulator, PhoneServer], data: bytes, fields: dict[str, str], error: str
) -> None:
    fake, server = phone
    status, body = await _upload(server.url, "f.bin", data, "application/octet-stream", **fields)
    assert (status, body["error"]) == (400, error)
    assert fake.uploads == []


async def test_location_reply_reaction_and_delete(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    fake, server = phone
    fake.sent("message", id="OUT1", to=CONTACT.jid, kind="text", text="where are you?")
    _, state = await _call("GET", server.url + "/api/chat")
    where = state["location"]
    status, loc = await _call("POST", server.url + "/api/location", {**where, "replyTo": "OUT1"})
    assert status == 200 and loc["kind"] == "location" and loc["replyTo"] == "OUT1"
    status, reply = await _call(
        "POST", server.url + "/api/messages", {"text": "on my way", "replyTo": "OUT1"}
    )
    assert status == 200 and reply["replyTo"] == "OUT1"
    status, reacted = await _call("POST", server.url + "/api/messages/OUT1/reaction", {"emoji": "👍"})
    assert status == 200 and reacted["reactions"] == {"contact": "👍"}
    status, reacted = await _call("POST", server.url + "/api/messages/OUT1/reaction", {"emoji": ""})
    assert status == 200 and reacted["reactions"] == {}
    status, deleted = await _call("DELETE", server.url + f"/api/messages/{reply['id']}")
    assert status == 200 and deleted["deleted"] is True and deleted["text"] == "This message was deleted"
    lat, lon, name = where["latitude"], where["longitude"], where["name"]
    base = {"from": CONTACT.number, "pushName": CONTACT.name}
    assert fake.delivered == [
        {
            **base,
            "type": "location",
            "latitude": lat,
            "longitude": lon,
            "locationName": name,
            "replyTo": "OUT1",
        },
        {**base, "text": "on my way", "replyTo": "OUT1"},
        {**base, "type": "reaction", "targetId": "OUT1", "emoji": "👍"},
        {**base, "type": "reaction", "targetId": "OUT1", "emoji": ""},
        {**base, "type": "revoke", "targetId": reply["id"]},
    ]
    # What cannot be done on WhatsApp is refused before anything reaches the network.
    for method, path, body, error in (
        ("DELETE", "/api/messages/OUT1", None, "only the contact's own messages can be deleted"),
        ("DELETE", f"/api/messages/{reply['id']}", None, "only the contact's own messages can be deleted"),
        (
            "POST",
            "/api/messages/NOPE/reaction",
            {"emoji": "👍"},
            "the message reacted to is not in this chat",
        ),
        ("POST", "/api/messages/OUT1/reaction", {}, "field 'emoji' is required ('' removes the reaction)"),
        ("POST", "/api/location", {"latitude": 91, "longitude": 0}, "latitude must be within ±90"),
        (
            "POST",
            "/api/location",
            {"latitude": "x"},
            "fields 'latitude' and 'longitude' (numbers) are required",
        ),
        (
            "POST",
            "/api/messages",
            {"text": "x", "replyTo": "NOPE"},
            "the message replied to is not in this chat",
        ),
    ):
        status, answer = await _call(method, server.url + path, body)
        assert status == 400 and answer["error"].startswith(error), (path, answer)
    assert len(fake.delivered) == 5


async def test_business_media_reactions_edits_and_revokes(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    """What the instance sends acts on the page as on a phone: attachments are playable from the
    network's copy, a reaction sits on its target, an edit changes it, a revoke deletes it."""
    fake, server = phone
    fake.blobs["H1"] = b"RIFF voice"
    media = {"kind": "ptt", "mimetype": "audio/ogg", "fileName": None, "size": 10, "handle": "H1"}
    fake.sent("message", id="OUT1", to=CONTACT.jid, kind="audio", text="", media=media)
    fake.sent("message", id="OUT2", to=CONTACT.jid, kind="text", text="typo", replyTo="OUT1")
    _, sent = await _call("POST", server.url + "/api/messages", {"text": "mine"})
    fake.sent("message", id="OUT3", to=CONTACT.jid, kind="reaction", targetId=sent["id"], emoji="❤️")
    fake.sent("message", id="OUT4", to=CONTACT.jid, kind="edit", targetId="OUT2", text="fixed")
    fake.sent("message", id="OUT5", to=CONTACT.jid, kind="revoke", targetId="OUT1")
    fake.sent("message", id="OUT6", to=CONTACT.jid, kind="reaction", targetId="NEVER-SEEN", emoji="👍")
    _, state = await _call("GET", server.url + "/api/chat")
    by_id = {m["id"]: m for m in state["messages"]}
    assert list(by_id) == ["OUT1", "OUT2", sent["id"]]
    assert by_id["OUT1"]["deleted"] is True and "media" not in by_id["OUT1"]
    assert (by_id["OUT2"]["text"], by_id["OUT2"]["edited"], by_id["OUT2"]["replyTo"]) == (
        "fixed",
        True,
        "OUT1",
    )
    assert by_id[sent["id"]]["reactions"] == {"business": "❤️"}
    fake.sent("message", id="OUT7", to=CONTACT.jid, kind="image", text="", media={**media, "kind": "image"})
    _, state = await _call("GET", server.url + "/api/chat")
    url = state["messages"][-1]["media"]["url"]
    status, data, ctype = await _get_bytes(server.url + url)
    assert (status, data, ctype) == (200, b"RIFF voice", "audio/ogg")
    # Only handles of this chat's messages are fetched: the page is no proxy to the network.
    status, _, _ = await _get_bytes(server.url + "/api/media/OTHER")
    assert status == 404


async def test_the_page_reads_the_instances_messages_once(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    """Looking at the chat sends WhatsApp's delivered then read receipts for the instance's new
    messages, each message once; the contact's own messages and other chats get none."""
    fake, server = phone
    fake.sent("message", id="OUT1", to=CONTACT.jid, kind="text", text="one")
    fake.sent("message", id="OTHER", to="999@s.whatsapp.net", kind="text", text="elsewhere")
    await _call("POST", server.url + "/api/messages", {"text": "mine"})
    await _call("GET", server.url + "/api/chat")
    fake.sent("message", id="OUT2", to=CONTACT.jid, kind="text", text="two")
    await _call("GET", server.url + "/api/chat")
    await _call("GET", server.url + "/api/chat")
    chat = CONTACT.number
    assert fake.receipts == [
        {"chat": chat, "messageIds": ["OUT1"], "status": "delivered"},
        {"chat": chat, "messageIds": ["OUT1"], "status": "read"},
        {"chat": chat, "messageIds": ["OUT2"], "status": "delivered"},
        {"chat": chat, "messageIds": ["OUT2"], "status": "read"},
    ]
