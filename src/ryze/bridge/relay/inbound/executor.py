"""Applies a converter's effect against Chatwoot and records the mapping (kind, target, sender).

The consumer decides *whether* a WhatsApp message reaches Chatwoot (already relayed, a chat not
mirrored) and decorates the effect (a group participant's name); everything that needs Chatwoot
or the mapping table happens here:

- **create**: the reply target's Chatwoot id (``in_reply_to``) when it was relayed in this
  conversation, else the quoted text as a quote; the file downloaded from RyzeAPI and uploaded as
  a multipart attachment, or a text saying why it could not be (too large, not downloadable);
- **react**: the sender's previous reaction to the same target deleted, the new one created as a
  reply to the target (an empty emoji only removes) — never an empty message;
- **delete**: the revoked message's Chatwoot message deleted (``MessagesController#destroy``, a
  soft delete Chatwoot shows as "This message was deleted"); when Chatwoot refuses, a reply to
  it marks it deleted;
- **live position**: tied to the sender's running share in the conversation (the mapping's
  ``live`` row, found by chat and sender through the target index); a later position is a reply
  to the share at most once per ``live_interval`` seconds (the others mapped as skipped), its last
  always. Chatwoot's API cannot change a message's content (an API inbox's ``PATCH`` only sets
  the status), so the start stays as it was and the replies carry the newer positions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ryze.bridge.relay.context import RelayContext
from ryze.bridge.relay.inbound.effects import (
    CreateMessage,
    DeleteTarget,
    Effect,
    LivePosition,
    MapKind,
    MediaRef,
    React,
    Skip,
)
from ryze.bridge.relay.inbound.lookup import find_created, message_time
from ryze.bridge.relay.inbound.media import MediaError, MediaSource, MediaTooLarge, human_size
from ryze.bridge.relay.source_id import wa_source_id
from ryze.bridge.store.repositories import MappedMessage
from ryze.chatwoot import ChatwootNotFound, ChatwootPort, ChatwootValidationError
from ryze.chatwoot.models import Attachment
from ryze.protocol import WAMessage

log = logging.getLogger(__name__)

# WhatsApp's longest live-location share lasts 8 hours: a position later than that after its
# share's start belongs to a new share (a share's end may never have reached us).
LIVE_SHARE_SECONDS = 8 * 3600


def live_share_key(chat_jid: str, sender_jid: str) -> str:
    """The ``target`` of a live share's start row: what its sender's next position looks up."""
    return f"live:{chat_jid}|{sender_jid}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where the effect lands and on whose behalf."""

    conversation_id: int
    outgoing: bool  # sent from the phone (fromMe): an outgoing Chatwoot message
    adopt: bool  # a previous attempt may have created it: look for our source id first


