"""What RyzeAPI gives the bridge for contacts: WhatsApp's names on the events, and profile
pictures on ``/internal/profile-picture`` (Bearer ``BRIDGE_TOKEN``)."""

from __future__ import annotations

import base64

from ryze.engines.simulated import Inbound
from ryze.engines.simulated.pictures import generated, solid_png
from ryze.protocol import PICTURE_ID_HEADER

from .fake_bridge import FakeBridge
from .harness import Ryze
from .test_link import LinkClient, link, linked_instance

CONTACT = "5511988886666"
JID = f"{CONTACT}@s.whatsapp.net"


async def test_events_carry_the_saved_push_and_business_names(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    session = await linked_instance(ryze_lite, "names")
    await session.deliver(
        [
            Inbound(
                sender=CONTACT, text="a", push_name="Ana", saved_name="Ana (book)", business_name="Ana Ltd"
            ),
            Inbound(sender=CONTACT, text="b", push_name="Ana"),
        ]
    )
    async with link(ryze_lite, "names", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        events = [e["event"] for e in await client.events(ready["pending"])]
    chats = [e["data"]["message"]["chat"] for e in events if e["event"] == "message.exchange"]
    senders = [e["data"]["message"]["sender"] for e in events if e["event"] == "message.exchange"]
    assert (chats[0]["name"], chats[0]["savedName"], chats[0]["businessName"]) == (
        "Ana",
        "Ana (book)",
        "Ana Ltd",
    )
    assert (senders[0]["savedName"], senders[0]["businessName"]) == ("Ana (book)", "Ana Ltd")
    assert "savedName" not in chats[1] and "businessName" not in chats[1]  # absent, not null


async def test_the_profile_picture_route(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await linked_instance(ryze_lite, "pics")
    path = f"/internal/profile-picture/pics/{JID}"
    auth = {"Authorization": f"Bearer {fake_bridge.token}"}
    async with ryze_lite.client(token="") as c:
        assert (await c.get(path)).status_code == 401
        assert (await c.get(path, headers={"Authorization": "Bearer nope"})).status_code == 401
        first = await c.get(path, headers=auth)
        picture = generated(JID)
        assert first.status_code == 200 and first.content == picture.data
        assert first.headers["content-type"] == "image/png"
        assert first.headers[PICTURE_ID_HEADER] == picture.id
        # the bridge says which picture it has: unchanged is 304, nothing downloaded
        same = await c.get(path, params={"known": picture.id}, headers=auth)
        assert (same.status_code, same.content, same.headers[PICTURE_ID_HEADER]) == (304, b"", picture.id)

        # the person changes their picture: a new id and the new bytes, even for the old known id
        new = solid_png((1, 2, 3))
        async with ryze_lite.client() as owner:
            changed = await owner.post(
                "/_simulator/pics/profile-pictures",
                json={"jid": CONTACT, "imageBase64": base64.b64encode(new).decode(), "mimetype": "image/png"},
            )
        new_id = changed.json()["pictureId"]
        assert new_id != picture.id
        fresh = await c.get(path, params={"known": picture.id}, headers=auth)
        assert (fresh.status_code, fresh.content, fresh.headers[PICTURE_ID_HEADER]) == (200, new, new_id)

        # hidden or removed: 404
        async with ryze_lite.client() as owner:
            await owner.post("/_simulator/pics/profile-pictures", json={"jid": CONTACT})
        assert (await c.get(path, headers=auth)).status_code == 404
        assert (await c.get(f"/internal/profile-picture/nope/{JID}", headers=auth)).status_code == 404
        # not a number or WhatsApp JID: 400, WhatsApp is not asked
        bad = await c.get("/internal/profile-picture/pics/x@s.whatsapp.net", headers=auth)
        assert bad.status_code == 400


async def test_no_picture_while_the_instance_is_not_connected(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    await linked_instance(ryze_lite, "offline-pics")
    async with ryze_lite.client() as owner:
        assert (await owner.post("/_simulator/offline-pics/disconnect")).status_code == 200
    async with ryze_lite.client(token="") as c:
        answer = await c.get(
            f"/internal/profile-picture/offline-pics/{JID}",
            headers={"Authorization": f"Bearer {fake_bridge.token}"},
        )
    assert answer.status_code == 503
