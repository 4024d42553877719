"""The connection conversation, unit by unit: command parsing, every command against an
in-memory Chatwoot and a fake link to RyzeAPI, connection posts and QR codes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ryze.bridge.control.center import ControlCenter
from ryze.bridge.control.commands import HELP_TEXT, CommandHandler, parse
from ryze.bridge.control.conversation import ChatwootControlRoom
from ryze.bridge.control.instance import InstanceLink
from ryze.bridge.control.qr import qr_png
from ryze.bridge.control.status_text import PASSKEY_TEXT
from ryze.bridge.control.store import ControlRoomState
from ryze.bridge.control.watch import QR_EXPIRED, ConnectionWatch
from ryze.bridge.link.client import LinkUnavailable
from ryze.chatwoot import ChatwootValidationError
from ryze.protocol import CommandFrame, InstanceStateData, ResultFrame

from .chatwoot_fake import InMemoryChatwoot

INBOX = 7


class MemoryStore:
    """The control room's row, kept in memory (the SQL store has its own test)."""

    def __init__(self) -> None:
        self.saved = ControlRoomState()

    async def load(self) -> ControlRoomState:
        return ControlRoomState(
            self.saved.contact_id,
            self.saved.conversation_id,
            self.saved.last_state,
            list(self.saved.qr_message_ids),
        )

    async def save(self, state: ControlRoomState) -> None:
        await asyncio.sleep(0)
        self.saved = ControlRoomState(
            state.contact_id, state.conversation_id, state.last_state, list(state.qr_message_ids)
        )


class FakeLink:
    """RyzeAPI's end of the link for control actions: answers what the test set."""

    connected = True

    def __init__(self) -> None:
        self.frames: list[CommandFrame] = []
        self.answers: dict[str, dict[str, Any] | None] = {"status": {"state": "disconnected"}}
        self.error: str | None = None
        self.down = False

    async def command(self, frame: CommandFrame, *, budget: float) -> ResultFrame:
        self.frames.append(frame)
        if self.down:
            raise LinkUnavailable("no result from RyzeAPI in time")
        if self.error is not None:
            return ResultFrame(id=frame.id, ok=False, error=self.error)
        return ResultFrame(id=frame.id, ok=True, data=self.answers.get(frame.action.value))

    def actions(self) -> list[str]:
        return [f.action.value for f in self.frames]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Room:
    def __init__(self, **handler_args: Any) -> None:
        self.chatwoot = InMemoryChatwoot(inbox_id=INBOX)
        self.store = MemoryStore()
        self.room = ChatwootControlRoom(
            integration_id="i1",
            instance="shop",
            inbox_id=INBOX,
            chatwoot=lambda: self.chatwoot,
            store=self.store,
        )
        self.watch = ConnectionWatch(self.room)
        self.link = FakeLink()
        self.clock = Clock()
        self.handler = CommandHandler(
            room=self.room,
            instance=InstanceLink(self.link, "i1", budget=1.0),
            watch=self.watch,
            relay_status=lambda: "Inbox relay: active.",
            clock=self.clock,
            **handler_args,
        )

    def posts(self) -> list[str]:
        return [m.content or "" for m in self.chatwoot.messages.values() if not m.deleted]

    def last(self) -> str:
        return self.posts()[-1]


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("status", "status", ""),
        ("  STATUS  ", "status", ""),
        ("/Qr", "qr", ""),
        ("pair +55 11 99999-0000", "pair", "+55 11 99999-0000"),
        ("Logout CONFIRM", "logout", "CONFIRM"),
        ("hello there", "unknown", "there"),
        ("", "unknown", ""),
    ],
)
def test_commands_are_read_case_insensitively(text: str, name: str, argument: str) -> None:
    command = parse(text)
    assert (command.name, command.argument) == (name, argument)


# ------------------------------------------------------------------------------ the room


async def test_the_bot_contact_is_made_once_with_no_whatsapp_address() -> None:
    r = Room()
    first = await r.room.post("one")
    second = await r.room.post("two")
    [contact] = r.chatwoot.contacts.values()
    assert contact.identifier == "ryze-control:shop" and contact.name == "Ryze · shop"
    assert contact.phone_number is None
    [conversation] = r.chatwoot.conversations.values()
    assert {r.chatwoot.messages[first].conversation_id, r.chatwoot.messages[second].conversation_id} == {
        conversation.id
    }
    # the bot talks as the contact: its posts are incoming, never agent messages (never commands)
    assert {m.message_type for m in r.chatwoot.messages.values()} == {"incoming"}
    assert r.store.saved.conversation_id == conversation.id


