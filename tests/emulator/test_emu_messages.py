"""Messages (§6) and attachments."""

from __future__ import annotations

import json

import httpx

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, Api


async def test_create_json_integer_message_type_and_default_outgoing(
    client: httpx.AsyncClient, api: Api
) -> None:
    _, contact_id, conv = await api.chat()
    incoming = await api.message(conv, content="oi", message_type="incoming", source_id="WAID:1")
    assert incoming["message_type"] == 0 and incoming["conversation_id"] == conv
    assert incoming["sender"]["type"] == "contact" and incoming["sender"]["id"] == contact_id
    assert incoming["status"] == "sent" and isinstance(incoming["created_at"], int)
    assert "attachments" not in incoming
    outgoing = await api.message(conv, content="hello")
    assert outgoing["message_type"] == 1
    assert outgoing["sender"]["type"] == "user" and outgoing["sender"]["name"] == "Acme Admin"
    r = await client.post(
        f"{A1}/conversations/{conv}/messages", json={"content": "x", "message_type": "weird"}, headers=ADMIN
    )
    assert r.status_code == 422 and r.json() == {"error": "'weird' is not a valid message_type"}
    r = await client.post(f"{A1}/conversations/404/messages", json={"content": "x"}, headers=ADMIN)
    assert r.status_code == 404


