"""Auth errors (§2) and inboxes (§3)."""

from __future__ import annotations

import httpx

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, AGENT, Api

NOT_AUTHORIZED = {"error": "You are not authorized to do this action"}
NOT_FOUND = {"error": "Resource could not be found"}


async def test_missing_token_is_devise_401(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{A1}/inboxes")
    assert r.status_code == 401
    assert r.json() == {"errors": ["You need to sign in or sign up before continuing."]}


async def test_bad_token_is_invalid_access_token(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{A1}/inboxes", headers={"api_access_token": "nope"})
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid Access Token"}


async def test_hyphenated_header_spelling_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{A1}/inboxes", headers={"Api-Access-Token": "cw-admin-token"})
    assert r.status_code == 200


async def test_behind_a_stock_nginx_only_the_hyphenated_token_header_gets_through(
    emu: ChatwootEmulator, client: httpx.AsyncClient
) -> None:
    """nginx drops header names with underscores unless ``underscores_in_headers on`` (Chatwoot's
    deployment/nginx_chatwoot.conf sets it; a stock proxy does not). Chatwoot's
    AccessTokenAuthHelper reads HTTP_API_ACCESS_TOKEN, which the hyphenated spelling becomes."""
    emu.configure(drop_underscore_headers=True)
    r = await client.get(f"{A1}/inboxes", headers={"api_access_token": "cw-admin-token"})
    assert r.status_code == 401
    assert r.json() == {"errors": ["You need to sign in or sign up before continuing."]}
    r = await client.get(f"{A1}/inboxes", headers={"Api-Access-Token": "cw-admin-token"})
    assert r.status_code == 200
    emu.configure(drop_underscore_headers=False)
    r = await client.get(f"{A1}/inboxes", headers={"api_access_token": "cw-admin-token"})
    assert r.status_code == 200


async def test_unknown_account_is_404_and_non_member_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/accounts/99/inboxes", headers=ADMIN)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await client.get("/api/v1/accounts/2/inboxes", headers=ADMIN)
    assert r.status_code == 401
    assert r.json() == {"error": "You are not authorized to access this account"}


async def test_unparseable_json_is_rails_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        f"{A1}/inboxes", content=b'{"name": ', headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json() == {"status": 400, "error": "Bad Request"}


async def test_unknown_route_is_rails_404(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{A1}/nothing-here", headers=ADMIN)
    assert r.status_code == 404


async def test_agent_cannot_create_update_or_delete_inboxes_401_never_403(
    client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    body = {"name": "x", "channel": {"type": "api"}}
    for method, path in [
        ("POST", f"{A1}/inboxes"),
        ("PATCH", f"{A1}/inboxes/{inbox['id']}"),
        ("DELETE", f"{A1}/inboxes/{inbox['id']}"),
        ("POST", f"{A1}/inboxes/{inbox['id']}/reset_secret"),
    ]:
        r = await client.request(method, path, json=body, headers=AGENT)
        assert r.status_code == 401, (method, path)
        assert r.json() == NOT_AUTHORIZED


async def test_create_api_inbox_generates_identifiers_and_null_widget_keys(client: httpx.AsyncClient) -> None:
    body = {
        "name": "WhatsApp",
        "channel": {
            "type": "api",
            "webhook_url": "http://127.0.0.1:9/hook",
            "hmac_mandatory": False,
            "additional_attributes": {"agent_reply_time_window": 24},
        },
        "lock_to_single_conversation": True,
    }
    r = await client.post(f"{A1}/inboxes", json=body, headers=ADMIN)
    assert r.status_code == 200
    inbox = r.json()
    assert inbox["channel_type"] == "Channel::Api"
    assert inbox["webhook_url"] == "http://127.0.0.1:9/hook"
    assert inbox["additional_attributes"] == {"agent_reply_time_window": 24}
    assert inbox["lock_to_single_conversation"] is True
    assert inbox["allow_messages_after_resolved"] is True
    for key in ("inbox_identifier", "hmac_token", "secret"):
        assert isinstance(inbox[key], str) and len(inbox[key]) >= 16
    assert inbox["secret"] != inbox["hmac_token"]
    for key in (
        "website_url",
        "widget_color",
        "website_token",
        "web_widget_script",
        "reply_time",
        "allowed_domains",
        "welcome_title",
        "messaging_service_sid",
        "phone_number",
    ):
        assert key in inbox and inbox[key] is None, key
    assert inbox["provider"] is None and inbox["callback_webhook_url"] is None
    assert len(inbox["working_hours"]) == 7


async def test_inbox_list_is_ordered_by_lower_name_and_show_works(
    client: httpx.AsyncClient, api: Api
) -> None:
    for name in ("beta", "Alpha", "charlie"):
        await api.inbox(name=name)
    r = await client.get(f"{A1}/inboxes", headers=ADMIN)
    assert [i["name"] for i in r.json()["payload"]] == ["Alpha", "beta", "charlie"]
    first = r.json()["payload"][0]
    r = await client.get(f"{A1}/inboxes/{first['id']}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    r = await client.get(f"{A1}/inboxes/999", headers=ADMIN)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_agent_without_membership_cannot_see_inbox(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    r = await client.get(f"{A1}/inboxes/{inbox['id']}", headers=AGENT)
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await client.get(f"{A1}/inboxes", headers=AGENT)
    assert r.json() == {"payload": []}


async def test_update_inbox_with_patch_and_put(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    r = await client.patch(
        f"{A1}/inboxes/{inbox['id']}",
        json={"name": "Renamed", "channel": {"type": "ignored", "webhook_url": "http://127.0.0.1:1/new"}},
        headers=ADMIN,
    )
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["webhook_url"]) == ("Renamed", "http://127.0.0.1:1/new")
    r = await client.put(
        f"{A1}/inboxes/{inbox['id']}", json={"lock_to_single_conversation": True}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["lock_to_single_conversation"] is True
    r = await client.patch(f"{A1}/inboxes/{inbox['id']}", json={"name": ""}, headers=ADMIN)
    assert r.status_code == 422
    assert r.json() == {"message": "Name can't be blank", "attributes": ["name"]}


async def test_delete_inbox_is_asynchronous_message(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    r = await client.delete(f"{A1}/inboxes/{inbox['id']}", headers=ADMIN)
    assert r.status_code == 200
    assert r.json() == {"message": "Your inbox deletion request will be processed in some time."}
    await emu.jobs_idle()  # DeleteObjectJob has run
    r = await client.get(f"{A1}/inboxes/{inbox['id']}", headers=ADMIN)
    assert r.status_code == 404


async def test_reset_secret_changes_only_the_secret(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    r = await client.post(f"{A1}/inboxes/{inbox['id']}/reset_secret", headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["secret"] != inbox["secret"]
    assert r.json()["hmac_token"] == inbox["hmac_token"]


async def test_inbox_validation_errors(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{A1}/inboxes", json={"channel": {"type": "api"}}, headers=ADMIN)
    assert r.status_code == 422
    assert r.json() == {"message": "Name can't be blank", "attributes": ["name"]}
    r = await client.post(
        f"{A1}/inboxes", json={"name": "x", "channel": {"type": "carrier-pigeon"}}, headers=ADMIN
    )
    assert r.status_code == 422 and r.json()["message"] == "Channel must exist"
    # No channel at all is a NoMethodError in Rails: a 500, not a validation error.
    r = await client.post(f"{A1}/inboxes", json={"name": "x"}, headers=ADMIN)
    assert r.status_code == 500
    assert r.json() == {"status": 500, "error": "Internal Server Error"}


async def test_inbox_limit_is_402(emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api) -> None:
    emu.configure(inbox_limit=1)
    await api.inbox()
    r = await client.post(f"{A1}/inboxes", json={"name": "two", "channel": {"type": "api"}}, headers=ADMIN)
    assert r.status_code == 402
    assert r.json() == {"error": "Account limit exceeded. Upgrade to a higher plan"}


async def test_inbox_members_give_agents_access(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    r = await client.post(
        f"{A1}/inbox_members", json={"inbox_id": inbox["id"], "user_ids": [2]}, headers=AGENT
    )
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await client.post(
        f"{A1}/inbox_members", json={"inbox_id": inbox["id"], "user_ids": [2]}, headers=ADMIN
    )
    assert [u["email"] for u in r.json()["payload"]] == ["agent@acme.test"]
    r = await client.get(f"{A1}/inboxes/{inbox['id']}", headers=AGENT)
    assert r.status_code == 200
    assert "secret" not in r.json() and "hmac_token" not in r.json()  # admin-only keys
    r = await client.get(f"{A1}/inbox_members/{inbox['id']}", headers=AGENT)
    assert [u["id"] for u in r.json()["payload"]] == [2]
    r = await client.request(
        "DELETE", f"{A1}/inbox_members", json={"inbox_id": inbox["id"], "user_ids": [2]}, headers=ADMIN
    )
    assert r.status_code == 200
    assert (await client.get(f"{A1}/inboxes/{inbox['id']}", headers=AGENT)).status_code == 401
