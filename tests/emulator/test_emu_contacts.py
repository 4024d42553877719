"""Contacts and contact_inboxes (§4)."""

from __future__ import annotations

import httpx
import pytest

from .conftest import A1, ADMIN, Api


async def test_create_with_inbox_and_source_creates_contact_inbox(
    client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    body = {
        "name": "Ana",
        "phone_number": "+5511999999999",
        "inbox_id": inbox["id"],
        "source_id": "5511999999999",
    }
    r = await client.post(f"{A1}/contacts", json=body, headers=ADMIN)
    assert r.status_code == 200
    payload = r.json()["payload"]
    contact = payload["contact"]
    assert contact["phone_number"] == "+5511999999999"
    assert contact["contact_inboxes"] == [
        {
            "source_id": "5511999999999",
            "inbox": {
                "id": inbox["id"],
                "avatar_url": "",
                "channel_id": inbox["channel_id"],
                "name": "WhatsApp",
                "channel_type": "Channel::Api",
                "provider": None,
            },
        }
    ]
    # contact_inbox.inbox is the raw Inbox row, not the inbox partial (no webhook_url/secret).
    assert payload["contact_inbox"]["source_id"] == "5511999999999"
    assert payload["contact_inbox"]["inbox"]["account_id"] == 1
    assert "secret" not in payload["contact_inbox"]["inbox"]


async def test_create_without_inbox_and_with_inbox_but_no_source(client: httpx.AsyncClient, api: Api) -> None:
    r = await client.post(f"{A1}/contacts", json={"name": "No inbox"}, headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["payload"]["contact_inbox"] == {"inbox": None, "source_id": None}
    inbox = await api.inbox()
    r = await client.post(f"{A1}/contacts", json={"name": "uuid", "inbox_id": inbox["id"]}, headers=ADMIN)
    source = r.json()["payload"]["contact_inbox"]["source_id"]
    assert len(source) == 36 and source.count("-") == 4  # a random UUID
    r = await client.post(f"{A1}/contacts", json={"name": "bad", "inbox_id": 999}, headers=ADMIN)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("+5511999999999", True),
        ("+12", True),
        ("5511999999999", False),
        ("+0511999999", False),
        ("+55 11 99999-9999", False),
        ("+1234567890123456", False),
        # No start anchor in /\+[1-9]\d{1,14}\z/: junk before the "+" is accepted.
        ("tel:+5511999999999", True),
    ],
)
async def test_e164_rule(client: httpx.AsyncClient, phone: str, ok: bool) -> None:
    r = await client.post(f"{A1}/contacts", json={"name": "p", "phone_number": phone}, headers=ADMIN)
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 422
        assert r.json() == {
            "message": "Phone number should be in e164 format",
            "attributes": ["phone_number"],
        }


async def test_uniqueness_of_phone_identifier_and_case_insensitive_email(client: httpx.AsyncClient) -> None:
    body = {"name": "a", "phone_number": "+5511911111111", "identifier": "ID-1", "email": "Ana@Example.com"}
    r = await client.post(f"{A1}/contacts", json=body, headers=ADMIN)
    assert r.status_code == 200 and r.json()["payload"]["contact"]["email"] == "ana@example.com"
    r = await client.post(f"{A1}/contacts", json={"phone_number": "+5511911111111"}, headers=ADMIN)
    assert r.json() == {"message": "Phone number has already been taken", "attributes": ["phone_number"]}
    r = await client.post(f"{A1}/contacts", json={"identifier": "ID-1"}, headers=ADMIN)
    assert r.json() == {"message": "Identifier has already been taken", "attributes": ["identifier"]}
    r = await client.post(f"{A1}/contacts", json={"identifier": "id-1"}, headers=ADMIN)
    assert r.status_code == 200  # identifier uniqueness is case-sensitive
    r = await client.post(f"{A1}/contacts", json={"email": "ANA@example.COM"}, headers=ADMIN)
    assert r.status_code == 422
    assert r.json() == {"message": "Email has already been taken", "attributes": ["email"]}
    r = await client.post(f"{A1}/contacts", json={"email": "not-an-email"}, headers=ADMIN)
    assert r.json() == {"message": "Email Invalid email", "attributes": ["email"]}
    r = await client.post(f"{A1}/contacts", json={"name": "x" * 256}, headers=ADMIN)
    assert r.json()["attributes"] == ["name"]


