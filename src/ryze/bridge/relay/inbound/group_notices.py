"""A group's membership and metadata changes, shown in its Chatwoot conversation as activity lines.

``group.flow`` add / remove / promote / demote / subject / topic become one readable line each
("👥 Ana added Bob") in the group's conversation, created with ``message_type: "activity"``:
Chatwoot's ``Messages::MessageBuilder`` takes any ``message_type`` of the enum from the API
(app/builders/messages/message_builder.rb: only ``incoming`` is limited, to API inboxes), the
dashboard shows an activity as a centered system line (as it shows "Conversation was resolved"),
and ``Message#webhook_sendable?`` leaves activities out of webhooks, so nothing comes back that
the outbound side would have to keep from WhatsApp. An activity neither reopens a resolved
conversation nor moves ``waiting_since`` (the callbacks that do it are for incoming messages), which
is right for a change no agent has to answer.

Idempotent on replay: each change has a key (its group, action, time, participants, new values)
recorded in the mapping table (kind ``group_notice``) once its line is created, and the line carries
it as ``source_id`` so that an attempt whose answer was lost finds the line instead of adding a
second one. ``create`` (a group first seen) and ``settings`` changes have no line: the first is
the group's metadata, not a change, and the second is of no use to an agent.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ryze.bridge.relay.context import RelayContext
from ryze.bridge.relay.inbound.lookup import find_created, message_time
from ryze.bridge.relay.inbound.resolver import aliases_of, jid_user, phone_of
from ryze.bridge.store.repositories import ChatRepository
from ryze.chatwoot import ChatwootError, ChatwootPort
from ryze.protocol import ChatRef, GroupFlowAction, GroupFlowData, SenderRef

log = logging.getLogger(__name__)

NOTICE_KIND = "group_notice"
SOURCE_PREFIX = "WAFLOW:"
_MAX_NAMES = 20  # a line names at most this many participants ("and 5 more")
_NAME_MEMORY = 5000


def notice_key(flow: GroupFlowData) -> str:
    """The change's identity: the same event replayed gives the same key, another change another."""
    parts = [
        flow.chat.jid,
        flow.action.value,
        flow.timestamp,
        ",".join(sorted(p.jid for p in flow.participants)),
        flow.subject or "",
        flow.topic or "",
        flow.actor.jid if flow.actor else "",
    ]
    return "flow-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _listed(names: Sequence[str]) -> str:
    shown = list(names[:_MAX_NAMES])
    rest = len(names) - len(shown)
    if rest > 0:
        return ", ".join(shown) + f" and {rest} more"
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def notice_text(flow: GroupFlowData, name_of: Callable[[SenderRef], str]) -> str | None:
    """The line an agent reads for one change (None: the change has no line)."""
    actor = name_of(flow.actor) if flow.actor is not None else None
    others = [p for p in flow.participants if flow.actor is None or p.jid != flow.actor.jid]
    by_self = flow.actor is not None and not others  # "Bob left", "Bob joined" (by invite link)
    who = _listed([name_of(p) for p in (flow.participants if by_self or actor is None else others)])
    match flow.action:
        case GroupFlowAction.ADD:
            if not who:
                return None
            return f"👥 {who} joined" if by_self or actor is None else f"👥 {actor} added {who}"
        case GroupFlowAction.REMOVE:
            if not who:
                return None
            return f"👥 {who} left" if by_self or actor is None else f"👥 {actor} removed {who}"
        case GroupFlowAction.PROMOTE:
            if not who:
                return None
            return f"👥 {who} is now an admin" if actor is None else f"👥 {actor} made {who} an admin"
        case GroupFlowAction.DEMOTE:
            if not who:
                return None
            if actor is None:
                return f"👥 {who} is no longer an admin"
            return f"👥 {actor} removed {who} as admin"
        case GroupFlowAction.SUBJECT:
            subject = flow.subject or flow.chat.name
            if not subject:
                return None
            by = f"{actor} changed the group name" if actor else "The group name changed"
            return f"👥 {by} to “{subject}”"
        case GroupFlowAction.TOPIC:
            if not flow.topic:
                return (
                    f"👥 {actor} removed the group description"
                    if actor
                    else "👥 The group description was removed"
                )
            by = f"{actor} changed the group description" if actor else "The group description changed"
            return f"👥 {by}:\n{flow.topic}"
        case _:
            return None  # create, settings


