"""Messages of a conversation (reference §6)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from ..errors import ApiError, json_response
from ..params import cast_int
from ..views import agent_json, contact_push, iso, message_json
from .base import Ctx, endpoint

BASE = "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"


@endpoint
async def index(ctx: Ctx) -> Response:
    """MessageFinder: latest 20; before → 20 older; after → 100 newer; both → up to 1000."""
    conv = ctx.conversation()
    q = ctx.request.query_params
    before = cast_int(q.get("before"))
    after = cast_int(q.get("after"))
    msgs = ctx.store.messages_of(conv)
    if after is not None and before is not None:
        rows = [m for m in msgs if after <= m.id < before][:1000]
    elif after is not None:
        rows = [m for m in msgs if m.id > after][:100]
    elif before is not None:
        rows = [m for m in msgs if m.id < before][-20:]
    else:
        rows = msgs[-20:]
    meta = {
        "labels": conv.labels,
        "additional_attributes": conv.additional_attributes,
        "contact": contact_push(ctx.store.contacts[conv.contact_id]),
        "agent_last_seen_at": iso(conv.agent_last_seen_at),
        "assignee_last_seen_at": iso(conv.assignee_last_seen_at),
    }
    if conv.assignee_id is not None and conv.assignee_id in ctx.store.users:
        meta["assignee"] = agent_json(ctx.store.users[conv.assignee_id], "agent")
    return json_response({"meta": meta, "payload": [message_json(ctx.store, ctx.base_url, m) for m in rows]})


@endpoint
async def create(ctx: Ctx) -> Response:
    conv = ctx.conversation()
    try:
        msg = ctx.cw.create_message(conv, ctx.params, ctx.caller.user)
    except Exception as exc:
        # MessagesController#create rescues StandardError into 422 {"error": message}.
        raise ApiError(422, {"error": str(exc)}) from None
    echo = ctx.params.get("echo_id")
    return json_response(message_json(ctx.store, ctx.base_url, msg, None if echo is None else str(echo)))


@endpoint
async def destroy(ctx: Ctx) -> Response:
    conv = ctx.conversation()
    msg = ctx.cw.delete_message(ctx.message(conv))
    return json_response(message_json(ctx.store, ctx.base_url, msg))


@endpoint
async def update(ctx: Ctx) -> Response:
    # Every emulated inbox is an API inbox, so the 403 for other channels never applies.
    conv = ctx.conversation()
    msg = ctx.message(conv)
    ctx.cw.update_message_status(msg, ctx.params.get("status"), ctx.params.get("external_error"))
    return json_response(message_json(ctx.store, ctx.base_url, msg))


routes = [
    Route(BASE, index, methods=["GET"]),
    Route(BASE, create, methods=["POST"]),
    Route(BASE + "/{message_id}", destroy, methods=["DELETE"]),
    Route(BASE + "/{message_id}", update, methods=["PATCH", "PUT"]),
]
