"""Contact and conversation resolution for a WhatsApp chat, cached locally.

Lookup order on a cache miss: the bridge's own table (by any alias of the chat: JID, LID, PN), then
Chatwoot by exact keys only — ``contact_inboxes/filter`` on ``(inbox_id, source_id)`` and
``contacts/filter`` on ``identifier`` (never the rate-limited search) — then creation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ryze.bridge.relay.inbound.jids import aliases_of, jid_user, phone_of
from ryze.bridge.relay.inbound.names import fallback_name, whatsapp_name
from ryze.bridge.store.repositories import ChatRecord, ChatRepository
from ryze.chatwoot import ChatwootError, ChatwootNotFound, ChatwootPort, ChatwootValidationError
from ryze.chatwoot.models import Conversation
from ryze.protocol import ChatRef, ChatType

__all__ = ["ConversationPolicy", "ConversationResolver", "aliases_of", "jid_user", "phone_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversationPolicy:
    reopen_resolved: bool
    start_as_pending: bool


class ConversationResolver:
    def __init__(
        self,
        *,
        integration_id: str,
        inbox_id: int,
        chats: ChatRepository,
        client: Callable[[], ChatwootPort],
        policy: Callable[[], ConversationPolicy],
        cache_size: int = 5000,
    ) -> None:
        self.integration_id = integration_id
        self.inbox_id = inbox_id
        self._chats = chats
        self._client = client
        self._policy = policy
        self._cache: OrderedDict[str, ChatRecord] = OrderedDict()
        self._by_conversation: dict[int, ChatRecord] = {}
        # newest conversation updated_at seen per conversation (bounded like the cache)
        self._status_at: OrderedDict[int, float] = OrderedDict()
        self._cache_size = cache_size
        # chats whose PN/LID contact merge Chatwoot refused this run: tried again with their next
        # message even though every alias is cached (bounded like the cache)
        self._unmerged: OrderedDict[str, None] = OrderedDict()

    @property
    def chats(self) -> ChatRepository:
        return self._chats

    # ------------------------------------------------------------------ cache

    def _remember(self, chat: ChatRef, record: ChatRecord) -> None:
        for alias in aliases_of(chat):
            self._cache[alias] = record
            self._cache.move_to_end(alias)
        if record.conversation_id is not None:
            self._by_conversation[record.conversation_id] = record
        while len(self._cache) > self._cache_size:
            _, old = self._cache.popitem(last=False)
            if old.conversation_id is not None and old not in self._cache.values():
                self._by_conversation.pop(old.conversation_id, None)

    def _usable(self, record: ChatRecord) -> bool:
        if record.conversation_id is None:
            return False
        return record.conversation_status != "resolved" or self._policy().reopen_resolved

    async def note_status(self, conversation_id: int, status: str, updated_at: float | None = None) -> None:
        """A conversation's status changed in Chatwoot (from its webhook).

        Chatwoot delivers webhooks from Sidekiq jobs run concurrently (``config/sidekiq.yml``,
        ``app/listeners/webhook_listener.rb``), so a snapshot can arrive after a newer one: a
        ``conversation_*`` event whose ``updated_at`` is older than the newest one seen for that
        conversation is stale and changes nothing (reopened, then a late "resolved", stays open).
        """
        if updated_at is not None:
            newest = self._status_at.get(conversation_id)
            if newest is not None and updated_at < newest:
                return
            self._status_at[conversation_id] = updated_at
            self._status_at.move_to_end(conversation_id)
            while len(self._status_at) > self._cache_size:
                self._status_at.popitem(last=False)
        record = self._by_conversation.get(conversation_id)
        if record is not None:
            if record.conversation_status == status:
                return  # conversation_updated fires for many attribute changes: write only real changes
            record.conversation_status = status
        await self._chats.set_conversation_status(self.integration_id, conversation_id, status)

    async def forget_conversation(self, chat: ChatRef) -> None:
        """The cached conversation is gone (404): resolve again on the next attempt."""
        for alias in aliases_of(chat):
            record = self._cache.get(alias)
            if record is not None and record.conversation_id is not None:
                self._by_conversation.pop(record.conversation_id, None)
                record.conversation_id = None
        stored = await self._chats.find(self.integration_id, aliases_of(chat))
        if stored is not None and stored.conversation_id is not None:
            stored.conversation_id = None
            await self._chats.save(self.integration_id, stored, aliases_of(chat))

    async def forget_contact(self, chat: ChatRef) -> None:
        for alias in aliases_of(chat):
            self._cache.pop(alias, None)

    async def rebind_contact(self, chat: ChatRef, record: ChatRecord) -> None:
        """Chatwoot answered 404 for the record's contact: resolve the chat's contact again.

        After a deletion nothing owns the chat any more and a new contact is created; after a merge
        (app/actions/contact_merge_action.rb) the chat's contact inbox belongs to the surviving
        contact, so ``contact_inboxes/filter`` finds it and both WhatsApp identities map to it.
        The caller saves the record.
        """
        gone = record.contact_id
        await self.forget_contact(chat)
        record.contact_id, named = await self._contact(chat)
        record.contact_name = named
        log.info(
            "contact gone in Chatwoot: chat resolved again",
            extra={"integration_id": self.integration_id, "gone": gone, "contact_id": record.contact_id},
        )

    # ------------------------------------------------------------------ resolution

    async def resolve(self, chat: ChatRef) -> ChatRecord:
        cached = self._cache.get(chat.jid)
        if cached is not None and self._usable(cached):
            self._cache.move_to_end(chat.jid)
            # The per-message hit path: the JID was just found, so only the other two aliases can
            # be new, or known as another chat (same test as over aliases_of(chat), without
            # building the list every time).
            cache = self._cache
            if (
                (chat.lid and cache.get(chat.lid) is not cached)
                or (chat.pn and cache.get(chat.pn) is not cached)
                or (self._unmerged and cached.chat_key in self._unmerged)
            ):
                await self._learn(chat, cached)
            return cached
        aliases = aliases_of(chat)
        record = cached or await self._chats.find(self.integration_id, aliases)
        if record is None:
            contact_id, named = await self._contact(chat)
            record = ChatRecord(
                chat_key=chat.jid,
                contact_id=contact_id,
                conversation_id=None,
                conversation_status="open",
                contact_name=named,
            )
        elif len(aliases) > 1:
            await self._unite(chat, record)
        if not self._usable(record):
            try:
                conversation = await self._conversation(record)
            except ChatwootNotFound:
                # The stored contact is gone: deleted (its conversations with it) or merged into
                # another (its contact inboxes moved to the survivor). Find the chat's owner again.
                await self.rebind_contact(chat, record)
                conversation = await self._conversation(record)
            record.conversation_id = conversation.id
            record.conversation_status = conversation.status
        await self._chats.save(self.integration_id, record, aliases)
        self._remember(chat, record)
        if chat.pn and chat.pn != chat.jid:  # a LID chat whose phone number is known
            await self._ensure_phone(chat, record)
        return record

    async def _learn(self, chat: ChatRef, record: ChatRecord) -> None:
        """WhatsApp revealed another JID of a known chat (a LID mapped to its phone number): keep them
        together, and give the Chatwoot contact its phone number when it had none."""
        new = [alias for alias in aliases_of(chat) if alias not in self._cache]
        await self._unite(chat, record)
        await self._chats.save(self.integration_id, record, aliases_of(chat))
        self._remember(chat, record)
        if any(alias.endswith("@s.whatsapp.net") for alias in new):
            await self._ensure_phone(chat, record)

    async def _unite(self, chat: ChatRef, record: ChatRecord) -> None:
        """One person, one contact: when an event carries both a LID and a phone number and each
        was resolved before as a chat of its own, with a contact of its own, the two contacts are
        merged through Chatwoot's contact merge (``app/actions/contact_merge_action.rb``: the base
        contact survives and receives the mergee's conversations, messages and contact inboxes;
        the mergee is destroyed). The phone-number chat's contact is the base: it has the number
        and is the one agents and other integrations find. Each chat keeps its own conversation
        (``_may_take``), both now under the one contact. A merge Chatwoot refuses is logged and
        tried again with the chat's next message; it never holds the message back.

        Every JID of the person then points at the chat the event came on (``move_aliases``), in
        the table as in memory, so later messages on either identity continue that chat's
        conversation whatever process relays them; the other chat's conversation stays under
        the survivor with its history, and an agent's reply there still goes to its JID."""
        others = [
            other
            for other in await self._chats.find_all(self.integration_id, aliases_of(chat))
            if other.chat_key != record.chat_key and other.contact_id != record.contact_id
        ]
        for other in others:
            base, mergee = (
                (other, record) if _is_pn(other.chat_key) or not _is_pn(record.chat_key) else (record, other)
            )
            survivor, gone = base.contact_id, mergee.contact_id
            try:
                await self._client().merge_contacts(survivor, gone)
            except ChatwootNotFound:
                # one of them is gone already (deleted, or merged by an agent): each chat finds its
                # owner again with its next message (rebind_contact)
                log.info(
                    "contact merge found a contact gone",
                    extra={"integration_id": self.integration_id, "base": survivor, "mergee": gone},
                )
                continue
            except ChatwootError as exc:
                self._unmerged[record.chat_key] = None
                while len(self._unmerged) > self._cache_size:
                    self._unmerged.popitem(last=False)
                log.warning(
                    "contact merge failed; tried again with the next message",
                    extra={
                        "integration_id": self.integration_id,
                        "base": survivor,
                        "mergee": gone,
                        "error": str(exc)[:200],
                    },
                )
                continue
            # the survivor keeps the base's name (ContactMergeAction: the base's non-blank
            # attributes win), so the name the bridge gave the base is both chats' from now on
            for chat_record in (record, other):
                chat_record.contact_id, chat_record.contact_name = survivor, base.contact_name
            await self._chats.save(self.integration_id, other, [other.chat_key])
            await self._chats.move_aliases(self.integration_id, aliases_of(chat), record.chat_key)
            self._unmerged.pop(record.chat_key, None)
            for alias, cached in list(self._cache.items()):
                if cached.contact_id == gone:
                    cached.contact_id = survivor
                    self._cache[alias] = cached
            log.info(
                "PN and LID contacts merged",
                extra={"integration_id": self.integration_id, "base": survivor, "mergee": gone},
            )

    async def _ensure_phone(self, chat: ChatRef, record: ChatRecord) -> None:
        phone = phone_of(chat)
        if not phone or chat.type != ChatType.PRIVATE:
            return
        try:
            try:
                contact = await self._client().show_contact(record.contact_id)
            except ChatwootNotFound:  # deleted or merged away since: follow the chat to its owner
                await self.rebind_contact(chat, record)
                await self._chats.save(self.integration_id, record, aliases_of(chat))
                self._remember(chat, record)
                contact = await self._client().show_contact(record.contact_id)
            if not contact.phone_number:
                await self._client().update_contact(record.contact_id, phone_number=phone)
        except (ChatwootValidationError, ChatwootNotFound) as exc:  # the number belongs to another contact
            log.info(
                "contact phone number not updated",
                extra={
                    "integration_id": self.integration_id,
                    "contact_id": record.contact_id,
                    "error": str(exc)[:200],
                },
            )

    async def _contact(self, chat: ChatRef) -> tuple[int, str | None]:
        """The chat's contact id, and the name the bridge gave it when it created it (None for a
        contact found: the bridge did not name it)."""
        client = self._client()
        source_id = chat.jid
        for alias in aliases_of(chat):
            found = await client.find_contact_by_source(self.inbox_id, alias)
            if found is not None:
                return found.id, None
        for alias in aliases_of(chat):
            matches = await client.filter_contacts("identifier", [alias])
            if matches:
                await client.create_contact_inbox(matches[0].id, self.inbox_id, source_id)
                return matches[0].id, None
        phone = phone_of(chat)
        if phone:
            matches = await client.filter_contacts("phone_number", [phone])
            if matches:
                await client.create_contact_inbox(matches[0].id, self.inbox_id, source_id)
                return matches[0].id, None
        name = whatsapp_name(chat) or fallback_name(chat)
        attributes: dict[str, object] = {
            "whatsapp_jid": chat.jid,
            "whatsapp_lid": chat.lid,
            "whatsapp_pn": chat.pn,
        }
        if chat.type == ChatType.GROUP:
            attributes["whatsapp_group"] = True
        try:
            contact = await client.create_contact(
                name=name,
                identifier=chat.jid,
                phone_number=phone,
                inbox_id=self.inbox_id,
                source_id=source_id,
                additional_attributes={k: v for k, v in attributes.items() if v is not None},
            )
        except ChatwootValidationError:
            # identifier or phone taken by a contact created meanwhile: adopt it
            matches = await client.filter_contacts("identifier", [chat.jid])
            if not matches and phone:
                matches = await client.filter_contacts("phone_number", [phone])
            if not matches:
                raise
            await client.create_contact_inbox(matches[0].id, self.inbox_id, source_id)
            return matches[0].id, None
        log.info("contact created", extra={"integration_id": self.integration_id, "contact_id": contact.id})
        return contact.id, name

    async def _may_take(self, record: ChatRecord, conversation_id: int) -> bool:
        """A contact merged from two WhatsApp chats holds both chats' conversations; each chat
        keeps to its own (agent replies go to the conversation's contact inbox source)."""
        owner = await self._chats.chat_of_conversation(self.integration_id, conversation_id)
        return owner is None or owner == record.chat_key

    async def _conversation(self, record: ChatRecord) -> Conversation:
        client = self._client()
        policy = self._policy()
        ours = [
            c
            for c in await client.contact_conversations(record.contact_id)
            if c.inbox_id == self.inbox_id and await self._may_take(record, c.id)
        ]
        if policy.reopen_resolved and ours:
            return ours[0]
        for conversation in ours:
            if conversation.status != "resolved":
                return conversation
        created = await client.create_conversation(
            inbox_id=self.inbox_id,
            contact_id=record.contact_id,
            source_id=record.chat_key,
            status="pending" if policy.start_as_pending else None,
        )
        log.info(
            "conversation created",
            extra={
                "integration_id": self.integration_id,
                "conversation_id": created.id,
                "status": created.status,
            },
        )
        return created


def _is_pn(jid: str) -> bool:
    return jid.endswith("@s.whatsapp.net")