class GroupNotices:
    """Posts each ``group.flow`` change as an activity line in the group's conversation, once."""

    def __init__(
        self,
        ctx: RelayContext,
        *,
        chats: ChatRepository,
        client: Callable[[], ChatwootPort],
    ) -> None:
        self.ctx = ctx
        self._chats = chats
        self._client = client
        # push names seen in changes (a person added by name, promoted later without one); bounded
        self._push_names: OrderedDict[str, str] = OrderedDict()

    async def on_flow(self, flow: GroupFlowData, *, ambiguous: bool) -> None:
        self._remember_names(flow)
        if flow.action in (GroupFlowAction.CREATE, GroupFlowAction.SETTINGS):
            return
        integration_id = self.ctx.integration_id
        record = await self._chats.find(integration_id, aliases_of(flow.chat))
        if record is None or record.conversation_id is None:
            # no message of the group reached Chatwoot yet: there is no conversation to tell
            log.debug(
                "group change before the group's conversation", extra={"integration_id": integration_id}
            )
            return
        key = notice_key(flow)
        if await self.ctx.messages.find_wa(integration_id, key) is not None:
            return  # this change was posted already (a replayed event)
        names = await self._names(flow)
        text = notice_text(flow, lambda p: names.get(p.jid) or _fallback_name(p))
        if text is None:
            return
        client = self._client()
        conversation_id = record.conversation_id
        created = None
        if ambiguous:  # a previous attempt may have created it and lost the answer
            created = await find_created(
                client, conversation_id, SOURCE_PREFIX + key, not_before=message_time(flow.timestamp)
            )
        if created is None:
            created = await client.create_message(
                conversation_id, content=text, message_type="activity", source_id=SOURCE_PREFIX + key
            )
        await self.ctx.messages.record(
            integration_id,
            wa_message_id=key,
            chatwoot_message_id=created.id,
            conversation_id=conversation_id,
            chat_jid=flow.chat.jid,
            direction="in",
            kind=NOTICE_KIND,
        )
        log.info(
            "group change shown in its conversation",
            extra={
                "integration_id": integration_id,
                "action": flow.action.value,
                "conversation_id": conversation_id,
            },
        )

    def _remember_names(self, flow: GroupFlowData) -> None:
        """whatsmeow names members only in a group's full info (a create); a later join, leave or
        promotion lists bare JIDs: the names seen are kept for those lines."""
        for person in [*flow.participants, *([flow.actor] if flow.actor else [])]:
            if person.name:
                self._push_names[person.jid] = person.name
                self._push_names.move_to_end(person.jid)
        while len(self._push_names) > _NAME_MEMORY:
            self._push_names.popitem(last=False)

    async def _names(self, flow: GroupFlowData) -> dict[str, str]:
        """Each person's name as the agent knows them: their Chatwoot contact's name (an agent may
        have corrected it), else the push name WhatsApp gave (now or in an earlier change). A
        failed look-up falls back, never holds the line back."""
        people = [*([flow.actor] if flow.actor else []), *flow.participants]  # the actor always looked up
        names: dict[str, str] = {}
        client = self._client()
        for person in people[: _MAX_NAMES + 1]:
            if person.jid in names:
                continue
            try:
                found = await client.filter_contacts(
                    "identifier", aliases_of(ChatRef(jid=person.jid, lid=person.lid, pn=person.pn))
                )
            except ChatwootError as exc:
                log.info(
                    "participant name not looked up",
                    extra={"integration_id": self.ctx.integration_id, "error": str(exc)[:200]},
                )
                found = []
            name = (found[0].name if found else None) or self._push_names.get(person.jid)
            if name:
                names[person.jid] = name
        return names


def _fallback_name(person: SenderRef) -> str:
    return person.name or phone_of(ChatRef(jid=person.jid, pn=person.pn)) or jid_user(person.jid)
