"""A group's membership and metadata changes as activity lines in its Chatwoot conversation.

Real bridge against the Chatwoot emulator and a fake RyzeAPI: a ``group.flow`` event becomes one
readable line (names from the participants' contacts, else their push names), never relayed back
to WhatsApp (an activity fires no webhook), and the same change delivered again adds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ryze.bridge.relay.inbound.group_notices import notice_text
from ryze.emulator import RunningEmulator
from ryze.protocol import ChatRef, GroupFlowAction, GroupFlowData, SenderRef

from .conftest import RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import conversations

GROUP = "120363000000000042@g.us"
ANA, BOB, CAROL = (f"55110000{n}@s.whatsapp.net" for n in (1001, 1002, 1003))


async def _activate(bridge: RunningBridge, fake: FakeRyzeAPI, emulator: RunningEmulator) -> int:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    return int(view["inbox_id"])


def _flow(action: str, **fields: Any) -> dict[str, Any]:
    return {
        "chat": {"jid": GROUP, "type": "group", "name": fields.pop("name", "Team")},
        "action": action,
        "timestamp": fields.pop("timestamp", "2026-12-04T19:00:00Z"),
        **fields,
    }


async def _emit(fake: FakeRyzeAPI, event: str, data: dict[str, Any]) -> None:
    await fake.emit("shop", event, data)
    await eventually(lambda: not fake.unacked("shop"))


def _activities(emulator: RunningEmulator, conversation_pk: int) -> list[str | None]:
    state = emulator.emulator.state
    return [
        m.content
        for mid in state.conversations[conversation_pk].message_ids
        if (m := state.messages[mid]).message_type == 2 and (m.content or "").startswith("👥")
    ]


async def test_membership_and_subject_changes_are_lines_in_the_groups_conversation(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, database_url) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        message = text_message(
            "G1", GROUP, "hi", name="Team", chat_type="group", sender=ANA, sender_name="Ana"
        )
        await _emit(fake, "message.exchange", message)
        [conv] = conversations(emulator, inbox_id)
        # an agent renamed Ana's contact: the line uses the name the agent knows
        state = emulator.emulator.state
        [ana] = [c for c in state.contacts.values() if c.identifier == ANA]
        ana.name = "Ana (customer)"

        actor = {"jid": ANA, "name": "Ana"}
        await _emit(fake, "group.flow", _flow("add", actor=actor, participants=[{"jid": BOB, "name": "Bob"}]))
        await _emit(fake, "group.flow", _flow("promote", actor=actor, participants=[{"jid": BOB}],
                                              timestamp="2026-12-04T19:01:00Z"))  # fmt: skip
        await _emit(fake, "group.flow", _flow("remove", actor={"jid": CAROL, "name": "Carol"},
                                              participants=[{"jid": CAROL, "name": "Carol"}],
                                              timestamp="2026-12-04T19:02:00Z"))  # fmt: skip
        subject = _flow("subject", subject="Team Rocket", name="Team Rocket", actor=actor,
                        timestamp="2026-12-04T19:03:00Z")  # fmt: skip
        await _emit(fake, "group.flow", subject)
        await _emit(fake, "group.flow", subject)  # the same change again (a replay): no second line
        settings = _flow("settings", settings={"announce": True}, timestamp="2026-12-04T19:04:00Z")
        await _emit(fake, "group.flow", settings)  # of no use to an agent: no line

        assert _activities(emulator, conv.id) == [
            "👥 Ana (customer) added Bob",
            "👥 Ana (customer) made Bob an admin",  # no name given: the one he was added with
            "👥 Carol left",
            "👥 Ana (customer) changed the group name to “Team Rocket”",
        ]
        # the conversation's name (its contact's) is kept current by the same event
        assert state.contacts[conv.contact_id].name == "Team Rocket"
        # an activity fires no webhook: nothing went to WhatsApp
        assert fake.phone == []

    # a later run replaying the change (the mapping row is the key, not the process) adds nothing
    async with run_bridge(tmp_path, database_url) as bridge:
        await eventually(lambda: fake.connected("shop"))
        await _emit(fake, "group.flow", subject)
        assert len(_activities(emulator, conv.id)) == 4


def test_the_lines_read_naturally_without_an_actor_or_a_name() -> None:
    def flow(action: GroupFlowAction, **fields: Any) -> GroupFlowData:
        return GroupFlowData(chat=ChatRef(jid=GROUP, name="Team"), action=action, timestamp="t", **fields)

    def name(person: SenderRef) -> str:
        return person.name or "+" + person.jid.split("@")[0]

    bob, carol = SenderRef(jid=BOB, name="Bob"), SenderRef(jid=CAROL)
    assert notice_text(flow(GroupFlowAction.ADD, participants=[bob, carol]), name) == (
        "👥 Bob and +551100001003 joined"
    )
    assert (
        notice_text(flow(GroupFlowAction.DEMOTE, participants=[bob]), name) == "👥 Bob is no longer an admin"
    )
    assert notice_text(flow(GroupFlowAction.TOPIC, topic="Orders only", actor=bob), name) == (
        "👥 Bob changed the group description:\nOrders only"
    )
    assert notice_text(flow(GroupFlowAction.TOPIC, actor=bob), name) == "👥 Bob removed the group description"
    assert notice_text(flow(GroupFlowAction.CREATE, participants=[bob]), name) is None
    assert notice_text(flow(GroupFlowAction.REMOVE), name) is None  # about nobody: no line
