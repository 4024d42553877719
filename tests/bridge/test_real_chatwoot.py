"""What a real Chatwoot does that the bridge must survive (issue 18, "Chatwoot"), each pinned against
the emulator behaving as the Chatwoot file named in the test does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ryze.bridge.relay.inbound.lookup import find_created
from ryze.bridge.relay.outbound.webhook import attachment_of, whatsapp_target
from ryze.chatwoot import ChatwootSessions
from ryze.common.outbound import FetchPolicy
from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.emulator import RunningEmulator
from ryze.emulator.state import Conversation

from .conftest import ACCOUNT, ADMIN_TOKEN, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents_per_chat, conversations


def is_voice_note(item: dict[str, Any]) -> bool:
    attachment = attachment_of(item)
    return attachment is not None and attachment.is_voice_note


A = "5511999990031@s.whatsapp.net"
B = "5511999990032@s.whatsapp.net"


async def _setup(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> dict[str, Any]:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    return dict(view)


async def _chat(
    emulator: RunningEmulator, fake: FakeRyzeAPI, view: dict[str, Any], wa_id: str, jid: str
) -> int:
    """One relayed WhatsApp message: the chat's conversation exists; its display id."""
    await fake.emit("shop", "message.exchange", text_message(wa_id, jid, "hi"))
    await eventually(lambda: not fake.unacked("shop"))
    source = {
        c.id: emulator.emulator.state.contact_inboxes[c.contact_inbox_id].source_id
        for c in conversations(emulator, view["inbox_id"])
    }
    [conv] = [c for c in conversations(emulator, view["inbox_id"]) if source[c.id] == jid]
    return conv.display_id


# ---------------------------------------------------------------- the API token header


async def test_the_bridge_works_behind_a_stock_nginx_that_drops_underscore_headers(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """nginx drops ``api_access_token`` (underscores) unless ``underscores_in_headers on``; the
    hyphenated header becomes the HTTP_API_ACCESS_TOKEN that Chatwoot's AccessTokenAuthHelper
    (app/controllers/concerns/access_token_auth_helper.rb) reads."""
    emulator.emulator.configure(drop_underscore_headers=True)
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("NGINX1", A, "through the proxy"))
    await eventually(lambda: not fake.unacked("shop"))
    assert contents_per_chat(emulator, view["inbox_id"]) == {A: ["through the proxy"]}
    sent = [r for r in emulator.emulator.recorder.requests if r.path.startswith("/api/v1/")]
    assert sent and all("api-access-token" in r.headers for r in sent)


# ---------------------------------------------------------------- 429 without Retry-After


