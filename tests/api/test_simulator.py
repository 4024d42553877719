"""The simulated phone network's control API (mounted only with ``WHATSAPP_ENGINE=simulated``)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from ryze.api.app import create_app
from ryze.engines.simulated import SimulatedEngine

from .harness import Api, make_settings


async def deliver(api: Api, token: str, body: Any) -> Any:
    return await api.client.post("/_simulator/orion/messages", json=body, headers={"token": token})


BAD = "Invalid request body: "
ALLOWED = (
    "'text', 'image', 'video', 'audio', 'ptt', 'ptv', 'document', 'sticker', 'location', 'contact', "
    "'poll', 'reaction', 'edit' or 'revoke'"
)
ALICE = "5511988887777"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "no sender"}, "field 'from' is required"),
        ({"from": ALICE, "type": "image"}, "field 'mediaBase64' is required for type 'image'"),
        ({"from": ALICE, "type": "ptt", "mediaBase64": "%%%"}, "field 'mediaBase64' is not valid base64"),
        ({"from": ALICE, "type": "edit", "text": "x"}, "field 'targetId' is required for type 'edit'"),
        ({"from": ALICE, "type": "location"}, "fields 'latitude' and 'longitude' are required"),
        ({"from": ALICE, "type": "quiz"}, f"field 'type': Input should be {ALLOWED}"),
        ({"from": ALICE, "type": "poll"}, "field 'poll' is required for type 'poll'"),
        ({"from": "someone@nowhere"}, "not a WhatsApp JID: 'someone@nowhere'"),
        ({"messages": "nope"}, "field 'messages' must be an array"),
        ([1], "field 'messages.0' must be an object"),
        ({"messages": [{"from": 5}]}, "field 'messages.0.from' must be a string"),
        (7, "expected a JSON object"),
    ],
)
async def test_bad_deliveries_are_400(api: Api, account_token: str, body: Any, message: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await deliver(api, token, body)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == BAD + message


async def test_invalid_json_is_400(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    resp = await api.client.post(
        "/_simulator/orion/messages",
        content=b"{oops",
        headers={"token": token, "content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "Invalid JSON body"


async def test_location_and_contacts(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    body = {
        "messages": [
            {"from": ALICE, "type": "location", "latitude": -23.5, "longitude": -46.6, "locationName": "HQ"},
            {"from": "5511988887777", "type": "contact",
             "contacts": [{"displayName": "A", "vcard": "BEGIN:VCARD", "phones": ["1"]},
                          {"displayName": "B", "vcard": "BEGIN:VCARD", "phones": ["2"]}]},
        ]
    }  # fmt: skip
    assert (await deliver(api, token, body)).status_code == 200
    location, contact = (e.data["message"] for e in api.of("message.exchange"))
    assert location["type"] == "location" and location["location"] == {
        "latitude": -23.5,
        "longitude": -46.6,
        "name": "HQ",
    }
    assert contact["type"] == "contact" and [c["displayName"] for c in contact["contacts"]] == ["A", "B"]
    assert contact["content"] == {"text": "2 contacts"}


async def test_control_api_needs_an_owner_token(api: Api, account_token: str) -> None:
    await api.connected_instance(account_token)
    assert (await api.client.post("/_simulator/orion/messages", json={"from": "1234567"})).status_code == 401
    stranger = await api.account("stranger")
    resp = await api.client.get("/_simulator/orion/outbox", headers={"token": stranger})
    assert resp.status_code == 403
    # the account token works as well as the instance token
    assert (
        await api.client.get("/_simulator/orion/outbox", headers={"token": account_token})
    ).status_code == 200


async def test_scan_without_a_qr_is_409(api: Api, account_token: str) -> None:
    token = await api.instance(account_token)
    resp = await api.client.post("/_simulator/orion/scan", headers={"token": token})
    assert resp.status_code == 409
    assert resp.json()["error"]["message"] == "there is no QR code to scan: call connect first"


async def test_outbox_paging_and_clearing(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    for text in ("a", "b", "c"):
        await api.services.messaging.send_text("orion", "5511988887777", text)
    await api.services.messaging.mark_read("orion", "5511988887777", ["X1"])
    await api.services.messaging.presence("orion", "5511988887777", "composing")
    page = (await api.client.get("/_simulator/orion/outbox?after=1&limit=2", headers={"token": token})).json()
    assert [i["text"] for i in page["items"]] == ["b", "c"] and page["last"] == 3
    rest = (await api.client.get("/_simulator/orion/outbox?after=3", headers={"token": token})).json()[
        "items"
    ]
    assert [i["action"] for i in rest] == ["read", "presence"]
    await api.client.delete("/_simulator/orion/outbox", headers={"token": token})
    assert (await api.client.get("/_simulator/orion/outbox", headers={"token": token})).json()["items"] == []


def test_control_api_is_mounted_only_for_the_simulated_engine(tmp_path: Path) -> None:
    class OtherEngine:
        name = "other"

    simulated = create_app(make_settings(tmp_path), engine=SimulatedEngine())
    assert "/_simulator/{instance}/messages" in simulated.openapi()["paths"]
    other = create_app(make_settings(tmp_path), engine=OtherEngine())  # type: ignore[arg-type]
    assert not any(path.startswith("/_simulator") for path in other.openapi()["paths"])


async def test_media_by_multipart_upload(api: Api, account_token: str) -> None:
    """A file uploaded as multipart reaches the instance as a media message with the same bytes,
    its type taken from the content type and its file name kept for documents."""
    token = await api.connected_instance(account_token)
    pdf = b"%PDF-1.4 demo" * 100
    resp = await api.client.post(
        "/_simulator/orion/media",
        data={"from": ALICE, "text": "the *contract*", "replyTo": "SIMQUOTED1"},
        files={"file": ("contract.pdf", pdf, "application/pdf")},
        headers={"token": token},
    )
    assert resp.status_code == 200, resp.text
    voice = await api.client.post(
        "/_simulator/orion/media",
        data={"from": ALICE, "type": "ptt", "seconds": "4"},
        files={"file": ("note.ogg", b"OggS voice", "audio/ogg; codecs=opus")},
        headers={"token": token},
    )
    assert voice.status_code == 200, voice.text
    doc, ptt = (e.data["message"] for e in api.of("message.exchange"))
    assert doc["type"] == "document" and doc["media"]["fileName"] == "contract.pdf"
    assert doc["media"]["mimetype"] == "application/pdf" and doc["content"]["text"] == "the *contract*"
    assert doc["replyTo"] == "SIMQUOTED1"
    assert ptt["media"]["type"] == "ptt" and ptt["media"]["seconds"] == 4
    # The network keeps the bytes the message's media handle names (content-addressed).
    assert api.engine.get_blob(hashlib.sha256(pdf).hexdigest().encode()) == pdf


async def test_upload_needs_a_file_and_a_media_type(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    headers = {"token": token}
    no_file = await api.client.post("/_simulator/orion/media", data={"from": ALICE}, headers=headers)
    assert no_file.status_code == 400
    assert no_file.json()["error"]["message"] == BAD + "field 'file' (a file) is required"
    text = await api.client.post(
        "/_simulator/orion/media",
        data={"from": ALICE, "type": "location"},
        files={"file": ("x.bin", b"x", "application/octet-stream")},
        headers=headers,
    )
    assert text.status_code == 400
    assert text.json()["error"]["message"] == BAD + "type 'location' carries no file"


async def test_groups_are_created_renamed_and_named_in_their_messages(api: Api, account_token: str) -> None:
    """Creating and renaming a group publish ``group.flow``; its messages carry its current
    subject as the chat name (``chat.name``)."""
    token = await api.connected_instance(account_token)
    headers = {"token": token}
    body = {"subject": "Sales team", "participants": [ALICE, {"jid": "5511977776666", "name": "Bob"}]}
    resp = await api.client.post("/_simulator/orion/groups", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    group = resp.json()["group"]
    jid = group["jid"]
    assert jid.startswith("120363") and jid.endswith("@g.us") and group["subject"] == "Sales team"
    await deliver(api, token, {"from": ALICE, "group": jid, "text": "hello team"})
    renamed = await api.client.patch(
        f"/_simulator/orion/groups/{jid}", json={"subject": "Sales EMEA", "actor": ALICE}, headers=headers
    )
    assert renamed.status_code == 200 and renamed.json()["group"]["subject"] == "Sales EMEA"
    await deliver(api, token, {"from": ALICE, "group": jid, "text": "new name"})
    added = await api.client.post(
        f"/_simulator/orion/groups/{jid}/changes",
        json={"action": "add", "participants": ["5511955554444"], "actor": ALICE},
        headers=headers,
    )
    assert added.status_code == 200 and added.json()["group"]["participants"] == [
        "5511955554444@s.whatsapp.net"
    ]
    locked = await api.client.post(
        f"/_simulator/orion/groups/{jid}/changes",
        json={"action": "settings", "settings": {"locked": True}},
        headers=headers,
    )
    assert locked.status_code == 200, locked.text

    first, second = (e.data["message"] for e in api.of("message.exchange"))
    assert (first["chat"]["jid"], first["chat"]["name"]) == (jid, "Sales team")
    assert second["chat"]["name"] == "Sales EMEA" and second["sender"]["jid"] == f"{ALICE}@s.whatsapp.net"
    flows = [e.data for e in api.of("group.flow")]
    assert [(f["action"], f["chat"]["name"]) for f in flows] == [
        ("create", "Sales team"),
        ("subject", "Sales EMEA"),
        ("add", "Sales EMEA"),
        ("settings", "Sales EMEA"),
    ]
    assert [p.get("name") for p in flows[0]["participants"]] == [None, "Bob"]
    listed = (await api.client.get("/_simulator/orion/groups", headers=headers)).json()["groups"]
    assert {"jid": jid, "subject": "Sales EMEA"} in listed

    unknown = "120363000000000001@g.us"
    for method, path, payload in (
        ("PATCH", f"/_simulator/orion/groups/{unknown}", {"subject": "x"}),
        ("POST", f"/_simulator/orion/groups/{unknown}/changes", {"action": "topic", "topic": "x"}),
    ):
        missing = await api.client.request(method, path, json=payload, headers=headers)
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "Group not found"
    not_a_group = await api.client.post(
        "/_simulator/orion/groups", json={"subject": "x", "jid": ALICE}, headers=headers
    )
    assert not_a_group.status_code == 400 and "not a group JID" in not_a_group.json()["error"]["message"]
    no_settings = await api.client.post(
        f"/_simulator/orion/groups/{jid}/changes", json={"action": "settings"}, headers=headers
    )
    assert no_settings.status_code == 400


async def test_every_message_type_is_delivered(api: Api, account_token: str) -> None:
    """One of each type the control API delivers, as RyzeAPI reports it."""
    token = await api.connected_instance(account_token)
    b64 = base64.b64encode(b"bytes").decode()
    kinds = ["image", "video", "audio", "ptt", "document", "sticker"]
    media = [{"from": ALICE, "type": k, "mediaBase64": b64} for k in kinds]
    acts = [
        {"from": ALICE, "text": "quoting", "replyTo": "SIMTARGET"},
        {"from": ALICE, "type": "reaction", "targetId": "SIMTARGET", "emoji": "👍"},
        {"from": ALICE, "type": "edit", "targetId": "SIMTARGET", "text": "fixed"},
        {"from": ALICE, "type": "revoke", "targetId": "SIMTARGET"},
        {"from": ALICE, "type": "image", "mediaBase64": b64, "viewOnce": True},
        {"from": ALICE, "type": "video", "mediaBase64": b64, "gif": True},
        {"from": ALICE, "type": "ptv", "mediaBase64": b64, "seconds": 5},
        {"from": ALICE, "type": "location", "latitude": 1.5, "longitude": 2.5, "live": True},
        {
            "from": ALICE,
            "type": "poll",
            "poll": {"name": "Lunch?", "options": ["yes", "no"], "selectableCount": 1},
        },
    ]
    resp = await deliver(api, token, {"messages": media + acts})
    assert resp.status_code == 200, resp.text
    got = [e.data["message"] for e in api.of("message.exchange")]
    assert [m["media"]["type"] for m in got[:6]] == kinds
    quote, reaction, edit, revoke, once, gif, ptv, live, poll = got[6:]
    assert quote["replyTo"] == "SIMTARGET"
    assert reaction["type"] == "reaction" and reaction["reaction"]["messageId"] == "SIMTARGET"
    assert reaction["reaction"]["emoji"] == "👍"
    assert edit["edit"] == {"messageId": "SIMTARGET", "text": "fixed"}
    assert revoke["type"] == "message_revoke" and revoke["revoke"]["messageId"] == "SIMTARGET"
    assert once["isViewOnce"] is True
    assert gif["media"]["gif"] is True and gif["media"]["type"] == "video"
    assert ptv["media"]["type"] == "ptv" and ptv["media"]["seconds"] == 5
    assert live["location"]["live"] is True
    assert poll["type"] == "poll" and poll["poll"] == {
        "name": "Lunch?",
        "options": ["yes", "no"],
        "selectableCount": 1,
    }