class EffectExecutor:
    def __init__(
        self,
        ctx: RelayContext,
        message: WAMessage,
        seq: int,
        *,
        media: MediaSource | None,
        prefix: str = "",
        on_record: Callable[[str], None] = lambda _wa_id: None,
        live_interval: float = 300.0,
    ) -> None:
        self.ctx = ctx
        self.live_interval = live_interval  # seconds between two lines of one live share
        self.media = media
        self.message = message
        self.seq = seq
        self.prefix = prefix  # a group participant's name, put before what they sent
        self._on_record = on_record

    @property
    def client(self) -> ChatwootPort:
        return self.ctx.chatwoot()

    async def apply(self, effect: Effect, where: Target) -> None:
        if isinstance(effect, Skip):
            await self.record(None, None, state="skipped")
        elif isinstance(effect, CreateMessage):
            await self._create(self._decorated(effect), where)
        elif isinstance(effect, React):
            await self._react(effect, where)
        elif isinstance(effect, LivePosition):
            await self._live(effect, where)
        else:
            await self._delete(effect, where)

    # ------------------------------------------------------------------ create

    async def _create(self, effect: CreateMessage, where: Target) -> None:
        source_id = wa_source_id(self.message.id)
        if where.adopt and await self._adopt(where.conversation_id, source_id, effect.kind, effect.target):
            return
        attributes: dict[str, Any] = dict(effect.attributes)
        content = effect.content
        if effect.reply_to:
            target = await self._target_of(effect.reply_to, where.conversation_id)
            if target is not None:
                attributes["in_reply_to"] = target.chatwoot_message_id
            else:
                attributes["in_reply_to_external_id"] = wa_source_id(effect.reply_to)
                if effect.quote:
                    content = f"> {effect.quote}\n\n{content}" if content else f"> {effect.quote}"
        attachments: list[Attachment] | None = None
        voice = False
        if effect.media is not None:
            attachment, note = await self._download(effect.media)
            if attachment is not None:
                attachments = [attachment]
                voice = effect.media.voice
            else:
                content = f"{note}\n{content}" if content else note
        created = await self.client.create_message(
            where.conversation_id,
            content=content or None,
            message_type="outgoing" if where.outgoing else "incoming",
            source_id=source_id,
            content_attributes=attributes or None,
            attachments=attachments,
            is_voice_message=voice,
        )
        await self.record(created.id, where.conversation_id, kind=effect.kind, target=effect.target)
        self.ctx.metrics.relayed("wa_to_cw")

    async def _download(self, ref: MediaRef) -> tuple[Attachment | None, str]:
        """The attachment, or (None, the text shown instead: what the file was and why it is missing)."""
        what = f"{ref.label} “{ref.file_name}” ({ref.mimetype}"
        what += f", {human_size(ref.size)})" if ref.size else ")"
        if self.media is None or not ref.url:
            return None, f"📎 A {what} could not be attached: RyzeAPI offered no download for it."
        if ref.size is not None and ref.size > self.media.max_bytes:
            return None, f"📎 A {what} was not attached: {MediaTooLarge(ref.size, self.media.max_bytes)}."
        try:
            got = await self.media.fetch(ref.url)
        except MediaError as exc:
            log.info(
                "media shown as text",
                extra={
                    "integration_id": self.ctx.integration_id,
                    "wa_id": self.message.id,
                    "error": str(exc),
                },
            )
            return None, f"📎 A {what} could not be attached: {exc}."
        content_type = ref.mimetype or got.content_type or "application/octet-stream"
        return Attachment(filename=ref.file_name, content_type=content_type, data=got.data), ""

    # ------------------------------------------------------------------ react

    async def _react(self, effect: React, where: Target) -> None:
        ctx, sender = self.ctx, self.message.sender.jid
        previous = await ctx.messages.acting_on(
            ctx.integration_id, effect.target, kind="reaction", sender_jid=sender
        )
        for row in previous:
            if row.state == "done" and row.chatwoot_message_id and row.conversation_id:
                await self._delete_quietly(row.conversation_id, row.chatwoot_message_id)
                await ctx.messages.set_state(ctx.integration_id, row.wa_message_id, row.part, "removed")
        if not effect.emoji:
            await self.record(
                None, where.conversation_id, state="skipped", kind="reaction", target=effect.target
            )
            return
        content = effect.emoji
        if await self._target_of(effect.target, where.conversation_id) is None:
            # a bare emoji with nothing to thread it under would read as a message of its own
            content = f"{effect.emoji} (a reaction to a message that is not in this conversation)"
        create = CreateMessage(content=content, reply_to=effect.target, kind="reaction", target=effect.target)
        await self._create(self._decorated(create), where)

    def _decorated(self, effect: CreateMessage) -> CreateMessage:
        return replace(effect, content=self.prefix + effect.content) if self.prefix else effect

    # ------------------------------------------------------------------ live location

    async def _live(self, effect: LivePosition, where: Target) -> None:
        ctx, msg = self.ctx, self.message
        key = live_share_key(msg.chat.jid, msg.sender.jid)
        share = await ctx.messages.latest_acting_on(ctx.integration_id, key, kind="live")
        now = time.time()
        running = (
            share is not None
            and share.conversation_id == where.conversation_id
            and share.created_at > now - LIVE_SHARE_SECONDS
            and await ctx.messages.latest_acting_on(ctx.integration_id, share.wa_message_id, kind="live_end")
            is None
        )
        if share is None or not running:
            start = CreateMessage(
                content=effect.started, reply_to=effect.reply_to, quote=effect.quote, kind="live", target=key
            )
            await self._create(self._decorated(start), where)
            return
        if not effect.ended:
            last = await ctx.messages.latest_acting_on(
                ctx.integration_id, share.wa_message_id, kind="live_update"
            )
            if now - (last or share).created_at < self.live_interval:
                # the agent saw a position of this share a moment ago: mapped, not shown
                await self.record(
                    None,
                    where.conversation_id,
                    state="skipped",
                    kind="live_update",
                    target=share.wa_message_id,
                )
                return
        line = CreateMessage(
            content=effect.update,
            reply_to=share.wa_message_id,
            kind="live_end" if effect.ended else "live_update",
            target=share.wa_message_id,
        )
        await self._create(self._decorated(line), where)

    # ------------------------------------------------------------------ delete

    async def _delete(self, effect: DeleteTarget, where: Target) -> None:
        target = await self._target_of(effect.target, where.conversation_id)
        if target is None or target.chatwoot_message_id is None:
            # never relayed (or relayed elsewhere): nothing of it to delete in this conversation
            await self.record(
                None, where.conversation_id, state="skipped", kind="revoke", target=effect.target
            )
            return
        try:
            await self.client.delete_message(where.conversation_id, target.chatwoot_message_id)
        except ChatwootNotFound:
            pass  # deleted in Chatwoot already
        except ChatwootValidationError as exc:
            # Chatwoot refused the delete: say so in the message's thread instead
            log.info(
                "delete refused: marked deleted",
                extra={"integration_id": self.ctx.integration_id, "error": str(exc)[:200]},
            )
            mark = CreateMessage(
                content="🚫 This message was deleted on WhatsApp",
                reply_to=effect.target,
                kind="revoke",
                target=effect.target,
            )
            await self._create(mark, where)
            return
        await self.ctx.messages.set_state(
            self.ctx.integration_id, target.wa_message_id, target.part, "deleted"
        )
        # no Chatwoot id of its own: the target's id stays the target's (agent quotes look it up)
        await self.record(None, where.conversation_id, kind="revoke", target=effect.target)

    async def _delete_quietly(self, conversation_id: int, message_id: int) -> None:
        try:
            await self.client.delete_message(conversation_id, message_id)
        except ChatwootNotFound:
            pass  # an agent or Chatwoot removed it already

    # ------------------------------------------------------------------ helpers

    async def _target_of(self, wa_id: str, conversation_id: int) -> MappedMessage | None:
        ctx = self.ctx
        found = await ctx.messages.find_wa_any(ctx.integration_id, wa_id)
        if found is None or not found.chatwoot_message_id or found.conversation_id != conversation_id:
            return None
        return found

    async def _adopt(self, conversation_id: int, source_id: str, kind: MapKind, target: str | None) -> bool:
        existing = await find_created(
            self.client, conversation_id, source_id, not_before=message_time(self.message.timestamp)
        )
        if existing is None:
            return False
        await self.record(existing.id, conversation_id, kind=kind, target=target)
        return True

    async def record(
        self,
        chatwoot_id: int | None,
        conversation_id: int | None,
        *,
        state: str = "done",
        kind: MapKind = "message",
        target: str | None = None,
    ) -> None:
        msg = self.message
        await self.ctx.messages.record(
            self.ctx.integration_id,
            wa_message_id=msg.id,
            chatwoot_message_id=chatwoot_id,
            conversation_id=conversation_id,
            chat_jid=msg.chat.jid,
            direction="in",
            state=state,
            seq=self.seq,
            kind=kind,
            target_wa_id=target,
            sender_jid=msg.sender.jid,
        )
        self._on_record(msg.id)
