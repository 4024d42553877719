"""What a real Chatwoot does that the bridge must survive (issue 18, "Chatwoot"), each pinned against
the emulator behaving as the Chatwoot file named in the test does."""

from __future__ import annotations

from typing import Any

from ryze.bridge.relay.outbound.worker import is_voice_note, whatsapp_target
from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, RunningBridge, eventually
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents_per_chat, conversations

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
