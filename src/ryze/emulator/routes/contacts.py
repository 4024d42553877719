"""Contacts and contact_inboxes (reference §4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..errors import ApiError, json_response
from ..params import cast_bool, cast_int
from ..state import Contact
from ..views import contact_json, conversation_json, inbox_brief, inbox_json, inbox_record
from .base import Ctx, endpoint

BASE = "/api/v1/accounts/{account_id}/contacts"
PER_PAGE = 15

_STRING_OPS = ("equal_to", "not_equal_to", "contains", "does_not_contain")
_OPERATORS: dict[str, tuple[str, ...]] = {
    "name": _STRING_OPS,
    "email": _STRING_OPS,
    "phone_number": (*_STRING_OPS, "starts_with"),
    "identifier": ("equal_to", "not_equal_to"),
    "country_code": ("equal_to", "not_equal_to"),
    "city": _STRING_OPS,
    "company_name": _STRING_OPS,
    "blocked": ("equal_to", "not_equal_to"),
    "labels": ("equal_to", "not_equal_to", "is_present", "is_not_present"),
}
_CUSTOM_OPS = (*_STRING_OPS, "is_present", "is_not_present")
_ADDITIONAL = ("country_code", "city", "company_name")


def _contact(ctx: Ctx) -> Contact:
    contact = ctx.store.contacts.get(ctx.path_int("contact_id"))
    if contact is None or contact.account_id != ctx.caller.account.id:
        raise errors.not_found()
    return contact


def _with_inboxes(ctx: Ctx) -> bool:
    return cast_bool(ctx.request.query_params.get("include_contact_inboxes")) is not False


def _page(ctx: Ctx) -> tuple[int, Any]:
    raw = ctx.request.query_params.get("page")
    page = cast_int(raw) or 1
    # current_page echoes the param as given (a string) and is 1 when absent.
    return max(page, 1), (raw if raw is not None else 1)


@endpoint
async def index(ctx: Ctx) -> Response:
    contacts = [
        c
        for c in ctx.store.account_contacts(ctx.caller.account.id)
        if c.email or c.phone_number or c.identifier
    ]
    page, shown = _page(ctx)
    rows = contacts[(page - 1) * PER_PAGE : page * PER_PAGE]
    return json_response(
        {
            "meta": {"count": len(contacts), "current_page": shown},
            "payload": [contact_json(ctx.store, c, with_inboxes=_with_inboxes(ctx)) for c in rows],
        }
    )


@endpoint
async def create(ctx: Ctx) -> Response:
    contact, ci, inbox = ctx.cw.create_contact(ctx.caller.account, ctx.params)
    return json_response(
        {
            "payload": {
                "contact": contact_json(ctx.store, contact),
                "contact_inbox": {
                    "inbox": inbox_record(inbox) if inbox is not None else None,
                    "source_id": ci.source_id if ci is not None else None,
                },
            }
        }
    )


@endpoint
async def show(ctx: Ctx) -> Response:
    contact = _contact(ctx)
    return json_response(
        {"payload": contact_json(ctx.store, contact, with_inboxes=_with_inboxes(ctx), base_url=ctx.base_url)}
    )


@endpoint
async def update(ctx: Ctx) -> Response:
    contact = ctx.cw.update_contact(_contact(ctx), ctx.params)
    return json_response({"payload": contact_json(ctx.store, contact, base_url=ctx.base_url)})


@endpoint
async def destroy(ctx: Ctx) -> Response:
    """ContactsController#destroy: `@contact.destroy!` then `head :ok` (an empty 200)."""
    ctx.cw.delete_contact(_contact(ctx))
    return Response(b"", status_code=200)


@endpoint
async def contactable_inboxes(ctx: Ctx) -> Response:
    """ContactableInboxesController#get: where an agent can start a conversation, and with which
    source id (Contacts::ContactableInboxesService; API inboxes only are emulated)."""
    contact = _contact(ctx)
    inboxes = [i for i in ctx.store.account_inboxes(ctx.caller.account.id) if ctx.caller.can_access(i)]
    return json_response(
        {
            "payload": [
                {"source_id": ctx.cw.contactable_source_id(contact, i), "inbox": inbox_json(i, admin=False)}
                for i in inboxes
            ]
        }
    )