async def test_update_merges_attributes_with_patch_and_put(client: httpx.AsyncClient) -> None:
    body = {"name": "a", "custom_attributes": {"a": 1}, "additional_attributes": {"city": "SP"}}
    r = await client.post(f"{A1}/contacts", json=body, headers=ADMIN)
    cid = r.json()["payload"]["contact"]["id"]
    r = await client.patch(
        f"{A1}/contacts/{cid}", json={"custom_attributes": {"b": 2}, "name": "Ana"}, headers=ADMIN
    )
    assert r.status_code == 200  # the spec says 204; Chatwoot answers 200 {"payload": contact}
    assert r.json()["payload"]["custom_attributes"] == {"a": 1, "b": 2}
    r = await client.put(
        f"{A1}/contacts/{cid}", json={"additional_attributes": {"country": "BR"}}, headers=ADMIN
    )
    contact = r.json()["payload"]
    assert contact["additional_attributes"] == {"city": "SP", "country": "BR"}
    assert contact["name"] == "Ana"
    r = await client.get(f"{A1}/contacts/{cid}", headers=ADMIN)
    assert r.json()["payload"]["custom_attributes"] == {"a": 1, "b": 2}
    r = await client.patch(f"{A1}/contacts/{cid}", json={"phone_number": "123"}, headers=ADMIN)
    assert r.status_code == 422
    r = await client.get(f"{A1}/contacts/424242", headers=ADMIN)
    assert r.status_code == 404


async def test_search_pages_of_15_with_has_more(client: httpx.AsyncClient) -> None:
    for i in range(17):
        await client.post(
            f"{A1}/contacts",
            json={"name": f"Person {i}", "phone_number": f"+55119000000{i:02d}"},
            headers=ADMIN,
        )
    r = await client.get(f"{A1}/contacts/search", params={"q": "person"}, headers=ADMIN)
    body = r.json()
    assert body["meta"] == {"count": 15, "current_page": 1, "has_more": True}
    r = await client.get(f"{A1}/contacts/search", params={"q": "person", "page": "2"}, headers=ADMIN)
    assert r.json()["meta"] == {"count": 2, "current_page": "2", "has_more": False}
    # "%2B" keeps the plus; a raw "+" decodes to a space and is stripped, still a substring match.
    r = await client.get(f"{A1}/contacts/search?q=%2B5511900000003", headers=ADMIN)
    assert [c["phone_number"] for c in r.json()["payload"]] == ["+5511900000003"]
    r = await client.get(f"{A1}/contacts/search?q=+5511900000003", headers=ADMIN)
    assert [c["phone_number"] for c in r.json()["payload"]] == ["+5511900000003"]


async def test_filter_phone_normalisation_identifier_case_and_or(client: httpx.AsyncClient) -> None:
    await client.post(f"{A1}/contacts", json={"name": "Ana", "phone_number": "+5511911111111"}, headers=ADMIN)
    await client.post(f"{A1}/contacts", json={"name": "Bob", "identifier": "WA-Bob"}, headers=ADMIN)
    await client.post(f"{A1}/contacts", json={"name": "Nobody"}, headers=ADMIN)  # not "resolved": never found

    async def names(payload: list[dict[str, object]]) -> list[str]:
        r = await client.post(f"{A1}/contacts/filter", json={"payload": payload}, headers=ADMIN)
        assert r.status_code == 200, r.text
        return sorted(c["name"] for c in r.json()["payload"])

    phone = {
        "attribute_key": "phone_number",
        "filter_operator": "equal_to",
        "values": ["55 (11) 91111-1111"],
        "query_operator": None,
    }
    assert await names([phone]) == ["Ana"]
    ident = {
        "attribute_key": "identifier",
        "filter_operator": "equal_to",
        "values": ["wa-bob"],
        "query_operator": None,
    }
    assert await names([ident]) == ["Bob"]
    assert await names([{**phone, "query_operator": "OR"}, ident]) == ["Ana", "Bob"]
    assert await names([{**phone, "query_operator": "AND"}, ident]) == []
    contains = {
        "attribute_key": "name",
        "filter_operator": "does_not_contain",
        "values": ["bo"],
        "query_operator": None,
    }
    assert await names([contains]) == ["Ana"]
    r = await client.post(
        f"{A1}/contacts/filter",
        json={"payload": [{**phone, "query_operator": "XOR"}, ident]},
        headers=ADMIN,
    )
    assert r.status_code == 422 and "error" in r.json()
    r = await client.post(
        f"{A1}/contacts/filter",
        json={"payload": [{"attribute_key": "shoe_size", "filter_operator": "equal_to", "values": ["1"]}]},
        headers=ADMIN,
    )
    assert r.status_code == 422 and "error" in r.json()