async def test_a_deleted_conversation_is_made_again() -> None:
    r = Room()
    await r.room.post("one")
    [old] = list(r.chatwoot.conversations)
    del r.chatwoot.conversations[old]  # an agent deleted it
    message_id = await r.room.post("two")
    [new] = list(r.chatwoot.conversations)
    assert new != old and r.chatwoot.messages[message_id].conversation_id == new
    assert len(r.chatwoot.contacts) == 1  # the same bot contact, found by its identifier
    assert r.store.saved.conversation_id == new


async def test_a_private_post_is_a_note() -> None:
    r = Room()
    message_id = await r.room.post("for agents", private=True)
    assert r.chatwoot.messages[message_id].private is True


# ------------------------------------------------------------------------------ commands


async def test_help_and_unknown_words_answer_the_help_text() -> None:
    r = Room()
    await r.handler.handle("help")
    assert r.last() == HELP_TEXT
    await r.handler.handle("restart everything")
    assert r.last().startswith("I do not know `restart everything`.") and r.last().endswith(HELP_TEXT)
    for name in ("status", "qr", "pair <number>", "reconnect", "logout", "resync", "selfcheck", "help"):
        assert f"`{name}`" in HELP_TEXT
    assert r.link.frames == []  # nothing asked of RyzeAPI


async def test_status_says_who_is_connected_and_how_the_relay_is() -> None:
    r = Room()
    r.link.answers["status"] = {"state": "connected", "number": "5511999990000", "name": "Shop"}
    await r.handler.handle("Status")
    assert r.last() == "WhatsApp: connected as +5511999990000 (Shop).\nInbox relay: active."
    r.link.answers["status"] = {"state": "qr_ready"}
    await r.handler.handle("status")
    assert r.last().startswith("WhatsApp: qr ready.")


async def test_qr_posts_the_code_as_a_png_and_replaces_the_previous_one() -> None:
    r = Room()
    r.link.answers["connect"] = {"state": "qr_ready", "qr": "2@first,abc"}
    await r.handler.handle("qr")
    [first] = [m for m in r.chatwoot.messages.values() if m.attachments]
    assert first.attachments[0].content_type == "image/png"
    assert first.attachments[0].data == qr_png("2@first,abc")
    assert first.attachments[0].data.startswith(b"\x89PNG")
    assert "Scan this QR code" in (first.content or "")
    r.link.answers["connect"] = {"state": "qr_ready", "qr": "2@second,def"}
    await r.handler.handle("QR")
    assert first.deleted is True
    [current] = [m for m in r.chatwoot.messages.values() if m.attachments and not m.deleted]
    assert current.attachments[0].data == qr_png("2@second,def")
    assert r.store.saved.qr_message_ids == [current.id]
    assert r.link.actions() == ["connect", "connect"]


async def test_qr_when_connected_says_so() -> None:
    r = Room()
    r.link.answers["connect"] = {"state": "connected", "number": "5511999990000", "name": "Shop"}
    await r.handler.handle("qr")
    assert r.last().startswith("Already connected as +5511999990000 (Shop)")


async def test_pair_asks_for_a_pairing_code_with_the_number() -> None:
    r = Room()
    r.link.answers["connect"] = {"state": "qr_ready", "pairingCode": "ABCDEFGH"}
    await r.handler.handle("pair +55 (11) 99999-0000")
    assert r.link.frames[-1].params == {"pairNumber": "5511999990000"}
    assert "*ABCD-EFGH*" in r.last() and "+5511999990000" in r.last()
    await r.handler.handle("pair me")
    assert r.last().startswith("Type `pair` and the phone number")
    assert len(r.link.frames) == 1  # an invalid number asks nothing of RyzeAPI


async def test_logout_needs_a_confirmation_within_two_minutes() -> None:
    r = Room()
    await r.handler.handle("logout confirm")
    assert r.last().startswith("Nothing to confirm")
    await r.handler.handle("logout")
    assert "`logout confirm` within 2 minutes" in r.last()
    assert r.link.frames == []
    r.clock.now += 121
    await r.handler.handle("logout confirm")
    assert r.last().startswith("Nothing to confirm") and r.link.frames == []
    await r.handler.handle("LOGOUT")
    r.clock.now += 60
    await r.handler.handle("Logout Confirm")
    assert r.link.actions() == ["logout"]
    assert r.last() == "Logging out of WhatsApp…"
    await r.handler.handle("logout confirm")  # a confirmation is used once
    assert r.link.actions() == ["logout"]


