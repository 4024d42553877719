"""A group's conversation carries the group's subject, kept current.

Chatwoot's conversation has no name of its own: the conversation list and header show the
contact's name (``conversations/_conversation.json.jbuilder`` → ``meta.sender`` = the contact),
so, as WAHA does (it names the group's contact after the subject), the group's contact is named
after the subject and renamed when ``group.flow`` reports a new one, or a group message carries a
different one in ``chat.name``. A subject seen before the group's first message waits in memory
and names the contact when the resolver creates it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from ryze.bridge.relay.inbound.resolver import aliases_of
from ryze.bridge.store.repositories import ChatRecord, ChatRepository
from ryze.chatwoot import ChatwootError, ChatwootNotFound, ChatwootPort, ChatwootValidationError
from ryze.protocol import ChatRef, GroupFlowAction, GroupFlowData

log = logging.getLogger(__name__)

_MEMORY = 5000  # groups whose current subject this run knows


class GroupSubjects:
    def __init__(
        self, *, integration_id: str, chats: ChatRepository, client: Callable[[], ChatwootPort]
    ) -> None:
        self.integration_id = integration_id
        self._chats = chats
        self._client = client
        self._named: OrderedDict[str, str] = OrderedDict()  # chat_key → the name the contact has
        self._pending: OrderedDict[str, str] = OrderedDict()  # group JID → a subject not applied yet

    async def note_subject(self, chat: ChatRef, record: ChatRecord) -> None:
        """A group message: rename the contact when its subject is not the one it carries."""
        subject = self._pending.pop(chat.jid, None) or chat.name
        if not subject:
            return
        try:
            await self._rename(record, subject)
        except ChatwootError as exc:
            # The message itself is in Chatwoot already: a rename Chatwoot could not take now is
            # tried again with the group's next message, it never holds the message back.
            log.warning(
                "group contact rename failed; retried with the next message",
                extra={
                    "integration_id": self.integration_id,
                    "contact_id": record.contact_id,
                    "error": str(exc)[:200],
                },
            )

    async def on_flow(self, flow: GroupFlowData) -> None:
        if flow.action not in (GroupFlowAction.CREATE, GroupFlowAction.SUBJECT):
            return  # membership, topic and settings changes leave the name as it is
        subject = flow.subject or flow.chat.name
        if not subject:
            return
        record = await self._chats.find(self.integration_id, aliases_of(flow.chat))
        if record is None:  # no message of the group relayed yet: name the contact when it is created
            self._remember(self._pending, flow.chat.jid, subject)
            return
        await self._rename(record, subject)

    async def _rename(self, record: ChatRecord, subject: str) -> None:
        subject = subject[:255]
        if self._named.get(record.chat_key) == subject:
            return
        try:
            await self._client().update_contact(record.contact_id, name=subject)
        except (ChatwootNotFound, ChatwootValidationError) as exc:
            # the contact is gone or refused the name: the next message resolves and names it again
            log.info(
                "group contact not renamed",
                extra={
                    "integration_id": self.integration_id,
                    "contact_id": record.contact_id,
                    "error": str(exc)[:200],
                },
            )
            return
        self._remember(self._named, record.chat_key, subject)
        log.info(
            "group contact named after its subject",
            extra={"integration_id": self.integration_id, "contact_id": record.contact_id},
        )

    @staticmethod
    def _remember(memory: OrderedDict[str, str], key: str, value: str) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _MEMORY:
            memory.popitem(last=False)
