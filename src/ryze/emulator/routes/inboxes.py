"""`/api/v1/accounts/{account_id}/inboxes` (reference §3)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..errors import json_response
from ..params import cast_int
from ..views import agent_json, inbox_json
from .base import Ctx, endpoint

BASE = "/api/v1/accounts/{account_id}/inboxes"


@endpoint
async def index(ctx: Ctx) -> Response:
    inboxes = [i for i in ctx.store.account_inboxes(ctx.caller.account.id) if ctx.caller.can_access(i)]
    inboxes.sort(key=lambda i: (i.name.lower(), i.id))
    return json_response({"payload": [inbox_json(i, admin=ctx.caller.admin) for i in inboxes]})


@endpoint
async def create(ctx: Ctx) -> Response:
    ctx.caller.require_admin()
    inbox = ctx.cw.create_inbox(ctx.caller.account, ctx.params)
    return json_response(inbox_json(inbox, admin=True))


@endpoint
async def show(ctx: Ctx) -> Response:
    inbox = ctx.inbox()
    if not ctx.caller.can_access(inbox):
        raise errors.forbidden()
    return json_response(inbox_json(inbox, admin=ctx.caller.admin))


@endpoint
async def update(ctx: Ctx) -> Response:
    inbox = ctx.inbox()
    ctx.caller.require_admin()
    ctx.cw.update_inbox(inbox, ctx.params)
    return json_response(inbox_json(inbox, admin=True))


@endpoint
async def destroy(ctx: Ctx) -> Response:
    inbox = ctx.inbox()
    ctx.caller.require_admin()
    # InboxesController#destroy: `DeleteObjectJob.perform_later(@inbox, ...)`, nothing deleted yet.
    inbox_id = inbox.id
    ctx.emu.jobs.enqueue(f"delete-inbox-{inbox_id}", lambda: ctx.cw.delete_inbox(inbox_id))
    return json_response({"message": "Your inbox deletion request will be processed in some time."})


@endpoint
async def reset_secret(ctx: Ctx) -> Response:
    """``app/controllers/api/v1/accounts/inboxes_controller.rb`` #reset_secret (v4.13+, admins)."""
    if not ctx.cw.settings.webhook_signing:
        raise errors.route_not_found()  # the route does not exist before 4.13
    inbox = ctx.inbox()
    ctx.caller.require_admin()
    ctx.cw.reset_secret(inbox)
    return json_response(inbox_json(inbox, admin=True))


def _members_json(ctx: Ctx, member_ids: set[int]) -> Response:
    account = ctx.caller.account
    users = [ctx.store.users[uid] for uid in sorted(member_ids) if uid in ctx.store.users]
    return json_response({"payload": [agent_json(u, account.roles.get(u.id, "agent")) for u in users]})


@endpoint
async def members(ctx: Ctx) -> Response:
    inbox = ctx.inbox()
    if not ctx.caller.can_access(inbox):
        raise errors.forbidden()
    return _members_json(ctx, inbox.members)


@endpoint
async def change_members(ctx: Ctx) -> Response:
    """InboxMembersController create (add), update (replace) and destroy (remove)."""
    ctx.caller.require_admin()
    inbox = ctx.inbox(cast_int(ctx.params.get("inbox_id")) or 0)
    raw = ctx.params.get("user_ids")
    ids = {i for i in (cast_int(v) for v in (raw if isinstance(raw, list) else [raw])) if i is not None}
    if any(i not in ctx.caller.account.roles for i in ids):
        raise errors.not_found()
    method = ctx.request.method
    if method == "POST":
        inbox.members |= ids
    elif method == "PATCH":
        inbox.members = set(ids)
    else:
        inbox.members -= ids
        return Response(b"", status_code=200)
    return _members_json(ctx, inbox.members)


routes = [
    Route(BASE, index, methods=["GET"]),
    Route(BASE, create, methods=["POST"]),
    Route(BASE + "/{inbox_id}", show, methods=["GET"]),
    Route(BASE + "/{inbox_id}", update, methods=["PATCH", "PUT"]),
    Route(BASE + "/{inbox_id}", destroy, methods=["DELETE"]),
    Route(BASE + "/{inbox_id}/reset_secret", reset_secret, methods=["POST"]),
    Route("/api/v1/accounts/{account_id}/inbox_members/{inbox_id}", members, methods=["GET"]),
    Route("/api/v1/accounts/{account_id}/inbox_members", change_members, methods=["POST", "PATCH", "DELETE"]),
]