async def test_rack_attack_429_without_retry_after_delays_but_loses_nothing(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """Rack::Attack's default throttled response (Chatwoot's config/initializers/rack_attack.rb sets
    no responder of its own): 429 "Retry later" and no Retry-After. The bridge backs off on its own."""
    view = await _setup(emulator, fake, bridge)
    await _chat(emulator, fake, view, "RA0", A)
    rule = emulator.emulator.faults.add(
        method="POST", path=r"/conversations/\d+/messages$", status=429, count=6
    )
    for i in range(1, 6):
        await fake.emit("shop", "message.exchange", text_message(f"RA{i}", A, f"m{i}"))
    await eventually(lambda: not fake.unacked("shop"), timeout=60)
    assert rule.fired == 6
    throttled = [r for r in emulator.emulator.recorder.requests if r.fault == "status 429"]
    assert throttled and all(r.status == 429 for r in throttled)
    assert contents_per_chat(emulator, view["inbox_id"]) == {A: ["hi", "m1", "m2", "m3", "m4", "m5"]}
    status, seen = await bridge.call("GET", f"/v1/integrations/{view['id']}")
    assert status == 200 and seen["status"] == "active"


# ---------------------------------------------------------------- attachments as Chatwoot sends them


async def test_an_ogg_voice_recording_goes_as_a_voice_note_and_an_mp3_as_audio(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """The webhook's attachments are ``Attachment#push_event_data`` (app/models/attachment.rb): no
    ``meta``, so the upload's voice flag is never seen; audio ``data_url``s carry
    ``?disposition=inline``. A voice note is recognised from what is there (OGG/Opus)."""
    view = await _setup(emulator, fake, bridge)
    display_id = await _chat(emulator, fake, view, "V0", A)
    await emulator.emulator.agent_reply(
        ACCOUNT, display_id, None, attachments=[("rec.ogg", b"OggS" + b"0" * 32, "audio/ogg")]
    )
    await eventually(lambda: len(fake.phone) == 1)
    await emulator.emulator.agent_reply(
        ACCOUNT, display_id, None, attachments=[("song.mp3", b"ID3" + b"0" * 32, "audio/mpeg")]
    )
    await eventually(lambda: len(fake.phone) == 2)
    (_, action1, voice), (_, action2, song) = fake.phone
    assert action1 == action2 == "send_media"
    assert voice["mediaType"] == "audio" and voice["isVoice"] is True
    assert voice["fileName"] == "rec.ogg" and voice["url"].endswith("/rec.ogg?disposition=inline")
    assert voice["mimetype"] == "audio/ogg"
    assert song["mediaType"] == "audio" and song["isVoice"] is False and song["fileName"] == "song.mp3"


def test_voice_note_detection_reads_what_push_event_data_has() -> None:
    base = {
        "file_type": "audio",
        "data_url": "https://cw.test/rails/active_storage/blobs/redirect/x/a.bin?disposition=inline",
    }
    assert is_voice_note({**base, "content_type": "audio/ogg; codecs=opus"})
    assert is_voice_note({**base, "content_type": "audio/opus"})
    assert is_voice_note({**base, "content_type": "application/octet-stream", "extension": "opus"})
    assert is_voice_note({**base, "data_url": base["data_url"].replace("a.bin", "v.oga")})
    assert not is_voice_note({**base, "content_type": "audio/mpeg", "extension": "mp3"})
    assert not is_voice_note({**base, "content_type": "audio/wav"})
    assert not is_voice_note({"file_type": "file", "content_type": "audio/ogg"})
    # a fork or an older Chatwoot that does show the upload's flag
    assert is_voice_note({**base, "content_type": "audio/mpeg", "meta": {"is_recorded_audio": True}})


def test_whatsapp_target_takes_source_id_only_when_it_is_a_jid() -> None:
    uuid = "4a3f4a1e-0a4d-4a61-9d0f-8a0e9a8a3f11"
    assert whatsapp_target({"source_id": A}, {"identifier": B}) == A
    assert whatsapp_target({"source_id": "120363012345@g.us"}, {}) == "120363012345@g.us"
    assert whatsapp_target({"source_id": "98765432101@lid"}, {}) == "98765432101@lid"
    assert whatsapp_target({"source_id": uuid}, {"identifier": B, "phone_number": "+5511000"}) == B
    assert whatsapp_target(
        {"source_id": uuid}, {"identifier": "crm-42", "phone_number": "+5511999990033"}
    ) == ("5511999990033@s.whatsapp.net")
    assert whatsapp_target({"source_id": uuid}, {"identifier": "someone@example.com"}) is None
    assert whatsapp_target({"source_id": uuid}, {"phone_number": "5511999"}) is None
    assert whatsapp_target({}, {}) is None


# ---------------------------------------------------------------- helpers for the agent's side


async def _cw(emulator: RunningEmulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A call to the emulator's REST API as an administrator would make it from the dashboard."""
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method,
            f"{emulator.url}/api/v1/accounts/{ACCOUNT}{path}",
            json=body,
            headers={"Api-Access-Token": ADMIN_TOKEN},
        ) as resp:
            raw = await resp.read()
            return resp.status, (orjson.loads(raw) if raw else None)


def _conversation_of(emulator: RunningEmulator, inbox_id: int, source_id: str) -> list[Conversation]:
    state = emulator.emulator.state
    return [
        c
        for c in conversations(emulator, inbox_id)
        if state.contact_inboxes[c.contact_inbox_id].source_id == source_id
    ]


def _by_display_id(emulator: RunningEmulator, display_id: int) -> Conversation:
    conv = emulator.emulator.state.conversation(ACCOUNT, display_id)
    assert conv is not None
    return conv


async def _status(bridge: RunningBridge, integration_id: str) -> dict[str, Any]:
    status, view = await bridge.call("GET", f"/v1/integrations/{integration_id}")
    assert status == 200
    return dict(view)


# ---------------------------------------------------------------- agent-started conversations


async def test_an_agent_started_conversation_goes_to_the_contacts_phone_number(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """An agent starts a conversation with a contact that never wrote on WhatsApp: Chatwoot gives
    the contact inbox ``source_id = SecureRandom.uuid`` (contactable_inboxes_service.rb). The send
    goes to the contact's phone number, and the customer's answer lands in that conversation."""
    view = await _setup(emulator, fake, bridge)
    status, created = await _cw(
        emulator, "POST", "/contacts", {"name": "Bia", "phone_number": "+5511999990033"}
    )
    assert status == 200
    contact_id = created["payload"]["contact"]["id"]
    conv = await emulator.emulator.agent_start_conversation(
        ACCOUNT, contact_id, view["inbox_id"], "Your order shipped"
    )
    source_id = emulator.emulator.state.contact_inboxes[
        _by_display_id(emulator, conv["id"]).contact_inbox_id
    ].source_id
    assert "@" not in source_id  # the UUID Chatwoot made
    await eventually(lambda: fake.phone)
    [(_, action, params)] = fake.phone
    assert action == "send_text" and params["to"] == "5511999990033@s.whatsapp.net"
    assert params["text"] == "Your order shipped"
    # the customer answers on WhatsApp: same contact, same conversation
    await fake.emit(
        "shop", "message.exchange", text_message("AGENT1", "5511999990033@s.whatsapp.net", "thanks!")
    )
    await eventually(lambda: not fake.unacked("shop"))
    thread = emulator.emulator.state.messages_of(_by_display_id(emulator, conv["id"]))
    assert [m.content for m in thread if m.message_type != 2] == ["Your order shipped", "thanks!"]
    assert len(conversations(emulator, view["inbox_id"])) == 1
    assert emulator.emulator.recorder.conformance_errors() == []


async def test_an_agent_started_conversation_without_a_whatsapp_address_is_marked_failed(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    status, created = await _cw(
        emulator, "POST", "/contacts", {"name": "Mail only", "email": "m@example.com"}
    )
    assert status == 200
    conv = await emulator.emulator.agent_start_conversation(
        ACCOUNT, created["payload"]["contact"]["id"], view["inbox_id"], "hello"
    )
    [message] = [
        m
        for m in emulator.emulator.state.messages_of(_by_display_id(emulator, conv["id"]))
        if m.message_type == 1
    ]
    await eventually(lambda: message.status == "failed")
    assert "not a WhatsApp JID" in message.content_attributes["external_error"]
    assert fake.phone == []


# ---------------------------------------------------------------- contacts deleted or merged


async def test_a_contact_deleted_in_chatwoot_is_resolved_again(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """ContactsController#destroy takes the conversations with it (contact.rb, destroy_async): the
    stored contact and conversation 404; the next message finds a new contact and conversation."""
    view = await _setup(emulator, fake, bridge)
    await _chat(emulator, fake, view, "DEL0", A)
    [old] = _conversation_of(emulator, view["inbox_id"], A)
    status, _ = await _cw(emulator, "DELETE", f"/contacts/{old.contact_id}")
    assert status == 200
    await fake.emit("shop", "message.exchange", text_message("DEL1", A, "after the deletion"))
    await eventually(lambda: not fake.unacked("shop"))
    [new] = _conversation_of(emulator, view["inbox_id"], A)
    assert new.contact_id != old.contact_id
    assert contents_per_chat(emulator, view["inbox_id"]) == {A: ["after the deletion"]}
    assert emulator.emulator.state.contacts[new.contact_id].identifier == A
    assert (await _status(bridge, view["id"]))["status"] == "active"
    mapped = await bridge.services.repos.messages.find_wa_any(view["id"], "DEL1")
    assert mapped is not None and mapped.state == "done"


async def test_after_a_merge_both_whatsapp_chats_map_to_the_surviving_contact(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """POST /actions/contact_merge (app/actions/contact_merge_action.rb): the mergee's conversations
    and contact inboxes move to the base contact, the mergee is destroyed. Each chat keeps its own
    conversations; a new one for the mergee's chat belongs to the survivor."""
    view = await _setup(emulator, fake, bridge)
    inbox_id = view["inbox_id"]
    await _chat(emulator, fake, view, "MA1", A)
    await _chat(emulator, fake, view, "MB1", B)
    [conv_a] = _conversation_of(emulator, inbox_id, A)
    [conv_b] = _conversation_of(emulator, inbox_id, B)
    base, mergee = conv_a.contact_id, conv_b.contact_id
    status, merged = await _cw(
        emulator, "POST", "/actions/contact_merge", {"base_contact_id": base, "mergee_contact_id": mergee}
    )
    assert status == 200 and merged["id"] == base
    await fake.emit("shop", "message.exchange", text_message("MB2", B, "b2"))
    await eventually(lambda: not fake.unacked("shop"))
    await emulator.emulator.agent_toggle_status(ACCOUNT, conv_b.display_id, "resolved")
    await emulator.emulator.incoming_dispatch_idle()  # the bridge has seen the conversation resolved
    await fake.emit("shop", "message.exchange", text_message("MB3", B, "b3"))
    await fake.emit("shop", "message.exchange", text_message("MA2", A, "a2"))
    await eventually(lambda: not fake.unacked("shop"))
    assert contents_per_chat(emulator, inbox_id) == {A: ["hi", "a2"], B: ["hi", "b2", "b3"]}
    convs_b = _conversation_of(emulator, inbox_id, B)
    assert len(convs_b) == 2 and {c.contact_id for c in convs_b} == {base}
    assert [c.id for c in _conversation_of(emulator, inbox_id, A)] == [conv_a.id]
    record_b = await bridge.services.repos.chats.find(view["id"], [B])
    record_a = await bridge.services.repos.chats.find(view["id"], [A])
    assert record_a is not None and record_b is not None
    assert record_a.contact_id == record_b.contact_id == base
    # an agent reply in the new conversation goes to the mergee's chat
    new_b = max(convs_b, key=lambda c: c.id)
    await emulator.emulator.agent_reply(ACCOUNT, new_b.display_id, "for b")
    await eventually(lambda: fake.phone)
    assert [(p["to"], p["text"]) for _, _, p in fake.phone] == [(B, "for b")]
    assert emulator.emulator.recorder.conformance_errors() == []


# ---------------------------------------------------------------- inbox deleted behind the bridge's back


async def test_an_inbox_deleted_in_chatwoot_turns_the_integration_error_and_keeps_the_messages(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """InboxesController#destroy only enqueues DeleteObjectJob (app/jobs/delete_object_job.rb):
    until it runs the inbox works and webhooks arrive; afterwards the integration is ``error`` with
    a last_error that says so, and WhatsApp messages wait in RyzeAPI's log instead of being lost."""
    view = await _setup(emulator, fake, bridge)
    emu = emulator.emulator
    display_id = await _chat(emulator, fake, view, "IN0", A)
    emu.configure(job_delay=3600)
    status, _ = await _cw(emulator, "DELETE", f"/inboxes/{view['inbox_id']}")
    assert status == 200
    # the job has not run: both directions still work
    await emu.agent_reply(ACCOUNT, display_id, "still here")
    await eventually(lambda: fake.phone)
    await fake.emit("shop", "message.exchange", text_message("IN1", A, "me too"))
    await eventually(lambda: not fake.unacked("shop"))
    assert (await _status(bridge, view["id"]))["status"] == "active"
    emu.configure(job_delay=0)
    await emu.jobs_idle()
    assert view["inbox_id"] not in emu.state.inboxes
    await fake.emit("shop", "message.exchange", text_message("IN2", A, "into the void"))

    async def inbox_gone() -> bool:
        shown = await _status(bridge, view["id"])
        return shown["status"] == "error" and "was deleted in Chatwoot" in shown["last_error"]

    await eventually(inbox_gone)
    shown = await _status(bridge, view["id"])
    assert f"inbox {view['inbox_id']}" in shown["last_error"] and "set again" in shown["last_error"]
    assert fake.unacked("shop")  # kept: neither acked nor given up
    assert await bridge.services.repos.messages.find_wa_any(view["id"], "IN2") is None


# ---------------------------------------------------------------- the 20-message window


async def test_the_already_created_check_finds_a_message_older_than_the_latest_20(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    """A create whose answer was lost, and then 25 more messages in the conversation: Chatwoot's
    message list gives only the latest 20 (MessageFinder#messages_latest, ``limit(20)``), so the
    check before creating again must page back with ``before``."""
    # no catch-up sweep: its message listings would mix with the check's in the recorder
    async with run_bridge(tmp_path, catchup_window=0) as bridge:
        view = await _setup(emulator, fake, bridge)
        display_id = await _chat(emulator, fake, view, "W0", A)
        late = text_message("W1", A, "created, answer lost")  # WhatsApp's timestamp: before the create
        status, _ = await _cw(
            emulator,
            "POST",
            f"/conversations/{display_id}/messages",
            {"content": "created, answer lost", "message_type": "incoming", "source_id": "WAID:W1"},
        )
        assert status == 200
        for i in range(25):
            status, _ = await _cw(
                emulator,
                "POST",
                f"/conversations/{display_id}/messages",
                {"content": f"note {i}", "private": True},
            )
            assert status == 200
        emulator.emulator.faults.add(method="POST", path=r"/conversations/\d+/messages$", status=502, count=1)
        await fake.emit("shop", "message.exchange", late)
        await fake.emit("shop", "message.exchange", text_message("W2", A, "next"))
        await eventually(lambda: not fake.unacked("shop"), timeout=30)
        assert contents_per_chat(emulator, view["inbox_id"]) == {A: ["hi", "created, answer lost", "next"]}
        pages = [
            r.query
            for r in emulator.emulator.recorder.requests
            if r.method == "GET" and r.path.endswith(f"/conversations/{display_id}/messages")
        ]
        assert pages[0] == "" and pages[1].startswith("before=")


async def test_find_created_pages_back_within_its_bounds(emulator: RunningEmulator) -> None:
    pool = ChatwootSessions(timeout=5.0, policy=FetchPolicy.from_setting(LOOPBACK_ALLOW, setting="test"))
    try:
        cw = pool.client(emulator.url, ACCOUNT, ADMIN_TOKEN)
        inbox = await cw.create_api_inbox("Lookup", "")
        contact = await cw.create_contact(name="L", inbox_id=inbox.id, source_id=A)
        conv = await cw.create_conversation(inbox_id=inbox.id, contact_id=contact.id, source_id=A)
        await cw.create_message(conv.id, content="first", message_type="incoming", source_id="WAID:FIRST")
        for i in range(45):
            await cw.create_message(conv.id, content=f"m{i}", message_type="outgoing", private=True)
        now = time.time()
        found = await find_created(cw, conv.id, "WAID:FIRST", not_before=now)
        assert found is not None and found.content == "first"
        assert await find_created(cw, conv.id, "WAID:NONE", not_before=now) is None  # start reached
        requests = emulator.emulator.recorder.requests
        requests.clear()
        assert await find_created(cw, conv.id, "WAID:FIRST", not_before=now, max_pages=2) is None
        assert len(requests) == 2
        requests.clear()
        # a WhatsApp message far newer than every Chatwoot message: one page is enough
        assert await find_created(cw, conv.id, "WAID:FIRST", not_before=now + 3600) is None
        assert len(requests) == 1
    finally:
        await pool.close()
