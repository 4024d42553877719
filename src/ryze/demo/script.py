"""The scripted opening conversation of `ryze demo`: a contact writes, an agent answers in the
Chatwoot emulator, the contact replies. Each step waits until its message is visible on the other
side, so when the script ends the person sees the relay working both ways in both pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ryze.devstack import LocalSystem

from .phone import PhoneChat

INCOMING, OUTGOING = 0, 1  # Chatwoot's message_type values


@dataclass(frozen=True)
class Step:
    who: Literal["contact", "agent"]
    text: str


OPENING: tuple[Step, ...] = (
    Step("contact", "Hi! I ordered a blue mug last week. Any news on the delivery?"),
    Step("agent", "Hello Ana! It left our warehouse this morning, you should have it tomorrow."),
    Step("contact", "Great, thank you!"),
)


class ScriptError(RuntimeError):
    pass


async def find_conversation(system: LocalSystem, inbox_id: int) -> dict[str, Any] | None:
    """The newest customer conversation of the demo inbox in the emulator, if any (the
    connection conversation, with the bot contact ``ryze-control:…``, is not one)."""
    for conv in await system.conversations():  # newest activity first
        sender = (conv.get("meta") or {}).get("sender") or {}
        if conv.get("inbox_id") == inbox_id and not str(sender.get("identifier") or "").startswith(
            "ryze-control:"
        ):
            return conv
    return None


async def run_script(
    system: LocalSystem,
    phone: PhoneChat,
    inbox_id: int,
    say: Callable[[Step], None],
    steps: tuple[Step, ...] = OPENING,
    *,
    timeout: float = 30.0,
) -> int:
    """Play ``steps``; returns the emulator conversation id. ``say`` is called as each step lands."""
    conversation_id: int | None = None
    for step in steps:
        if step.who == "contact":
            await phone.send(step.text)
            conversation_id = await _wait_in_chatwoot(system, inbox_id, step.text, timeout)
        else:
            if conversation_id is None:
                raise ScriptError("the script must start with the contact: there is no conversation yet")
            await system.agent_reply(conversation_id, step.text)
            await _wait_on_phone(system, phone, step.text, timeout)
        say(step)
    if conversation_id is None:
        raise ScriptError("the script had no steps")
    return conversation_id


async def _wait_in_chatwoot(system: LocalSystem, inbox_id: int, text: str, timeout: float) -> int:
    async def landed() -> int:  # 0 (falsy) = not yet; conversation ids start at 1
        conv = await find_conversation(system, inbox_id)
        if conv is None:
            return 0
        for msg in await system.messages(int(conv["id"])):
            if msg.get("message_type") == INCOMING and msg.get("content") == text:
                return int(conv["id"])
        return 0

    return await system.wait_for(landed, timeout=timeout, what="the contact's message in Chatwoot")


async def _wait_on_phone(system: LocalSystem, phone: PhoneChat, text: str, timeout: float) -> None:
    async def landed() -> bool:
        return await phone.has_business_message(text)

    await system.wait_for(landed, timeout=timeout, what="the agent's reply on the phone")
