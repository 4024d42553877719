"""What the Chatwoot client puts on the wire, seen by a capturing server: JSON bodies, headers,
query strings, cookies, and the per-path URL cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web

from ryze.chatwoot import ChatwootNotFound, ChatwootSessions
from ryze.chatwoot.client import _ROUTE_CACHE_SIZE
from ryze.chatwoot.observe import path_template
from ryze.common.outbound import FetchPolicy
from ryze.common.outbound.policy import LOOPBACK_ALLOW

# The servers under test listen on loopback, which the policy refuses unless allowed.
LOOPBACK_POLICY = FetchPolicy.from_setting(LOOPBACK_ALLOW, setting="test")


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Capture:
    url: str
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    box: list[Capture] = []

    async def record(request: web.Request) -> web.StreamResponse:
        box[0].seen.append(
            Seen(
                request.method,
                request.path,
                request.query_string,
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
            )
        )
        if request.path.endswith("/conversations/404/messages"):
            return web.Response(status=404, body=b"")
        if request.method == "GET":
            return web.json_response({"payload": []})
        resp = web.json_response({"id": 501, "content": "hi", "source_id": "WAID:X", "sender": {"id": 1}})
        resp.set_cookie("_chatwoot_session", "belongs-to-whoever-called-first")
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # A host name, not an IP: aiohttp's default cookie jar ignores cookies from IP addresses, and
    # the cookie test must see what a jar would do with a real Chatwoot host.
    box.append(Capture(f"http://localhost:{port}"))
    try:
        yield box[0]
    finally:
        await runner.cleanup()


@pytest.fixture
async def sessions() -> AsyncIterator[ChatwootSessions]:
    pool = ChatwootSessions(timeout=5.0, policy=LOOPBACK_POLICY)
    yield pool
    await pool.close()


async def test_json_body_is_the_orjson_encoding_with_a_json_content_type(
    capture: Capture, sessions: ChatwootSessions
) -> None:
    cw = sessions.client(capture.url, 3, "tok-a")
    created = await cw.create_message(
        12,
        content="olá *mundo*",
        message_type="incoming",
        source_id="WAID:X",
        content_attributes={"in_reply_to": 7},
    )
    assert created.id == 501 and created.source_id == "WAID:X"
    [seen] = capture.seen
    assert (seen.method, seen.query) == ("POST", "")
    assert seen.path == "/api/v1/accounts/3/conversations/12/messages"
    assert seen.body == orjson.dumps(
        {
            "content": "olá *mundo*",
            "message_type": "incoming",
            "private": False,
            "source_id": "WAID:X",
            "content_attributes": {"in_reply_to": 7},
        }
    )
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-length"] == str(len(seen.body))
    # hyphenated, as Chatwoot's AccessTokenAuthHelper reads it through Rack (HTTP_API_ACCESS_TOKEN):
    # the underscore spelling is dropped by a stock nginx in front of Chatwoot
    assert seen.headers["api-access-token"] == "tok-a"
    assert "api_access_token" not in seen.headers
    assert seen.headers["accept"] == "application/json"


async def test_a_call_without_body_sends_no_content_type_and_params_stay_per_call(
    capture: Capture, sessions: ChatwootSessions
) -> None:
    cw = sessions.client(capture.url, 3, "tok-a")
    await cw.list_messages(12, before=40)
    await cw.list_messages(12)  # same path, cached URL: the first call's query must not stick
    first, second = capture.seen
    assert (first.method, first.query, first.body) == ("GET", "before=40", b"")
    assert "content-type" not in first.headers
    assert (second.path, second.query) == (first.path, "")


async def test_a_cookie_set_for_one_integration_never_rides_with_another(
    capture: Capture, sessions: ChatwootSessions
) -> None:
    # One session per base URL carries every integration on it: a cookie jar would hand
    # integration A's session cookie to integration B's calls.
    a = sessions.client(capture.url, 3, "tok-a")
    b = sessions.client(capture.url, 4, "tok-b")
    await a.create_message(12, content="x", message_type="incoming")
    await b.create_message(13, content="y", message_type="incoming")
    await a.create_message(12, content="z", message_type="incoming")
    assert [s.headers.get("cookie") for s in capture.seen] == [None, None, None]
    assert [s.headers["api-access-token"] for s in capture.seen] == ["tok-a", "tok-b", "tok-a"]


async def test_errors_and_the_request_hook_name_the_path_and_its_template(capture: Capture) -> None:
    calls: list[tuple[str, str, int | None]] = []
    pool = ChatwootSessions(
        timeout=5.0, policy=LOOPBACK_POLICY, on_request=lambda m, t, s, _secs: calls.append((m, t, s))
    )
    try:
        cw = pool.client(capture.url, 3, "tok-a")
        with pytest.raises(ChatwootNotFound) as missing:
            await cw.create_message(404, content="x", message_type="incoming")
        assert missing.value.endpoint == "POST /api/v1/accounts/3/conversations/404/messages"
        await cw.create_message(12, content="x", message_type="incoming")
    finally:
        await pool.close()
    template = "/api/v1/accounts/:id/conversations/:id/messages"
    assert calls == [("POST", template, 404), ("POST", template, 200)]


async def test_the_url_cache_is_bounded_and_every_entry_matches_its_path(sessions: ChatwootSessions) -> None:
    cw = sessions.client("http://cw.example/", 9, "t")
    first = cw._route("/api/v1/accounts/9/conversations/1/messages")
    assert cw._route("/api/v1/accounts/9/conversations/1/messages") is first  # parsed once
    for n in range(2, _ROUTE_CACHE_SIZE + 100):
        path = f"/api/v1/accounts/9/conversations/{n}/messages"
        url, template = cw._route(path)
        assert str(url) == "http://cw.example" + path
        assert template == path_template(path)
        assert len(cw._routes) <= _ROUTE_CACHE_SIZE
    # the oldest entries made room; the newest are still there
    assert "/api/v1/accounts/9/conversations/1/messages" not in cw._routes
    assert f"/api/v1/accounts/9/conversations/{_ROUTE_CACHE_SIZE + 99}/messages" in cw._routes
