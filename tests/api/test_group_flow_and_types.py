"""``group.flow`` and the newer message shapes (polls, GIFs, live locations, video notes) as RyzeAPI
publishes them: engine domain events -> the documented envelope on the event bus."""

from __future__ import annotations

from ryze.engines.base import GroupSettings, Location, Poll
from ryze.engines.simulated import GroupChange, GroupMember, Inbound, InboundMedia, SimulatedSession
from ryze.protocol import EventEnvelope, GroupFlowAction

from .harness import Api

GROUP = "120363000000000001@g.us"
ANA = "5511977776666@s.whatsapp.net"
ANA_LID = "123456789@lid"


def session(api: Api) -> SimulatedSession:
    found = api.engine.session("orion")
    assert found is not None
    return found


async def test_group_changes_are_published_as_group_flow(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await session(api).deliver_group(
        [
            GroupChange(
                group=GROUP,
                action="create",
                subject="Família",
                topic="fotos",
                participants=(GroupMember(ANA_LID, ANA, "Ana"), GroupMember("5511900000001")),
                actor=ANA_LID,
                actor_alt=ANA,
            ),
            GroupChange(group=GROUP, action="subject", subject="Família 2026", actor=ANA_LID),
            GroupChange(group=GROUP, action="remove", participants=(GroupMember(ANA_LID),), actor=ANA_LID),
            GroupChange(
                group=GROUP, action="settings", settings=GroupSettings(announce=True, ephemeral_seconds=0)
            ),
        ]
    )
    create, rename, remove, settings = api.of("group.flow")
    assert create.instanceData.token == token  # the public envelope (webhooks / WS) carries it
    assert create.data["action"] == "create"
    assert create.data["chat"] == {"jid": GROUP, "name": "Família", "type": "group"}
    assert create.data["subject"] == "Família" and create.data["topic"] == "fotos"
    assert create.data["participants"] == [
        {"jid": ANA_LID, "pn": ANA, "name": "Ana"},
        {"jid": "5511900000001@s.whatsapp.net"},
    ]
    assert create.data["actor"] == {"jid": ANA_LID, "pn": ANA}
    assert create.data["timestamp"].endswith("Z")
    assert rename.data["chat"]["name"] == "Família 2026" and rename.data["subject"] == "Família 2026"
    assert remove.data["action"] == "remove" and remove.data["chat"]["name"] == "Família 2026"
    assert remove.data["participants"] == [{"jid": ANA_LID}]
    assert settings.data["settings"] == {"announce": True, "ephemeralSeconds": 0}
    flow = EventEnvelope.model_validate(settings.model_dump()).group_flow()  # the contract model
    assert flow.action is GroupFlowAction.SETTINGS and flow.chat.name == "Família 2026"
    assert "actor" not in settings.data


async def test_group_messages_carry_the_subject_in_chat_name(api: Api, account_token: str) -> None:
    await api.connected_instance(account_token)
    sim = session(api)
    await sim.deliver([Inbound(sender=ANA, group=GROUP, text="antes")])
    await sim.create_group(GROUP, "Família", (GroupMember(ANA),))
    await sim.deliver([Inbound(sender=ANA, group=GROUP, text="depois")])
    await sim.rename_group(GROUP, "Trabalho")
    await sim.send_text(GROUP, "nossa")
    messages = [e.data["message"] for e in api.of("message.exchange")]
    assert [m["chat"].get("name") for m in messages] == [None, "Família", "Trabalho"]
    assert messages[-1]["fromMe"] is True


async def test_group_flow_waits_while_offline(api: Api, account_token: str) -> None:
    await api.connected_instance(account_token)
    sim = session(api)
    await sim.drop_connection()
    await sim.create_group(GROUP, "Família")
    assert api.of("group.flow") == []
    await sim.connect()
    [create] = api.of("group.flow")
    assert create.data["subject"] == "Família"


async def test_polls_gifs_live_locations_and_video_notes(api: Api, account_token: str) -> None:
    await api.connected_instance(account_token)
    await session(api).deliver(
        [
            Inbound(sender=ANA, kind="poll", poll=Poll("Almoço?", ("pizza", "sushi"), 0)),
            Inbound(
                sender=ANA,
                kind="video",
                text="kkk",
                media=InboundMedia(kind="video", data=b"\0" * 64, mimetype="video/mp4", gif=True),
            ),
            Inbound(sender=ANA, kind="location", location=Location(-22.9, -43.2, live=True)),
            Inbound(
                sender=ANA,
                kind="video",
                media=InboundMedia(kind="ptv", data=b"\0" * 64, mimetype="video/mp4"),
            ),
            Inbound(
                sender=ANA,
                kind="video",
                media=InboundMedia(kind="video", data=b"\0" * 64, mimetype="video/mp4"),
            ),
        ]
    )
    poll, gif, live, ptv, video = (e.data["message"] for e in api.of("message.exchange"))
    assert poll["type"] == "poll"
    assert poll["poll"] == {"name": "Almoço?", "options": ["pizza", "sushi"], "selectableCount": 0}
    assert gif["type"] == "video" and gif["media"]["gif"] is True and gif["content"] == {"text": "kkk"}
    assert live["type"] == "location" and live["location"]["live"] is True
    assert ptv["media"]["type"] == "ptv"
    assert "gif" not in video["media"]  # only set when true
    stored = await api.services.messaging.get_message("orion", poll["id"])
    assert stored.kind == "poll" and stored.payload["poll"]["name"] == "Almoço?"


async def test_a_reply_carries_the_quoted_text_it_quotes(api: Api, account_token: str) -> None:
    """WhatsApp copies the quoted message into a reply (``contextInfo.quotedMessage``): the event
    carries its text, so a bridge that never relayed the quoted message can still show it."""
    await api.connected_instance(account_token)
    await session(api).deliver(
        [
            Inbound(sender=ANA, text="sim", reply_to="3EB0OURS01", quoted_text="tudo bem?"),
            Inbound(sender=ANA, text="sem citação"),
        ]
    )
    reply, plain = (e.data["message"] for e in api.of("message.exchange"))
    assert reply["replyTo"] == "3EB0OURS01" and reply["quotedText"] == "tudo bem?"
    assert "replyTo" not in plain and "quotedText" not in plain
