"""Messages that act on another one: reaction, edit, revoke.

Edits are shown as a reply to the edited message marked as an edit: Chatwoot's API cannot change
a message's content (``MessagesController#update`` of an API inbox only sets the status through
``Messages::StatusUpdateService``, app/controllers/api/v1/accounts/conversations/messages_controller.rb),
and the reply keeps the original visible, as WhatsApp's "edited" history does.
"""

from __future__ import annotations

from ryze.bridge.relay.inbound.effects import CreateMessage, DeleteTarget, Effect, React, Skip
from ryze.bridge.relay.markdown import whatsapp_to_chatwoot
from ryze.protocol import WAMessage


class ReactionConverter:
    def convert(self, message: WAMessage) -> Effect:
        if message.reaction is None:
            return Skip("reaction without a target")
        return React(target=message.reaction.messageId, emoji=message.reaction.emoji)


class EditConverter:
    def convert(self, message: WAMessage) -> Effect:
        if message.edit is None:
            return Skip("edit without a target")
        target = message.edit.messageId
        return CreateMessage(
            content=f"✏️ Edited: {whatsapp_to_chatwoot(message.edit.text)}",
            reply_to=target,
            kind="edit",
            target=target,
        )


class RevokeConverter:
    def convert(self, message: WAMessage) -> Effect:
        if message.revoke is None:
            return Skip("revoke without a target")
        return DeleteTarget(target=message.revoke.messageId)
