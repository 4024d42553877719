"""Conversations (reference §5). `{conversation_id}` in paths is the per-account display_id."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from ..errors import json_response
from ..params import cast_int
from ..views import conversation_json, iso
from .base import Ctx, endpoint

BASE = "/api/v1/accounts/{account_id}/conversations"
PER_PAGE = 25


@endpoint
async def index(ctx: Ctx) -> Response:
    """ConversationFinder: status defaults to open ("all" for every status), 25 per page."""
    q = ctx.request.query_params
    status = q.get("status") or "open"
    inbox_id = cast_int(q.get("inbox_id"))
    assignee_type = q.get("assignee_type")
    user_id = ctx.caller.user.id
    convs = [
        c
        for c in ctx.store.account_conversations(ctx.caller.account.id)
        if ctx.caller.can_access(ctx.store.inboxes[c.inbox_id])
        and (inbox_id is None or c.inbox_id == inbox_id)
        and (status == "all" or c.status == status)
    ]
    counts = {
        "mine_count": sum(1 for c in convs if c.assignee_id == user_id),
        "unassigned_count": sum(1 for c in convs if c.assignee_id is None),
        "assigned_count": sum(1 for c in convs if c.assignee_id is not None),
        "all_count": len(convs),
    }
    if assignee_type == "me":
        convs = [c for c in convs if c.assignee_id == user_id]
    elif assignee_type == "unassigned":
        convs = [c for c in convs if c.assignee_id is None]
    elif assignee_type == "assigned":
        convs = [c for c in convs if c.assignee_id is not None]
    convs.sort(key=lambda c: (c.last_activity_at, c.id), reverse=True)
    page = max(cast_int(q.get("page")) or 1, 1)
    rows = convs[(page - 1) * PER_PAGE : page * PER_PAGE]
    return json_response(
        {"data": {"meta": counts, "payload": [conversation_json(ctx.store, ctx.base_url, c) for c in rows]}}
    )


@endpoint
async def create(ctx: Ctx) -> Response:
    conv, _created = ctx.cw.create_conversation(
        ctx.caller.account, ctx.params, ctx.caller.user, ctx.caller.can_access
    )
    return json_response(conversation_json(ctx.store, ctx.base_url, conv))


@endpoint
async def show(ctx: Ctx) -> Response:
    return json_response(conversation_json(ctx.store, ctx.base_url, ctx.conversation()))


@endpoint
async def toggle_status(ctx: Ctx) -> Response:
    conv = ctx.conversation()
    success = ctx.cw.toggle_status(
        conv, ctx.params.get("status"), ctx.params.get("snoozed_until"), ctx.caller.user, ctx.caller.role
    )
    return json_response(
        {
            "meta": {},
            "payload": {
                "success": success,
                "conversation_id": conv.display_id,
                "current_status": conv.status,
                "snoozed_until": iso(conv.snoozed_until),
            },
        }
    )


@endpoint
async def toggle_typing_status(ctx: Ctx) -> Response:
    conv = ctx.conversation()
    ctx.cw.set_typing(conv, ctx.caller.user, ctx.params.get("typing_status"), ctx.params.get("is_private"))
    return Response(b"", status_code=200)  # `head :ok`


routes = [
    Route(BASE, index, methods=["GET"]),
    Route(BASE, create, methods=["POST"]),
    Route(BASE + "/{conversation_id}", show, methods=["GET"]),
    Route(BASE + "/{conversation_id}/toggle_status", toggle_status, methods=["POST"]),
    Route(BASE + "/{conversation_id}/toggle_typing_status", toggle_typing_status, methods=["POST"]),
]