@endpoint
async def merge(ctx: Ctx) -> Response:
    """Actions::ContactMergesController#create (POST /actions/contact_merge): both contacts are
    looked up in the account (404), ContactMergeAction runs, the base contact is rendered."""
    account_id = ctx.caller.account.id

    def find(key: str) -> Contact:
        contact = ctx.store.contacts.get(cast_int(ctx.params.get(key)) or 0)
        if contact is None or contact.account_id != account_id:
            raise errors.not_found()
        return contact

    base, mergee = find("base_contact_id"), find("mergee_contact_id")
    return json_response(contact_json(ctx.store, ctx.cw.merge_contacts(base, mergee)))


@endpoint
async def search(ctx: Ctx) -> Response:
    q = (ctx.request.query_params.get("q") or "").strip()
    contacts: list[Contact] = []
    if q:
        low = q.lower()
        contacts = [
            c
            for c in ctx.store.account_contacts(ctx.caller.account.id)
            if low in c.name.lower()
            or (c.email and low in c.email.lower())
            or (c.phone_number and low in c.phone_number.lower())
            or (c.identifier and q in c.identifier)  # LIKE: case-sensitive
        ]
    page, shown = _page(ctx)
    rows = contacts[(page - 1) * PER_PAGE : page * PER_PAGE]
    return json_response(
        {
            "meta": {"count": len(rows), "current_page": shown, "has_more": len(contacts) > page * PER_PAGE},
            "payload": [contact_json(ctx.store, c, with_inboxes=_with_inboxes(ctx)) for c in rows],
        }
    )


def _condition(ctx: Ctx, cond: Any) -> Callable[[Contact], bool]:
    if not isinstance(cond, dict):
        raise ApiError(422, {"error": "Invalid filter condition"})
    key = str(cond.get("attribute_key") or "")
    op = str(cond.get("filter_operator") or "")
    raw_values = cond.get("values")
    values = [str(v) for v in raw_values] if isinstance(raw_values, list) else [str(raw_values or "")]
    if key in _OPERATORS:
        allowed = _OPERATORS[key]
    elif any(key in c.custom_attributes for c in ctx.store.account_contacts(ctx.caller.account.id)):
        allowed = _CUSTOM_OPS
    else:
        raise ApiError(422, {"error": f"Invalid attribute key - {key}"})
    if op not in allowed:
        raise ApiError(
            422, {"error": f"Invalid operator. The allowed operators for {key} are {list(allowed)}."}
        )
    if key == "phone_number" and values:
        values[0] = "+" + re.sub(r"\D", "", values[0])

    def value_of(c: Contact) -> Any:
        if key in ("name", "email", "phone_number", "identifier"):
            return getattr(c, key)
        if key == "blocked":
            return c.blocked
        if key == "labels":
            return None
        if key in _ADDITIONAL:
            return c.additional_attributes.get(key)
        return c.custom_attributes.get(key)

    def match(c: Contact) -> bool:
        v = value_of(c)
        if op == "is_present":
            return v not in (None, "")
        if op == "is_not_present":
            return v in (None, "")
        if key == "blocked":
            want = [bool(cast_bool(x)) for x in values]
            return (v in want) if op == "equal_to" else (v not in want)
        text = "" if v is None else str(v).lower()
        lows = [x.lower() for x in values]
        if op == "equal_to":
            return v is not None and text in lows
        if op == "not_equal_to":
            return v is None or text not in lows
        first = lows[0] if lows else ""
        if op == "contains":
            return v is not None and first in text
        if op == "does_not_contain":
            return v is None or first not in text
        if op == "starts_with":
            return v is not None and text.startswith(first)
        return False

    return match


