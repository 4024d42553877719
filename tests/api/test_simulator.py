"""The simulated phone network's control API (mounted only with ``WHATSAPP_ENGINE=simulated``)."""

from __future__ import annotations

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
    "'text', 'image', 'video', 'audio', 'ptt', 'document', 'sticker', 'location', 'contact', "
    "'reaction', 'edit' or 'revoke'"
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
        ({"from": ALICE, "type": "poll"}, f"field 'type': Input should be {ALLOWED}"),
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
