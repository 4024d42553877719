"""`/_emulator/...`: agent actions for the web page and tests, fault injection, the
recorder, webhook deliveries and run-time settings. No authentication: test tooling only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..agent import AgentError
from ..domain.base import str_or_none
from ..errors import ApiError, RecordInvalid, UnhandledError, json_response
from ..params import Upload, as_dict, cast_bool, cast_int, parse, summarize
from ..views import conversation_json, message_json

if TYPE_CHECKING:
    from ..app import ChatwootEmulator

Handler = Callable[[Request, "ChatwootEmulator"], Awaitable[Response]]


def control(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        emu: ChatwootEmulator = request.app.state.emulator
        try:
            return await handler(request, emu)
        except AgentError as exc:
            return json_response({"error": str(exc)}, 404)
        except ApiError as exc:
            return exc.response()
        except (ValueError, TypeError, RecordInvalid, UnhandledError) as exc:
            # Like MessagesController#create: builder failures become 422 {"error": ...}.
            return json_response({"error": str(exc)}, 422)

    run.__name__ = handler.__name__
    return run


def _ids(request: Request) -> tuple[int, int]:
    account_id = cast_int(request.path_params.get("account_id"))
    display_id = cast_int(request.path_params.get("conversation_id"))
    if account_id is None or display_id is None:
        raise AgentError("bad ids")
    return account_id, display_id


# --- the agent page ---------------------------------------------------------------


async def page(_request: Request) -> Response:
    html = resources.files("ryze.emulator").joinpath("static/agent.html").read_text(encoding="utf-8")
    return HTMLResponse(html)


async def root(_request: Request) -> Response:
    return RedirectResponse("/app", status_code=302)


@control
async def accounts(_request: Request, emu: ChatwootEmulator) -> Response:
    store = emu.state
    return json_response(
        [
            {
                "id": a.id,
                "name": a.name,
                "users": [
                    {"id": uid, "email": store.users[uid].email, "name": store.users[uid].name, "role": role}
                    for uid, role in a.roles.items()
                ],
            }
            for a in store.accounts.values()
        ]
    )


@control
async def conversations(request: Request, emu: ChatwootEmulator) -> Response:
    account_id = cast_int(request.path_params.get("account_id"))
    store = emu.state
    convs = sorted(
        (c for c in store.conversations.values() if c.account_id == account_id),
        key=lambda c: (c.last_activity_at, c.id),
        reverse=True,
    )
    out = []
    for c in convs:
        body = conversation_json(store, emu.base_url(request), c)
        inbox = store.inboxes.get(c.inbox_id)
        body["inbox_name"] = inbox.name if inbox else None
        out.append(body)
    return json_response({"payload": out})


@control
async def messages(request: Request, emu: ChatwootEmulator) -> Response:
    conv = emu.agent.conversation(*_ids(request))
    base = emu.base_url(request)
    return json_response(
        {
            "conversation": conversation_json(emu.state, base, conv),
            "payload": [message_json(emu.state, base, m) for m in emu.state.messages_of(conv)],
        }
    )


@control
async def reply(request: Request, emu: ChatwootEmulator) -> Response:
    account_id, display_id = _ids(request)
    params = await parse(request)
    uploads = params.get("attachments")
    files = (
        [(u.filename, u.data, u.content_type) for u in uploads if isinstance(u, Upload)]
        if isinstance(uploads, list)
        else []
    )
    content = params.get("content")
    msg = emu.agent.reply(
        account_id,
        display_id,
        None if content in (None, "") and files else (None if content is None else str(content)),
        private=bool(cast_bool(params.get("private"))),
        attachments=files,
        user_email=params.get("user_email") or None,
        content_attributes=as_dict(params.get("content_attributes")),  # in_reply_to: a quoted reply
        recorded_audio=str_or_none(params.get("is_recorded_audio")),  # the recordings' file names
    )
    return json_response(message_json(emu.state, emu.base_url(request), msg))


@control
async def start_conversation(request: Request, emu: ChatwootEmulator) -> Response:
    account_id = cast_int(request.path_params.get("account_id"))
    params = await parse(request)
    contact_id, inbox_id = cast_int(params.get("contact_id")), cast_int(params.get("inbox_id"))
    if account_id is None or contact_id is None or inbox_id is None:
        raise AgentError("contact_id and inbox_id are required")
    conv = emu.agent.start_conversation(
        account_id,
        contact_id,
        inbox_id,
        str(params.get("content") or ""),
        user_email=params.get("user_email") or None,
    )
    return json_response(conversation_json(emu.state, emu.base_url(request), conv))


@control
async def delete_message(request: Request, emu: ChatwootEmulator) -> Response:
    account_id, display_id = _ids(request)
    message_id = cast_int(request.path_params.get("message_id")) or 0
    msg = emu.agent.delete(account_id, display_id, message_id)
    return json_response(message_json(emu.state, emu.base_url(request), msg))


@control
async def toggle_status(request: Request, emu: ChatwootEmulator) -> Response:
    account_id, display_id = _ids(request)
    params = await parse(request)
    status = params.get("status") or None
    conv = emu.agent.toggle_status(account_id, display_id, status, params.get("user_email") or None)
    return json_response(conversation_json(emu.state, emu.base_url(request), conv))


@control
async def typing(request: Request, emu: ChatwootEmulator) -> Response:
    account_id, display_id = _ids(request)
    params = await parse(request)
    emu.agent.typing(
        account_id,
        display_id,
        params.get("typing_status") == "on",
        private=bool(cast_bool(params.get("is_private"))),
        user_email=params.get("user_email") or None,
    )
    return json_response({"ok": True})


# --- faults, recorder, webhooks, settings -----------------------------------------------


@control
async def faults(request: Request, emu: ChatwootEmulator) -> Response:
    if request.method == "POST":
        body = await parse(request)
        raw = body.get("_json")
        rules: list[Any] = raw if isinstance(raw, list) else [body]
        added = [emu.faults.add_from_json(dict(r)).to_json() for r in rules]
        return json_response(added if "_json" in body else added[0])
    if request.method == "DELETE":
        emu.faults.clear()
    return json_response([r.to_json() for r in emu.faults.rules])


@control
async def fault(request: Request, emu: ChatwootEmulator) -> Response:
    if not emu.faults.remove(cast_int(request.path_params.get("rule_id")) or 0):
        raise AgentError("no such fault rule")
    return json_response({"ok": True})


@control
async def requests(request: Request, emu: ChatwootEmulator) -> Response:
    if request.method == "DELETE":
        emu.recorder.clear()
        return json_response({"ok": True})
    return json_response([r.to_json() for r in emu.recorder.requests])


@control
async def conformance(_request: Request, emu: ChatwootEmulator) -> Response:
    return json_response({"errors": emu.recorder.conformance_errors()})


@control
async def webhooks(request: Request, emu: ChatwootEmulator) -> Response:
    if request.method == "DELETE":
        emu.webhooks.deliveries.clear()
        return json_response({"ok": True})
    return json_response(
        [
            {
                "event": d.event,
                "url": d.url,
                "delivery_id": d.delivery_id,
                "status": d.status,
                "error": d.error,
                "message_id": d.message_id,
                "duration_ms": d.duration_ms,
                "payload": d.payload,
            }
            for d in emu.webhooks.deliveries
        ]
    )


@control
async def idle(_request: Request, emu: ChatwootEmulator) -> Response:
    await emu.incoming_dispatch_idle()
    return json_response({"ok": True})


@control
async def account_messages(request: Request, emu: ChatwootEmulator) -> Response:
    """Messages of an account with ``id > after_id``, oldest first, with float creation times
    (benchmarks: latency from injection to the message existing here), and for each attachment
    its type, size and SHA-256 (the media benchmark checks the bytes that arrived). Walks the
    id-ordered message table from its newest end, so a poll costs O(new messages), not O(all)."""
    account_id = cast_int(request.path_params.get("account_id"))
    after_id = cast_int(request.query_params.get("after_id")) or 0
    limit = max(1, min(cast_int(request.query_params.get("limit")) or 10_000, 50_000))
    store = emu.state
    newer = []
    for message_id in reversed(store.messages):
        if message_id <= after_id:
            break
        newer.append(store.messages[message_id])
    newer.reverse()
    out = []
    for m in newer:
        if m.account_id != account_id:
            continue
        conv = store.conversations.get(m.conversation_pk)
        row: dict[str, Any] = {
            "id": m.id,
            "conversation_id": conv.display_id if conv else None,
            "inbox_id": m.inbox_id,
            "message_type": m.message_type,
            "source_id": m.source_id,
            "content": m.content,
            "created_at": m.created_at,
        }
        if m.attachments:
            row["attachments"] = [
                {"file_type": a.file_type, "content_type": a.content_type, "file_size": len(a.data),
                 "sha256": hashlib.sha256(a.data).hexdigest()}
                for a in m.attachments
            ]  # fmt: skip
        out.append(row)
        if len(out) >= limit:
            break
    return json_response(out)


async def sink(request: Request) -> Response:
    """A no-op webhook receiver (benchmarks, demos without a bridge)."""
    await request.body()
    return json_response({"ok": True})


@control
async def settings(request: Request, emu: ChatwootEmulator) -> Response:
    if request.method == "POST":
        body: dict[str, Any] = summarize(await parse(request))
        emu.configure(**body)
    return json_response(emu.settings_json())


routes = [
    Route("/", root, methods=["GET"]),
    Route("/app", page, methods=["GET"]),
    Route("/_emulator/accounts", accounts, methods=["GET"]),
    Route("/_emulator/accounts/{account_id}/conversations", conversations, methods=["GET"]),
    Route("/_emulator/accounts/{account_id}/conversations", start_conversation, methods=["POST"]),
    Route("/_emulator/accounts/{account_id}/messages", account_messages, methods=["GET"]),
    Route(
        "/_emulator/accounts/{account_id}/conversations/{conversation_id}/messages", messages, methods=["GET"]
    ),
    Route(
        "/_emulator/accounts/{account_id}/conversations/{conversation_id}/messages", reply, methods=["POST"]
    ),
    Route(
        "/_emulator/accounts/{account_id}/conversations/{conversation_id}/messages/{message_id}",
        delete_message,
        methods=["DELETE"],
    ),
    Route(
        "/_emulator/accounts/{account_id}/conversations/{conversation_id}/toggle_status",
        toggle_status,
        methods=["POST"],
    ),
    Route(
        "/_emulator/accounts/{account_id}/conversations/{conversation_id}/typing", typing, methods=["POST"]
    ),
    Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_emulator/faults/{rule_id}", fault, methods=["DELETE"]),
    Route("/_emulator/requests", requests, methods=["GET", "DELETE"]),
    Route("/_emulator/conformance", conformance, methods=["GET"]),
    Route("/_emulator/webhooks", webhooks, methods=["GET", "DELETE"]),
    Route("/_emulator/idle", idle, methods=["POST"]),
    Route("/_emulator/settings", settings, methods=["GET", "POST"]),
    Route("/_emulator/sink", sink, methods=["POST"]),
]