async def test_source_id_is_not_unique_and_echo_id_is_only_echoed(
    client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    a = await api.message(conv, content="1", message_type="incoming", source_id="WAID:dup", echo_id="tmp-1")
    b = await api.message(conv, content="2", message_type="incoming", source_id="WAID:dup")
    assert a["id"] != b["id"] and a["source_id"] == b["source_id"] == "WAID:dup"
    assert a["echo_id"] == "tmp-1" and "echo_id" not in b
    r = await client.get(f"{A1}/conversations/{conv}/messages", headers=ADMIN)
    assert all("echo_id" not in m for m in r.json()["payload"])


async def test_in_reply_to_resolution_inside_the_conversation(api: Api) -> None:
    inbox_id, contact_id, conv = await api.chat()
    other = (await api.conversation(inbox_id, contact_id, "5511999999999"))["id"]
    quoted = await api.message(conv, content="q", message_type="incoming", source_id="WAID:q")
    foreign = await api.message(other, content="f", message_type="incoming", source_id="WAID:f")

    async def attrs(content_attributes: dict[str, object]) -> object:
        return (await api.message(conv, content="r", content_attributes=content_attributes))[
            "content_attributes"
        ]

    both = {"in_reply_to": quoted["id"], "in_reply_to_external_id": "WAID:q"}
    assert await attrs({"in_reply_to": quoted["id"]}) == both
    assert await attrs({"in_reply_to_external_id": "WAID:q"}) == both
    nothing = {"in_reply_to": None, "in_reply_to_external_id": None}
    assert await attrs({"in_reply_to_external_id": "WAID:missing"}) == nothing  # the external id is lost
    assert await attrs({"in_reply_to": foreign["id"]}) == nothing  # other conversation: not found
    assert await attrs({"in_reply_to_external_id": "WAID:f"}) == nothing


async def test_incoming_reopens_resolved_and_snoozed_and_bumps_activity(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    url = f"{A1}/conversations/{conv}"
    await client.post(url + "/toggle_status", json={"status": "resolved"}, headers=ADMIN)
    await api.message(conv, content="outgoing does not reopen")
    assert (await client.get(url, headers=ADMIN)).json()["status"] == "resolved"
    record = emu.state.conversation(1, conv)
    assert record is not None
    record.last_activity_at = 1_000_000.0
    await api.message(conv, content="back", message_type="incoming")
    body = (await client.get(url, headers=ADMIN)).json()
    assert body["status"] == "open"
    assert body["last_activity_at"] > 1_000_000
    await client.post(url + "/toggle_status", json={"status": "snoozed"}, headers=ADMIN)
    await api.message(conv, content="again", message_type="incoming")
    assert (await client.get(url, headers=ADMIN)).json()["status"] == "open"


async def test_content_limit_and_flood_guard(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    url = f"{A1}/conversations/{conv}/messages"
    r = await client.post(url, json={"content": "x" * 150_001}, headers=ADMIN)
    assert r.status_code == 422
    assert r.json() == {"error": "Validation failed: Content is too long (maximum is 150000 characters)"}
    assert (await client.post(url, json={"content": "x" * 150_000}, headers=ADMIN)).status_code == 200
    emu.configure(message_per_minute_limit=3)
    await client.post(url, json={"content": "2"}, headers=ADMIN)
    await client.post(url, json={"content": "3"}, headers=ADMIN)
    r = await client.post(url, json={"content": "4"}, headers=ADMIN)
    assert r.status_code == 422 and r.json() == {"error": "Validation failed: Too many messages"}


async def test_multipart_attachments_file_type_inference_and_redirect(
    client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    table = [
        ("a.jpg", "image/jpeg", "image"),
        ("a.jpg", "image/jpg", "image"),
        ("a.png", "image/png", "image"),
        ("a.gif", "image/gif", "image"),
        ("a.bmp", "image/bmp", "image"),
        ("a.webp", "image/webp", "image"),
        ("a.svg", "image/svg+xml", "file"),
        ("a.ogv", "video/ogg", "video"),
        ("a.mp4", "video/mp4", "video"),
        ("a.webm", "video/webm", "video"),
        ("a.mov", "video/quicktime", "video"),
        ("a.3gp", "video/3gpp", "file"),
        ("a.ogg", "audio/ogg", "audio"),
        ("a.opus", "audio/opus; codecs=opus", "audio"),
        ("a.pdf", "application/pdf", "file"),
    ]
    files = [
        ("attachments[]", (name, f"data-{i}".encode(), ctype)) for i, (name, ctype, _) in enumerate(table)
    ]
    data = {
        "content": "",
        "message_type": "incoming",
        "content_attributes": json.dumps({"in_reply_to_external_id": "none"}),
        "is_voice_message": "true",
    }
    r = await client.post(f"{A1}/conversations/{conv}/messages", data=data, files=files, headers=ADMIN)
    assert r.status_code == 200, r.text
    msg = r.json()
    assert msg["message_type"] == 0
    assert msg["content_attributes"] == {"in_reply_to": None, "in_reply_to_external_id": None}
    assert [a["file_type"] for a in msg["attachments"]] == [t for _, _, t in table]
    first = msg["attachments"][0]
    assert first["extension"] == "jpg" and first["file_size"] == len(b"data-0")
    assert first["data_url"].startswith("http://emu.test/rails/active_storage/blobs/redirect/")
    assert first["data_url"].endswith("/a.jpg")
    redirect = await client.get(first["data_url"])
    assert redirect.status_code == 302
    blob = await client.get(first["data_url"], follow_redirects=True)
    assert (blob.status_code, blob.content) == (200, b"data-0")
    assert blob.headers["content-type"].startswith("image/jpeg")


async def test_voice_message_flag_tags_audio(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    r = await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"is_voice_message": "true"},
        files=[("attachments[]", ("v.ogg", b"OggS", "audio/ogg"))],
        headers=ADMIN,
    )
    msg = emu.state.messages[r.json()["id"]]
    assert msg.attachments[0].meta == {"is_voice_message": True}
    assert r.json()["content"] is None  # attachment-only messages have null content


async def test_recorded_audio_names_tag_those_uploads_only(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    """The dashboard's reply box sends a recording as one more upload, named in is_recorded_audio
    (a JSON list of file names): that attachment keeps meta.is_recorded_audio, and its webhook /
    API data still shows no meta (Attachment#push_event_data)."""
    _, _, conv = await api.chat()
    r = await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"is_recorded_audio": '["voice-1.ogg"]'},
        files=[
            ("attachments[]", ("voice-1.ogg", b"OggS", "audio/ogg")),
            ("attachments[]", ("song.ogg", b"OggS", "audio/ogg")),
        ],
        headers=ADMIN,
    )
    msg = emu.state.messages[r.json()["id"]]
    assert [a.meta for a in msg.attachments] == [{"is_recorded_audio": True}, {}]
    assert all("meta" not in a for a in r.json()["attachments"])


async def test_storage_not_ready_delay(emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api) -> None:
    _, _, conv = await api.chat()
    emu.configure(storage_delay_ms=3_600_000)
    r = await client.post(
        f"{A1}/conversations/{conv}/messages",
        files=[("attachments[]", ("a.txt", b"abc", "text/plain"))],
        headers=ADMIN,
    )
    url = r.json()["attachments"][0]["data_url"]
    assert (await client.get(url, follow_redirects=True)).status_code == 404
    emu.configure(storage_delay_ms=0)
    assert (await client.get(url, follow_redirects=True)).content == b"abc"


async def test_delete_is_a_soft_delete(client: httpx.AsyncClient, api: Api) -> None:
    _, _, conv = await api.chat()
    r = await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"content": "bye", "content_attributes": json.dumps({"x": 1})},
        files=[("attachments[]", ("a.txt", b"abc", "text/plain"))],
        headers=ADMIN,
    )
    msg = r.json()
    url = msg["attachments"][0]["data_url"]
    r = await client.delete(f"{A1}/conversations/{conv}/messages/{msg['id']}", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    assert body["content"] == "This message was deleted"
    assert body["content_attributes"] == {"deleted": True}
    assert "attachments" not in body
    assert (await client.get(url)).status_code == 404
    r = await client.delete(f"{A1}/conversations/{conv}/messages/999", headers=ADMIN)
    assert r.status_code == 404


async def test_patch_status_rules(client: httpx.AsyncClient, api: Api) -> None:
    _, _, conv = await api.chat()
    msg = await api.message(conv, content="hi")
    url = f"{A1}/conversations/{conv}/messages/{msg['id']}"
    r = await client.patch(url, json={"status": "delivered", "external_error": "ignored"}, headers=ADMIN)
    assert r.json()["status"] == "delivered" and "external_error" not in r.json()["content_attributes"]
    r = await client.patch(url, json={"status": "read"}, headers=ADMIN)
    assert r.json()["status"] == "read"
    r = await client.patch(url, json={"status": "delivered"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "read"  # read -> delivered is ignored
    r = await client.patch(url, json={"status": "teleported"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "read"  # unknown status ignored
    r = await client.patch(url, json={"status": "failed", "external_error": "131047"}, headers=ADMIN)
    assert r.json()["status"] == "failed" and r.json()["content_attributes"]["external_error"] == "131047"


async def test_list_before_after_page_sizes_ascending(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    emu.configure(message_per_minute_limit=10_000)
    _, _, conv = await api.chat()
    ids = [(await api.message(conv, content=str(i), message_type="incoming"))["id"] for i in range(1100)]
    url = f"{A1}/conversations/{conv}/messages"

    async def page(**params: int) -> list[int]:
        r = await client.get(url, params=params, headers=ADMIN)
        return [m["id"] for m in r.json()["payload"]]

    assert await page() == ids[-20:]
    assert await page(before=ids[500]) == ids[480:500]
    assert await page(after=ids[500]) == ids[501:601]
    assert await page(after=ids[10], before=ids[1099]) == ids[10:1010]
    r = await client.get(url, headers=ADMIN)
    assert set(r.json()["meta"]) >= {"labels", "additional_attributes", "contact", "agent_last_seen_at"}
