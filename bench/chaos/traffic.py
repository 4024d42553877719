"""The people involved, as the harness plays them: contacts writing from WhatsApp (the simulated
phone network, which redelivers whatever RyzeAPI did not acknowledge, as WhatsApp's servers do),
agents replying in Chatwoot (the emulator's dashboard routes, which no fault touches), and two
observers noting what arrived where and when.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import emulator_messages_after, last_message_id
from ryze.devstack import LocalSystem

INCOMING, OUTGOING = 0, 1
RETRY_INITIAL, RETRY_MAX = 0.2, 1.0


@dataclass(frozen=True)
class Chat:
    key: str  # "<instance>/<number>"
    instance: str
    number: str
    conversation_id: int

    @property
    def jid(self) -> str:
        return f"{self.number}@s.whatsapp.net"


async def open_chats(system: LocalSystem, instances: int, contacts: int) -> list[Chat]:
    """Create the instances (with their Chatwoot inboxes) and one conversation per contact."""
    chats: list[Chat] = []
    for i in range(instances):
        name = f"chaos-{i}"
        created = await system.create_instance(name)
        inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
        numbers = [f"55119{i:02d}{c:06d}" for c in range(contacts)]
        await system.inject(name, [{"from": n, "text": "hello"} for n in numbers])

        async def ready(inbox: int = inbox_id) -> list[dict[str, Any]]:
            convs = [c for c in await system.conversations() if c["inbox_id"] == inbox]
            return convs if len(convs) >= contacts else []

        convs = await system.wait_for(ready, timeout=60, what=f"{contacts} conversations of {name}")
        by_number = {c["meta"]["sender"]["identifier"].split("@")[0]: int(c["id"]) for c in convs}
        chats += [Chat(f"{name}/{n}", name, n, by_number[n]) for n in numbers]
    return chats


@dataclass
class Flags:
    """What the running fault asks of the traffic itself."""

    duplicate_inbound: bool = False  # the phone network delivers every message twice


@dataclass
class Sent:
    inbound: dict[str, list[str]] = field(default_factory=dict)
    outbound: dict[str, list[str]] = field(default_factory=dict)
    outbound_ids: dict[int, str] = field(default_factory=dict)  # Chatwoot message id -> token
    undelivered: list[str] = field(default_factory=list)  # gave up within the bound (counted lost)
    refused: int = 0  # deliveries RyzeAPI did not acknowledge (the phone network delivered again)
    agent_retries: int = 0  # agent messages Chatwoot's dashboard routes did not take at first


async def _retrying(call: Callable[[], Awaitable[None]], *, deadline: float) -> bool:
    """Call until it succeeds or the deadline passes (bounded); False when it never succeeded."""
    delay = RETRY_INITIAL
    while True:
        try:
            await call()
            return True
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError):
            if time.monotonic() + delay > deadline:
                return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


class Traffic:
    """Messages both ways in every chat, one after another per chat, paced over the fault."""

    def __init__(
        self, system: LocalSystem, chats: list[Chat], prefix: str, per_chat: int, pace: float
    ) -> None:
        self.system = system
        self.chats = chats
        self.prefix = prefix
        self.per_chat = per_chat
        self.pace = pace
        self.flags = Flags()
        self.sent = Sent()

    def token(self, direction: str, chat_index: int, n: int) -> str:
        return f"{self.prefix}-{direction}-c{chat_index}-{n}"

    async def run(self, deadline: float) -> None:
        lanes = []
        for index, chat in enumerate(self.chats):
            self.sent.inbound[chat.key] = []
            self.sent.outbound[chat.key] = []
            lanes.append(self._inbound_lane(index, chat, deadline))
            lanes.append(self._outbound_lane(index, chat, deadline))
        await asyncio.gather(*lanes)

    async def _inject(self, chat: Chat, message: dict[str, Any]) -> None:
        try:
            status, body = await self.system.call(
                "POST",
                f"{self.system.api_url}/_simulator/{chat.instance}/messages",
                token=self.system.account_token,
                json={"messages": [message]},
            )
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.sent.refused += 1  # RyzeAPI unreachable: WhatsApp keeps the message and retries
            raise
        if status != 200:
            self.sent.refused += 1
            # Not acknowledged (503 "deliver again", a 500 of failing storage): WhatsApp redelivers.
            raise RuntimeError(f"delivery not acknowledged: {status} {body}")

    async def _inbound_lane(self, index: int, chat: Chat, deadline: float) -> None:
        for n in range(self.per_chat):
            token = self.token("in", index, n)
            self.sent.inbound[chat.key].append(token)
            message = {"id": f"3EB0{uuid.uuid4().hex[:16].upper()}", "from": chat.number, "text": token}
            copies = 2 if self.flags.duplicate_inbound else 1
            for _ in range(copies):
                if not await _retrying(lambda m=message: self._inject(chat, m), deadline=deadline):
                    self.sent.undelivered.append(token)
                    break
            await asyncio.sleep(self.pace)

    async def _reply(self, chat: Chat, token: str) -> None:
        try:
            body = await self.system.agent_reply(chat.conversation_id, token)
        except Exception:
            self.sent.agent_retries += 1
            raise
        self.sent.outbound_ids[int(body["id"])] = token

    async def _outbound_lane(self, index: int, chat: Chat, deadline: float) -> None:
        for n in range(self.per_chat):
            token = self.token("out", index, n)
            self.sent.outbound[chat.key].append(token)
            if not await _retrying(lambda t=token: self._reply(chat, t), deadline=deadline):
                self.sent.undelivered.append(token)
            await asyncio.sleep(self.pace)


@dataclass
class Arrival:
    chat: str
    token: str
    at: float  # wall clock


class Observer:
    """Where each message arrived: Chatwoot (inbound) and the phone network (outbound)."""

    def __init__(self, system: LocalSystem, chats: list[Chat], outbox_log: Path, prefix: str) -> None:
        self.system = system
        self.prefix = prefix
        self._by_conversation = {c.conversation_id: c.key for c in chats}
        self._by_jid = {(c.instance, c.jid): c.key for c in chats}
        self._outbox_log = outbox_log
        self._offset = outbox_log.stat().st_size if outbox_log.exists() else 0
        self._after_id = 0
        self.inbound: list[Arrival] = []
        self.outbound: list[Arrival] = []
        self._http: aiohttp.ClientSession | None = None
        # The background poller and the settle loop both poll: two polls reading the same cursor
        # at once would count one batch twice (false duplicates), so one poll at a time.
        self._polling = asyncio.Lock()

    async def start(self, http: aiohttp.ClientSession) -> None:
        self._http = http
        self._after_id = await last_message_id(http, self.system)

    async def poll(self) -> None:
        async with self._polling:
            await self._poll()

    async def _poll(self) -> None:
        assert self._http is not None
        while True:
            batch = await emulator_messages_after(self._http, self.system, self._after_id, 5000)
            if not batch:
                break
            self._after_id = int(batch[-1]["id"])
            for m in batch:
                content = m.get("content") or ""
                if m["message_type"] != INCOMING or not content.startswith(self.prefix + "-"):
                    continue
                chat = self._by_conversation.get(m["conversation_id"], f"conversation {m['conversation_id']}")
                self.inbound.append(Arrival(chat, content, float(m["created_at"])))
        self._read_outbox()

    def _read_outbox(self) -> None:
        with self._outbox_log.open("rb") as journal:
            journal.seek(self._offset)
            data = journal.read()
        end = data.rfind(b"\n") + 1  # a line being written stays for the next poll
        self._offset += end
        for line in data[:end].splitlines():
            item = orjson.loads(line)
            text = item.get("text") or ""
            if item.get("action") != "message" or not text.startswith(self.prefix + "-"):
                continue
            chat = self._by_jid.get(
                (item["instance"], item.get("to")), f"{item['instance']} -> {item.get('to')}"
            )
            self.outbound.append(Arrival(chat, text, float(item.get("logged_at") or time.time())))

    async def failed_outbound(self, chats: list[Chat], sent: Sent) -> set[str]:
        """Agent messages Chatwoot shows as failed (a webhook it could not deliver, a send the
        bridge gave up on): the agent sees them, so they are not silent losses."""
        failed: set[str] = set()
        for chat in chats:
            for m in await self.system.messages(chat.conversation_id):
                if (
                    m["message_type"] == OUTGOING
                    and m.get("status") == "failed"
                    and m["id"] in sent.outbound_ids
                ):
                    failed.add(sent.outbound_ids[m["id"]])
        return failed