async def test_another_command_cancels_a_pending_logout() -> None:
    r = Room()
    await r.handler.handle("logout")
    await r.handler.handle("help")
    await r.handler.handle("logout confirm")
    assert r.last().startswith("Nothing to confirm") and r.link.frames == []


async def test_reconnect_asks_ryzeapi() -> None:
    r = Room()
    await r.handler.handle("reconnect")
    assert r.link.actions() == ["reconnect"]
    assert r.last() == "Reconnect requested: the connection changes follow here."


async def test_resync_and_selfcheck_without_their_runners_are_not_available() -> None:
    r = Room()
    await r.handler.handle("resync")
    assert r.last() == "`resync` is not available in this version of the bridge."
    await r.handler.handle("selfcheck")
    assert r.last() == "`selfcheck` is not available in this version of the bridge."


async def test_resync_and_selfcheck_post_what_their_runners_say() -> None:
    calls: list[str] = []

    async def selfcheck() -> str:
        calls.append("selfcheck")
        return "✅ all checks passed"

    async def resync() -> str:
        calls.append("resync")
        return "History import started"

    r = Room(selfcheck=selfcheck, resync=resync)
    await r.handler.handle("selfcheck")
    assert r.last() == "✅ all checks passed"
    await r.handler.handle("RESYNC")
    assert r.last() == "History import started"
    assert calls == ["selfcheck", "resync"]


async def test_an_older_ryzeapi_gets_an_explanation() -> None:
    r = Room()
    r.link.error = "RyzeAPI does not know the command action 'connect'"
    await r.handler.handle("qr")
    assert r.last().startswith("⚠️ This RyzeAPI is older than the bridge and cannot do `connect`")
    r.link.error, r.link.down = None, True
    await r.handler.handle("qr")
    assert r.last().startswith("⚠️ RyzeAPI did not answer")


async def test_with_the_link_down_status_still_tells_the_relay_side() -> None:
    r = Room()
    r.link.connected = False
    await r.handler.handle("status")
    assert r.last() == (
        "WhatsApp: not known (The link to RyzeAPI is down; try again once it is back.)\nInbox relay: active."
    )
    await r.handler.handle("reconnect")
    assert r.last() == "⚠️ The link to RyzeAPI is down; try again once it is back."
    assert r.link.frames == []


async def test_a_refused_action_says_why() -> None:
    r = Room()
    r.link.error = "instance shop does not exist"
    await r.handler.handle("reconnect")
    assert r.last() == "⚠️ RyzeAPI could not reconnect: instance shop does not exist"


# ------------------------------------------------------------------------------ connection posts


async def test_connection_changes_are_posted_once_each() -> None:
    r = Room()
    connected = InstanceStateData(state="connected", number="5511999990000", name="Shop")
    await r.watch.on_state(connected)
    await r.watch.on_state(connected)  # repeated: not posted again
    await r.watch.on_state(InstanceStateData(state="disconnected", reason="Connection to WhatsApp lost"))
    await r.watch.on_state(InstanceStateData(state="disconnected", reason="Connection to WhatsApp lost"))
    await r.watch.on_state(InstanceStateData(state="connecting"))
    await r.watch.on_state(connected)
    await r.watch.on_state(InstanceStateData(state="temp_banned", reason="expires in 3600 s"))
    await r.watch.on_state(InstanceStateData(state="loggedout", reason="Logged out from the phone"))
    assert r.posts() == [
        "✅ Connected to WhatsApp as +5511999990000 (Shop).",
        "🔌 Disconnected from WhatsApp (Connection to WhatsApp lost). Messages wait and are relayed once "
        "it is back; type `reconnect` to try now.",
        "🔄 Reconnecting to WhatsApp…",
        "✅ Connected to WhatsApp as +5511999990000 (Shop).",
        "⛔ WhatsApp temporarily banned this number (expires in 3600 s). Nothing can be sent until the ban "
        "ends; Ryze reconnects by itself after it.",
        "🚪 Logged out of WhatsApp (Logged out from the phone): this inbox no longer receives messages. "
        "Type `qr` to link the phone again.",
    ]


async def test_the_last_posted_state_survives_a_restart() -> None:
    r = Room()
    connected = InstanceStateData(state="connected", number="5511999990000", name="Shop")
    await r.watch.on_state(connected)
    # a new process: the same store, a fresh room (the replayed event must not post again)
    again = ChatwootControlRoom(
        integration_id="i1", instance="shop", inbox_id=INBOX, chatwoot=lambda: r.chatwoot, store=r.store
    )
    await ConnectionWatch(again).on_state(connected)
    assert len(r.posts()) == 1