async def test_contact_conversations_newest_activity_first_max_20(
    client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    cid = await api.contact(inbox["id"], "+5511922222222", "s1")
    convs = [await api.conversation(inbox["id"], cid, "s1") for _ in range(22)]
    await api.message(convs[0]["id"], content="bump", message_type="incoming")
    r = await client.get(f"{A1}/contacts/{cid}/conversations", headers=ADMIN)
    payload = r.json()["payload"]
    assert len(payload) == 20
    assert payload[0]["id"] == convs[0]["id"]


async def test_contact_inboxes_create_reuse_and_clash(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    ana = await api.contact(None, "+5511933333333")
    bob = await api.contact(None, "+5511944444444")
    url = f"{A1}/contacts/{ana}/contact_inboxes"
    r = await client.post(url, json={"inbox_id": inbox["id"], "source_id": "ana-src"}, headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["source_id"] == "ana-src" and r.json()["inbox"]["id"] == inbox["id"]
    r = await client.post(url, json={"inbox_id": inbox["id"], "source_id": "ana-src"}, headers=ADMIN)
    assert r.status_code == 200  # same contact, inbox and source: returned unchanged
    r = await client.post(
        f"{A1}/contacts/{bob}/contact_inboxes",
        json={"inbox_id": inbox["id"], "source_id": "ana-src"},
        headers=ADMIN,
    )
    assert r.status_code == 500
    assert r.json() == {"status": 500, "error": "Internal Server Error"}
    r = await client.post(url, json={"inbox_id": 999, "source_id": "x"}, headers=ADMIN)
    assert r.status_code == 404
    # POST /contacts with a clashing source_id is a 500 too, and no contact is left behind.
    r = await client.post(
        f"{A1}/contacts", json={"name": "Eve", "inbox_id": inbox["id"], "source_id": "ana-src"}, headers=ADMIN
    )
    assert r.status_code == 500
    r = await client.get(f"{A1}/contacts/search", params={"q": "Eve"}, headers=ADMIN)
    assert r.json()["payload"] == []


async def test_contact_inboxes_filter_exact_lookup(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    cid = await api.contact(inbox["id"], "+5511955555555", "5511955555555")
    url = f"{A1}/contact_inboxes/filter"
    r = await client.post(url, json={"inbox_id": inbox["id"], "source_id": "5511955555555"}, headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["id"] == cid and "payload" not in r.json()
    assert r.json()["contact_inboxes"][0]["source_id"] == "5511955555555"
    r = await client.post(url, json={"inbox_id": inbox["id"], "source_id": "nope"}, headers=ADMIN)
    assert r.status_code == 404 and r.content == b""


async def test_a_multipart_avatar_becomes_the_contacts_thumbnail(client: httpx.AsyncClient) -> None:
    """ContactsController#update assigns a multipart `avatar` (permitted_params) to Avatarable's
    `has_one_attached :avatar`; the contact JSON shows it as `thumbnail`, served by ActiveStorage."""
    r = await client.post(f"{A1}/contacts", json={"name": "Pic", "identifier": "pic-1"}, headers=ADMIN)
    contact_id = r.json()["payload"]["contact"]["id"]
    assert r.json()["payload"]["contact"]["thumbnail"] == ""
    png = b"\x89PNG\r\n\x1a\n-first"
    r = await client.patch(
        f"{A1}/contacts/{contact_id}", files={"avatar": ("a.png", png, "image/png")}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    thumbnail = r.json()["payload"]["thumbnail"]
    assert thumbnail.startswith("http://emu.test/rails/active_storage/blobs/redirect/")
    shown = (await client.get(f"{A1}/contacts/{contact_id}", headers=ADMIN)).json()["payload"]
    assert shown["thumbnail"] == thumbnail and shown["name"] == "Pic"  # nothing else changed
    blob = await client.get(thumbnail, follow_redirects=True)
    assert (blob.status_code, blob.content, blob.headers["content-type"]) == (200, png, "image/png")

    # a new avatar replaces the old one, whose blob is gone
    r = await client.patch(
        f"{A1}/contacts/{contact_id}",
        files={"avatar": ("b.jpg", b"\xff\xd8jpeg", "image/jpeg")},
        headers=ADMIN,
    )
    assert r.json()["payload"]["thumbnail"] != thumbnail
    assert (await client.get(thumbnail, follow_redirects=True)).status_code == 404


async def test_an_avatar_of_a_type_chatwoot_does_not_keep_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{A1}/contacts", json={"name": "Bad pic", "identifier": "pic-2"}, headers=ADMIN)
    contact_id = r.json()["payload"]["contact"]["id"]
    r = await client.patch(
        f"{A1}/contacts/{contact_id}", files={"avatar": ("a.svg", b"<svg/>", "image/svg+xml")}, headers=ADMIN
    )
    assert r.status_code == 422
    assert r.json()["attributes"] == ["avatar"]
    shown = (await client.get(f"{A1}/contacts/{contact_id}", headers=ADMIN)).json()["payload"]
    assert shown["thumbnail"] == ""
