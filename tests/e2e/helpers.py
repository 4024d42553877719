"""What the end-to-end tests look at: the conversations and messages of one inbox in the emulator."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from ryze.devstack import EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_TOKEN, LocalSystem

INCOMING, OUTGOING = 0, 1


async def inbox_conversations(system: LocalSystem, inbox_id: int) -> list[dict[str, Any]]:
    return [c for c in await system.conversations() if c["inbox_id"] == inbox_id]


async def wait_conversation(system: LocalSystem, inbox_id: int, *, count: int = 1) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]]:
        convs = await inbox_conversations(system, inbox_id)
        return convs if len(convs) >= count else []

    return await system.wait_for(ready, what=f"{count} conversation(s) in inbox {inbox_id}")


async def wait_messages(
    system: LocalSystem,
    conversation_id: int,
    count: int,
    *,
    message_type: int | None = INCOMING,
    timeout: float = 30,
) -> list[dict[str, Any]]:
    """Wait until the conversation holds ``count`` messages of that type; return them in order."""

    async def ready() -> list[dict[str, Any]]:
        msgs = [
            m
            for m in await system.messages(conversation_id)
            if message_type is None or m["message_type"] == message_type
        ]
        return msgs if len(msgs) >= count else []

    return await system.wait_for(
        ready, timeout=timeout, what=f"{count} messages in conversation {conversation_id}"
    )


async def sent_messages(system: LocalSystem, instance: str) -> list[dict[str, Any]]:
    """The messages ``instance`` sent (its outbox also holds read receipts and presences: an
    agent's reply marks the customer's messages read)."""
    return [item for item in await system.outbox(instance) if item["action"] == "message"]


async def wait_outbox(
    system: LocalSystem, instance: str, count: int, *, timeout: float = 30
) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]]:
        out = await sent_messages(system, instance)
        return out if len(out) >= count else []

    return await system.wait_for(ready, timeout=timeout, what=f"{count} messages sent by {instance}")


async def wait_webhook_answered(system: LocalSystem, event: str, conversation_id: int) -> None:
    """Wait until the bridge has answered 200 to Chatwoot's ``event`` webhook for a conversation.

    The bridge applies a conversation's status before it answers, so after this the next WhatsApp
    message is routed with that status in mind (a message racing the webhook could not be).
    """

    async def answered() -> bool:
        _, deliveries = await system.call("GET", f"{system.emulator_url}/_emulator/webhooks")
        return any(
            d["event"] == event and d["status"] == 200 and d["payload"].get("id") == conversation_id
            for d in deliveries
        )

    await system.wait_for(answered, what=f"the bridge's answer to {event} of conversation {conversation_id}")


async def chatwoot_inbox(system: LocalSystem, inbox_id: int) -> tuple[int, Any]:
    """GET the inbox through Chatwoot's own API, as the account's administrator."""
    url = f"{system.emulator_url}/api/v1/accounts/{EMULATOR_ACCOUNT_ID}/inboxes/{inbox_id}"
    return await system.call("GET", url, headers={"api_access_token": EMULATOR_ADMIN_TOKEN})


async def add_fault(system: LocalSystem, **rule: Any) -> None:
    await system.call("POST", f"{system.emulator_url}/_emulator/faults", json=rule, expect=200)


async def faults_fired(system: LocalSystem) -> int:
    _, rules = await system.call("GET", f"{system.emulator_url}/_emulator/faults", expect=200)
    return sum(int(rule["fired"]) for rule in rules)


async def clear_faults(system: LocalSystem) -> None:
    await system.call("DELETE", f"{system.emulator_url}/_emulator/faults", expect=200)


async def redeliver_webhook(system: LocalSystem, inbox_id: int, chatwoot_message_id: int) -> int:
    """Deliver the ``message_created`` webhook of a message once more, signed as Chatwoot signs it
    (Chatwoot issue #11901: duplicate deliveries happen)."""
    _, deliveries = await system.call("GET", f"{system.emulator_url}/_emulator/webhooks")
    original = next(
        d for d in deliveries if d["event"] == "message_created" and d["message_id"] == chatwoot_message_id
    )
    _, inbox = await chatwoot_inbox(system, inbox_id)
    body = json.dumps(original["payload"])
    ts = str(int(time.time()))
    signature = hmac.new(inbox["secret"].encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Chatwoot-Timestamp": ts,
        "X-Chatwoot-Signature": f"sha256={signature}",
        "X-Chatwoot-Delivery": "redelivery-1",
    }
    async with system.http.post(original["url"], data=body, headers=headers) as resp:
        return resp.status