async def test_connecting_during_pairing_is_not_posted() -> None:
    r = Room()
    await r.watch.on_state(InstanceStateData(state="connecting"))
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@one"))
    assert [m.content for m in r.chatwoot.messages.values() if not m.attachments] == []


async def test_rotating_qr_codes_replace_each_other_and_go_once_connected() -> None:
    r = Room()
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@one"))
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@one"))  # the same code: once
    images = [m for m in r.chatwoot.messages.values() if m.attachments]
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@two"))
    images += [m for m in r.chatwoot.messages.values() if m.attachments and m not in images]
    assert [m.deleted for m in images] == [True, False]
    await r.watch.on_state(InstanceStateData(state="connected", number="5511999990000"))
    assert all(m.deleted for m in images)
    assert r.posts()[-1] == "✅ Connected to WhatsApp as +5511999990000."


async def test_a_qr_code_chatwoot_will_not_delete_is_marked_expired() -> None:
    r = Room()
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@one"))
    r.chatwoot.fail("delete_message", ChatwootValidationError(422, "{}", endpoint="DELETE …/messages/1"))
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@two"))
    assert r.posts()[-1] == QR_EXPIRED


async def test_a_passkey_request_says_what_to_do_instead() -> None:
    r = Room()
    await r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@one"))
    [image] = [m for m in r.chatwoot.messages.values() if m.attachments]
    data = InstanceStateData(state="qr_ready", reason="passkey", problem="passkey_required")
    await r.watch.on_state(data)
    await r.watch.on_state(data)
    assert r.posts().count(PASSKEY_TEXT) == 1
    assert "`pair <number>`" in PASSKEY_TEXT and "another phone" in PASSKEY_TEXT
    assert image.deleted  # the QR code that led there cannot link this device


# ------------------------------------------------------------------------------ webhooks


def _webhook(message_id: int, conversation: int, content: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "message_created",
        "id": message_id,
        "content": content,
        "message_type": "outgoing",
        "private": False,
        "conversation": {"id": conversation},
        "sender": {"type": "user", "name": "Agent"},
    }
    body.update(fields)
    return body


async def test_only_agents_public_messages_in_the_room_are_commands() -> None:
    chatwoot = InMemoryChatwoot(inbox_id=INBOX)
    link = FakeLink()
    center = ControlCenter(
        integration_id="i1",
        instance="shop",
        inbox_id=INBOX,
        chatwoot=lambda: chatwoot,
        store=MemoryStore(),
        link=link,
        relay_status=lambda: "Inbox relay: active.",
    )
    conversation = await center.room.conversation_id()
    assert await center.owns(conversation) and not await center.owns(conversation + 1)
    own = await center.room.post("a post of the bot")

    def answers() -> list[str]:
        return [m.content or "" for m in chatwoot.messages.values() if m.id != own]

    center.on_webhook(_webhook(100, conversation, "help", private=True))  # a note
    center.on_webhook(_webhook(101, conversation, "help", message_type="incoming"))  # the bot contact
    center.on_webhook(_webhook(own, conversation, "help"))  # the bot's own post
    center.on_webhook(_webhook(102, conversation, "help", event="message_updated"))
    center.on_webhook(_webhook(103, conversation, "status"))
    center.on_webhook(_webhook(103, conversation, "status"))  # delivered twice: once
    await asyncio.wait_for(_drained(center), 5)
    assert answers() == ["WhatsApp: disconnected.\nInbox relay: active."]
    assert link.actions() == ["status"]
    await center.stop()


async def _drained(center: ControlCenter) -> None:
    for _ in range(200):
        worker = center._worker
        if worker is None or worker.done():
            return
        await asyncio.sleep(0.01)


class SlowChatwoot(InMemoryChatwoot):
    """Chatwoot answering over a network: other tasks run while a message is being created."""

    async def create_message(self, conversation_id: int, **fields: Any) -> Any:
        await asyncio.sleep(0)
        return await super().create_message(conversation_id, **fields)


async def test_the_same_qr_code_from_the_command_and_the_event_is_posted_once() -> None:
    r = Room()
    r.chatwoot = SlowChatwoot(inbox_id=INBOX)
    r.link.answers["connect"] = {"state": "qr_ready", "qr": "2@same"}
    await asyncio.gather(
        r.handler.handle("qr"), r.watch.on_state(InstanceStateData(state="qr_ready", qr="2@same"))
    )
    # one post of it, and nothing posted only to be deleted again
    assert r.chatwoot.calls.count("create_message") == 1
    assert "delete_message" not in r.chatwoot.calls
