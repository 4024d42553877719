"""Typed Chatwoot application-API client.

One :class:`ChatwootSessions` owns one ``aiohttp.ClientSession`` per Chatwoot base URL (connection
reuse across every integration on that Chatwoot); a :class:`ChatwootClient` is a cheap view bound
to a base URL, an account and a token. Errors come back as the typed exceptions of
:mod:`ryze.chatwoot.errors`, carrying status, raw body and ``"METHOD /path"``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict
from pydantic import BaseModel
from yarl import URL

from ryze.chatwoot.errors import (
    ChatwootError,
    ChatwootNotFound,
    ChatwootRefused,
    ChatwootTimeout,
    ChatwootUnreachable,
    error_for,
)
from ryze.chatwoot.models import (
    Attachment,
    Contact,
    Conversation,
    ConversationSummary,
    Inbox,
    ListedMessage,
    Message,
    Profile,
    ServerInfo,
    ToggleStatusResult,
)
from ryze.chatwoot.observe import RequestHook, path_template
from ryze.common.outbound import FetchPolicy, InvalidURL, OutboundError, PolicyResolver, TargetRefused

M = TypeVar("M", bound=BaseModel)
ConversationStatus = Literal["open", "resolved", "pending", "snoozed"]

# Parsed URLs and metric templates kept per client (one client per integration), by path. The
# bridge posts to the same conversation paths over and over; yarl's own process-wide cache is too
# small for every integration's conversations, and a miss (parse + encode, then the template)
# costs ~3 µs against ~0.1 µs for the lookup. An entry is ~0.75 KiB: 64 of them (= the default
# BRIDGE_MAX_CHAT_LANES, the chats an integration relays at once) bound it to ~48 KiB for a busy
# integration and nothing for an idle one. Oldest entry out first.
_ROUTE_CACHE_SIZE = 64


class ChatwootSessions:
    """One shared ``aiohttp.ClientSession`` per base URL, created lazily, closed together."""

    def __init__(
        self,
        *,
        limit_per_host: int = 64,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        on_request: RequestHook | None = None,
        policy: FetchPolicy,
        resolver: Callable[[], AbstractResolver] | None = None,
    ) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._resolver = resolver  # the DNS the policy wraps; None = the system's (tests inject one)
        # Every connection to a base URL resolves through the policy and goes to the address it
        # checked (a base URL is whatever an account token holder typed: see docs/security.md).
        self.policy = policy
        self.on_request = on_request  # handed to every client (metrics); None costs nothing
        self._limit = limit_per_host
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def session(self, base_url: str) -> aiohttp.ClientSession:
        key = base_url.rstrip("/")
        existing = self._sessions.get(key)
        if existing is not None and not existing.closed:
            return existing
        connector = aiohttp.TCPConnector(
            limit=self._limit * 4,
            limit_per_host=self._limit,
            ttl_dns_cache=300,  # only answers the policy accepted are cached
            resolver=PolicyResolver(self.policy, self._resolver() if self._resolver else None),
        )
        created = aiohttp.ClientSession(
            connector=connector,
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            timeout=aiohttp.ClientTimeout(total=self.timeout, connect=self.connect_timeout),
            # The API authenticates every call by its Api-Access-Token header, and this one session
            # carries every integration (token, account) on the base URL: a cookie Chatwoot set for
            # one must never ride along with another's calls. No jar also means no per-request
            # cookie filtering.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # no proxy from the environment: it would connect for us, unchecked
        )
        self._sessions[key] = created
        return created

    def client(
        self, base_url: str, account_id: int, token: str, *, timeout: float | None = None
    ) -> ChatwootClient:
        return ChatwootClient(
            self.session(base_url),
            base_url,
            account_id,
            token,
            timeout=timeout or self.timeout,
            on_request=self.on_request,
            policy=self.policy,
        )

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


# Chatwoot's answers are small JSON documents (a page of conversations is a few hundred KiB). A
# base URL can point at any server, and an endless or decompression-bomb answer must not grow the
# bridge's memory for the whole call time-out.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


async def _read_capped(resp: aiohttp.ClientResponse, method: str, path: str) -> bytes:
    if resp.content_length is not None and "Content-Encoding" not in resp.headers:
        if resp.content_length > MAX_RESPONSE_BYTES:
            raise _too_large(method, path)
        return await resp.read()  # the common case, one call: the length is what arrives
    buffer = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buffer += chunk
        if len(buffer) > MAX_RESPONSE_BYTES:
            raise _too_large(method, path)
    return bytes(buffer)


def _too_large(method: str, path: str) -> ChatwootError:
    endpoint = f"{method} {path}"
    return ChatwootError(
        f"Chatwoot's answer to {endpoint} is larger than {MAX_RESPONSE_BYTES} bytes", endpoint=endpoint
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    return None


class ChatwootClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        account_id: int,
        token: str,
        *,
        timeout: float = 15.0,
        on_request: RequestHook | None = None,
        policy: FetchPolicy,
    ) -> None:
        self._session = session
        # An IP literal never reaches the resolver (aiohttp dials it as is), and a refused name is
        # refused without a lookup: both are judged once here, for every call of this client.
        self._refused: TargetRefused | None = None
        try:
            policy.check_resolved(URL(base_url).raw_host or "", ())
        except TargetRefused as exc:
            self._refused = exc
        except InvalidURL as exc:  # no host at all: refused like an address that cannot be judged
            self._refused = TargetRefused(f"has no valid host ({exc})", setting=policy.setting)
        self._on_request = on_request
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        # Built once: aiohttp merges them into a fresh CIMultiDict per request anyway, and a
        # CIMultiDict given to it is not converted again. Bodies are encoded here with orjson
        # (bytes, straight to the socket) rather than through aiohttp's ``json=``, which wraps
        # the session's str serializer and encodes the result again.
        # The hyphenated spelling: Rack turns it into HTTP_API_ACCESS_TOKEN, which Chatwoot's
        # AccessTokenAuthHelper reads (app/controllers/concerns/access_token_auth_helper.rb), and
        # unlike ``api_access_token`` it survives a stock nginx (``underscores_in_headers off``).
        self._headers: CIMultiDict[str] = CIMultiDict(
            {"Api-Access-Token": token, "Accept": "application/json"}
        )
        self._json_headers: CIMultiDict[str] = CIMultiDict(self._headers)
        self._json_headers["Content-Type"] = "application/json"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._routes: dict[str, tuple[URL, str]] = {}

    # ------------------------------------------------------------------ plumbing

    def _path(self, suffix: str) -> str:
        return f"/api/v1/accounts/{self.account_id}{suffix}"

    def _route(self, path: str) -> tuple[URL, str]:
        """The parsed URL of ``path`` and its metric template (see ``_ROUTE_CACHE_SIZE``)."""
        routes = self._routes
        route = routes.get(path)
        if route is None:
            if len(routes) >= _ROUTE_CACHE_SIZE:
                del routes[next(iter(routes))]  # dicts keep insertion order: the oldest entry
            route = routes[path] = (URL(self.base_url + path), path_template(path))
        return route

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: aiohttp.FormData | None = None,
        params: Mapping[str, str] | None = None,
        empty_404: bool = False,
    ) -> Any:
        url, template = self._route(path)
        if self._refused is not None:
            raise ChatwootRefused(str(self._refused), endpoint=f"{method} {path}")
        data: aiohttp.FormData | bytes | None = form
        headers = self._headers
        if form is None and json_body is not None:
            data, headers = orjson.dumps(json_body), self._json_headers
        started = time.perf_counter()
        status: int | None = None  # stays None when no HTTP answer arrives (time-out, unreachable)
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                raw = await _read_capped(resp, method, path)
                status = resp.status  # after the body: a time-out while reading it counts as no answer
                if status >= 400:
                    endpoint = f"{method} {path}"
                    body = raw.decode(errors="replace")
                    if empty_404 and status == 404:
                        raise ChatwootNotFound(404, body, endpoint=endpoint)
                    raise error_for(
                        status,
                        body,
                        endpoint=endpoint,
                        retry_after=_retry_after(resp.headers.get("Retry-After")),
                    )
                if not raw:
                    return None
                try:
                    return orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    endpoint = f"{method} {path}"
                    raise ChatwootError(
                        f"Chatwoot answered non-JSON to {endpoint}",
                        endpoint=endpoint,
                        body=raw[:500].decode(errors="replace"),
                    ) from exc
        except OutboundError as exc:  # raised by the PolicyResolver while connecting
            raise ChatwootRefused(str(exc), endpoint=f"{method} {path}") from exc
        except TimeoutError as exc:
            endpoint = f"{method} {path}"
            raise ChatwootTimeout(f"Chatwoot did not answer {endpoint} in time", endpoint=endpoint) from exc
        except aiohttp.ClientError as exc:
            endpoint = f"{method} {path}"
            if isinstance(exc.__cause__, OutboundError):
                raise ChatwootRefused(str(exc.__cause__), endpoint=endpoint) from exc
            raise ChatwootUnreachable(
                f"Chatwoot unreachable ({endpoint}): {exc}", endpoint=endpoint, body=str(exc)
            ) from exc
        finally:
            if self._on_request is not None:
                self._on_request(method, template, status, time.perf_counter() - started)

    @staticmethod
    def _model(model: type[M], data: Any) -> M:
        return model.model_validate(data)

    # ------------------------------------------------------------------ inboxes

    async def create_api_inbox(
        self, name: str, webhook_url: str, *, reply_time_window_hours: int = 24
    ) -> Inbox:
        body = {
            "name": name,
            "channel": {
                "type": "api",
                "webhook_url": webhook_url,
                "additional_attributes": {"agent_reply_time_window": reply_time_window_hours},
            },
        }
        return self._model(Inbox, await self._request("POST", self._path("/inboxes"), json_body=body))

    async def show_inbox(self, inbox_id: int) -> Inbox:
        return self._model(Inbox, await self._request("GET", self._path(f"/inboxes/{inbox_id}")))

    async def list_inboxes(self) -> list[Inbox]:
        data = await self._request("GET", self._path("/inboxes"))
        return [Inbox.model_validate(item) for item in (data or {}).get("payload", [])]

    async def update_inbox(
        self, inbox_id: int, *, name: str | None = None, webhook_url: str | None = None
    ) -> Inbox:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if webhook_url is not None:
            body["channel"] = {"webhook_url": webhook_url}
        return self._model(
            Inbox, await self._request("PATCH", self._path(f"/inboxes/{inbox_id}"), json_body=body)
        )

    async def delete_inbox(self, inbox_id: int) -> None:
        await self._request("DELETE", self._path(f"/inboxes/{inbox_id}"))

    # ------------------------------------------------------------------ the token and the server

    async def profile(self) -> Profile:
        """``GET /api/v1/profile`` (ProfilesController#show): the token's user and its role in each
        account. Not account-scoped, so a token that is not a member of the account still gets it."""
        return self._model(Profile, await self._request("GET", "/api/v1/profile"))

    async def server_info(self) -> ServerInfo:
        """``GET /api`` (ApiController#index, public): the running Chatwoot's version."""
        return self._model(ServerInfo, await self._request("GET", "/api"))

    # ------------------------------------------------------------------ contacts

    async def create_contact(
        self,
        *,
        name: str | None,
        identifier: str | None = None,
        phone_number: str | None = None,
        inbox_id: int | None = None,
        source_id: str | None = None,
        additional_attributes: dict[str, Any] | None = None,
    ) -> Contact:
        body: dict[str, Any] = {}
        for key, value in (
            ("name", name),
            ("identifier", identifier),
            ("phone_number", phone_number),
            ("inbox_id", inbox_id),
            ("source_id", source_id),
            ("additional_attributes", additional_attributes),
        ):
            if value is not None:
                body[key] = value
        data = await self._request("POST", self._path("/contacts"), json_body=body)
        payload = (data or {}).get("payload", {})
        return self._model(Contact, payload.get("contact", payload))

    async def update_contact(self, contact_id: int, **fields: Any) -> Contact:
        data = await self._request("PATCH", self._path(f"/contacts/{contact_id}"), json_body=fields)
        return self._model(Contact, (data or {}).get("payload", data))

    async def show_contact(self, contact_id: int) -> Contact:
        data = await self._request("GET", self._path(f"/contacts/{contact_id}"))
        return self._model(Contact, (data or {}).get("payload", data))

    async def filter_contacts(
        self, attribute_key: str, values: list[str], *, operator: str = "equal_to"
    ) -> list[Contact]:
        # one condition: query_operator omitted (Chatwoot wants null on the last; swagger allows only AND/OR)
        body = {
            "payload": [
                {
                    "attribute_key": attribute_key,
                    "filter_operator": operator,
                    "values": values,
                }
            ]
        }
        data = await self._request("POST", self._path("/contacts/filter"), json_body=body)
        return [Contact.model_validate(item) for item in (data or {}).get("payload", [])]

    async def create_contact_inbox(self, contact_id: int, inbox_id: int, source_id: str) -> str:
        body = {"inbox_id": inbox_id, "source_id": source_id}
        data = await self._request(
            "POST", self._path(f"/contacts/{contact_id}/contact_inboxes"), json_body=body
        )
        value = (data or {}).get("source_id")
        return str(value) if value is not None else source_id

    async def find_contact_by_source(self, inbox_id: int, source_id: str) -> Contact | None:
        """``POST contact_inboxes/filter``: the owner of ``(inbox_id, source_id)``, or None (empty 404)."""
        try:
            data = await self._request(
                "POST",
                self._path("/contact_inboxes/filter"),
                json_body={"inbox_id": inbox_id, "source_id": source_id},
                empty_404=True,
            )
        except ChatwootNotFound as exc:
            if exc.body.strip():
                raise  # a non-empty 404 means the account (or route) is gone, not "no such contact"
            return None
        return self._model(Contact, data)

    async def set_contact_avatar(self, contact_id: int, picture: Attachment) -> Contact:
        """The file itself, not ``avatar_url``: Chatwoot would download an ``avatar_url`` later
        through SafeFetch (``Avatar::AvatarFromUrlJob``), which refuses RyzeAPI's private address
        and could not send the bridge token anyway; ``ContactsController#update`` assigns a
        multipart ``avatar`` (``permitted_params``) to the contact's ActiveStorage attachment."""
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("avatar", picture.data, filename=picture.filename, content_type=picture.content_type)
        data = await self._request("PATCH", self._path(f"/contacts/{contact_id}"), form=form)
        return self._model(Contact, (data or {}).get("payload", data))

    async def merge_contacts(self, base_contact_id: int, mergee_contact_id: int) -> Contact:
        body = {"base_contact_id": base_contact_id, "mergee_contact_id": mergee_contact_id}
        data = await self._request("POST", self._path("/actions/contact_merge"), json_body=body)
        return self._model(Contact, data)

    async def contact_conversations(self, contact_id: int) -> list[Conversation]:
        data = await self._request("GET", self._path(f"/contacts/{contact_id}/conversations"))
        return [Conversation.model_validate(item) for item in (data or {}).get("payload", [])]

    # ------------------------------------------------------------------ conversations

    async def create_conversation(
        self,
        *,
        inbox_id: int,
        contact_id: int,
        source_id: str,
        status: ConversationStatus | None = None,
        additional_attributes: dict[str, Any] | None = None,
    ) -> Conversation:
        body: dict[str, Any] = {"inbox_id": inbox_id, "contact_id": contact_id, "source_id": source_id}
        if status is not None:
            body["status"] = status
        if additional_attributes:
            body["additional_attributes"] = additional_attributes
        return self._model(
            Conversation, await self._request("POST", self._path("/conversations"), json_body=body)
        )

    async def show_conversation(self, conversation_id: int) -> Conversation:
        return self._model(
            Conversation, await self._request("GET", self._path(f"/conversations/{conversation_id}"))
        )

    async def toggle_status(self, conversation_id: int, status: ConversationStatus) -> ToggleStatusResult:
        data = await self._request(
            "POST",
            self._path(f"/conversations/{conversation_id}/toggle_status"),
            json_body={"status": status},
        )
        return self._model(ToggleStatusResult, (data or {}).get("payload", {}))

    async def toggle_typing(self, conversation_id: int, on: bool) -> None:
        await self._request(
            "POST",
            self._path(f"/conversations/{conversation_id}/toggle_typing_status"),
            json_body={"typing_status": "on" if on else "off", "is_private": False},
        )

    # ------------------------------------------------------------------ messages

    async def create_message(
        self,
        conversation_id: int,
        *,
        content: str | None,
        message_type: Literal["incoming", "outgoing", "activity"],
        private: bool = False,
        source_id: str | None = None,
        content_attributes: dict[str, Any] | None = None,
        attachments: list[Attachment] | None = None,
        is_voice_message: bool = False,
    ) -> Message:
        path = self._path(f"/conversations/{conversation_id}/messages")
        if attachments:
            # quote_fields=False: aiohttp would otherwise percent-encode the file name ("a b.pdf" →
            # "a%20b.pdf"), and Rack keeps the filename parameter as sent (Rack::Multipart::Parser).
            form = aiohttp.FormData(quote_fields=False)
            if content:
                form.add_field("content", content)
            form.add_field("message_type", message_type)
            form.add_field("private", "true" if private else "false")
            if source_id:
                form.add_field("source_id", source_id)
            if content_attributes:
                form.add_field("content_attributes", json.dumps(content_attributes))
            if is_voice_message:  # audio attachments get meta.is_voice_message (a voice note)
                form.add_field("is_voice_message", "true")
            for item in attachments:
                form.add_field(
                    "attachments[]", item.data, filename=item.filename, content_type=item.content_type
                )
            return self._model(Message, await self._request("POST", path, form=form))
        body: dict[str, Any] = {"content": content, "message_type": message_type, "private": private}
        if source_id:
            body["source_id"] = source_id
        if content_attributes:
            body["content_attributes"] = content_attributes
        return self._model(Message, await self._request("POST", path, json_body=body))

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Message]:
        params: dict[str, str] = {}
        if before is not None:
            params["before"] = str(before)
        if after is not None:
            params["after"] = str(after)
        data = await self._request(
            "GET", self._path(f"/conversations/{conversation_id}/messages"), params=params or None
        )
        return [Message.model_validate(item) for item in (data or {}).get("payload", [])]

    async def list_messages_detailed(
        self, conversation_id: int, *, before: int | None = None
    ) -> list[ListedMessage]:
        """``list_messages`` with each message's sender and attachments (the catch-up sweep)."""
        params = {"before": str(before)} if before is not None else None
        data = await self._request(
            "GET", self._path(f"/conversations/{conversation_id}/messages"), params=params
        )
        return [ListedMessage.model_validate(item) for item in (data or {}).get("payload", [])]

    async def list_conversations(self, inbox_id: int, *, page: int) -> list[ConversationSummary]:
        """One page (25) of the inbox's conversations of every status, latest activity first
        (app/finders/conversation_finder.rb: ``status=all``; the default sort is
        ``last_activity_at desc``)."""
        params = {"inbox_id": str(inbox_id), "status": "all", "page": str(page)}
        data = await self._request("GET", self._path("/conversations"), params=params)
        rows = ((data or {}).get("data") or {}).get("payload", [])
        return [ConversationSummary.model_validate(item) for item in rows]

    async def update_message_status(
        self,
        conversation_id: int,
        message_id: int,
        status: Literal["sent", "delivered", "read", "failed"],
        *,
        external_error: str | None = None,
    ) -> Message:
        body: dict[str, Any] = {"status": status}
        if external_error is not None:
            body["external_error"] = external_error
        data = await self._request(
            "PATCH", self._path(f"/conversations/{conversation_id}/messages/{message_id}"), json_body=body
        )
        return self._model(Message, data)

    async def delete_message(self, conversation_id: int, message_id: int) -> None:
        await self._request("DELETE", self._path(f"/conversations/{conversation_id}/messages/{message_id}"))
