"""Reading the emulator's state the way an agent would see it."""

from __future__ import annotations

from ryze.emulator import RunningEmulator
from ryze.emulator.state import Conversation, Message


def conversations(emu: RunningEmulator, inbox_id: int) -> list[Conversation]:
    return sorted(
        (c for c in emu.emulator.state.conversations.values() if c.inbox_id == inbox_id), key=lambda c: c.id
    )


def messages(
    emu: RunningEmulator, conversation: Conversation, *, include_private: bool = True
) -> list[Message]:
    found = emu.emulator.state.messages_of(conversation)
    return [m for m in found if include_private or not m.private]


def inbox_messages(emu: RunningEmulator, inbox_id: int) -> list[Message]:
    """Every non-activity message of the inbox, in creation order."""
    found = (
        m for m in emu.emulator.state.messages.values() if m.inbox_id == inbox_id and m.message_type != 2
    )
    return sorted(found, key=lambda m: m.id)


def contents(emu: RunningEmulator, inbox_id: int, *, message_type: int | None = None) -> list[str | None]:
    return [
        m.content
        for m in inbox_messages(emu, inbox_id)
        if not m.private and m.message_type != 2 and (message_type is None or m.message_type == message_type)
    ]


def contents_per_chat(emu: RunningEmulator, inbox_id: int) -> dict[str, list[str | None]]:
    """Public, non-activity message contents of each chat (keyed by its contact inbox source id)."""
    out: dict[str, list[str | None]] = {}
    for conv in conversations(emu, inbox_id):
        source = emu.emulator.state.contact_inboxes[conv.contact_inbox_id].source_id
        out.setdefault(source, []).extend(
            m.content for m in emu.emulator.state.messages_of(conv) if not m.private and m.message_type != 2
        )
    return out