@endpoint
async def filter_contacts(ctx: Ctx) -> Response:
    conditions = ctx.params.get("payload")
    if not isinstance(conditions, list) or not conditions:
        raise ApiError(422, {"error": "Invalid filter payload"})
    # SQL precedence: AND binds tighter than OR, so split into OR-groups of AND chains.
    groups: list[list[Callable[[Contact], bool]]] = [[]]
    for i, cond in enumerate(conditions):
        groups[-1].append(_condition(ctx, cond))
        if i == len(conditions) - 1:
            break
        joiner = str((cond or {}).get("query_operator") or "AND").upper()
        if joiner not in ("AND", "OR"):
            raise ApiError(422, {"error": f"Invalid query operator - {joiner}"})
        if joiner == "OR":
            groups.append([])
    account_id = ctx.caller.account.id
    first = conditions[0] if len(conditions) == 1 and isinstance(conditions[0], dict) else {}
    candidates: list[Contact]
    if first.get("attribute_key") == "phone_number" and first.get("filter_operator") == "equal_to":
        # The usual bridge lookup ("who is +55...?"): use the unique phone index, like the
        # database would, then still apply the same condition to the candidates.
        raw = first.get("values")
        values = [str(v) for v in raw] if isinstance(raw, list) else [str(raw or "")]
        if values:
            values[0] = "+" + re.sub(r"\D", "", values[0])
        ids = {ctx.store.contact_with(account_id, "phone_number", v) for v in values}
        candidates = [ctx.store.contacts[i] for i in sorted(i for i in ids if i is not None)]
    else:
        candidates = ctx.store.account_contacts(account_id)
    resolved = [c for c in candidates if c.email or c.phone_number or c.identifier]
    matched = [c for c in resolved if any(all(f(c) for f in group) for group in groups)]
    page, shown = _page(ctx)
    rows = matched[(page - 1) * PER_PAGE : page * PER_PAGE]
    return json_response(
        {
            "meta": {"count": len(matched), "current_page": shown},
            "payload": [contact_json(ctx.store, c, with_inboxes=_with_inboxes(ctx)) for c in rows],
        }
    )


@endpoint
async def conversations(ctx: Ctx) -> Response:
    contact = _contact(ctx)
    convs = [
        c
        for c in ctx.store.conversations_of_contact(contact.id)
        if ctx.caller.can_access(ctx.store.inboxes[c.inbox_id])
    ]
    convs.sort(key=lambda c: (c.last_activity_at, c.id), reverse=True)
    return json_response({"payload": [conversation_json(ctx.store, ctx.base_url, c) for c in convs[:20]]})


@endpoint
async def create_contact_inbox(ctx: Ctx) -> Response:
    contact = _contact(ctx)
    inbox = ctx.inbox(cast_int(ctx.params.get("inbox_id")) or 0)
    if not ctx.caller.can_access(inbox):
        raise errors.forbidden()
    source = ctx.params.get("source_id")
    ci = ctx.cw.build_contact_inbox(
        contact,
        inbox,
        None if source in (None, "") else str(source),
        bool(cast_bool(ctx.params.get("hmac_verified"))),
    )
    return json_response({"source_id": ci.source_id, "inbox": inbox_brief(inbox)})


@endpoint
async def filter_contact_inboxes(ctx: Ctx) -> Response:
    inbox = ctx.inbox(cast_int(ctx.params.get("inbox_id")) or 0)
    ci_id = ctx.store.contact_inbox_by_source.get((inbox.id, str(ctx.params.get("source_id"))))
    if ci_id is None:
        raise ApiError(404)  # `head :not_found`: an empty body
    ci = ctx.store.contact_inboxes[ci_id]
    return json_response(contact_json(ctx.store, ctx.store.contacts[ci.contact_id]))


routes = [
    Route(BASE, index, methods=["GET"]),
    Route(BASE, create, methods=["POST"]),
    Route(BASE + "/search", search, methods=["GET"]),
    Route(BASE + "/filter", filter_contacts, methods=["POST"]),
    Route(BASE + "/{contact_id}", show, methods=["GET"]),
    Route(BASE + "/{contact_id}", update, methods=["PATCH", "PUT"]),
    Route(BASE + "/{contact_id}", destroy, methods=["DELETE"]),
    Route(BASE + "/{contact_id}/contactable_inboxes", contactable_inboxes, methods=["GET"]),
    Route(BASE + "/{contact_id}/conversations", conversations, methods=["GET"]),
    Route(BASE + "/{contact_id}/contact_inboxes", create_contact_inbox, methods=["POST"]),
    Route("/api/v1/accounts/{account_id}/contact_inboxes/filter", filter_contact_inboxes, methods=["POST"]),
    Route("/api/v1/accounts/{account_id}/actions/contact_merge", merge, methods=["POST"]),
]
