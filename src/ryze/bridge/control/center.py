"""One integration's connection conversation, assembled: the room, the connection watch, the
command handler, and the one task that runs agents' commands in order.

The runtime builds it; the webhook route asks :meth:`ControlCenter.owns` before classifying a
message (a message in the connection conversation is never relayed to WhatsApp) and hands it to
:meth:`ControlCenter.on_webhook`; the inbound relay's state lane calls :meth:`on_state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ryze.bridge.control.commands import CommandHandler, StatusLine
from ryze.bridge.control.conversation import ChatwootControlRoom
from ryze.bridge.control.instance import ControlUnavailable, InstanceLink
from ryze.bridge.control.ports import HistoryResync, SelfCheckRunner
from ryze.bridge.control.status_text import who
from ryze.bridge.control.store import ControlRoomStore
from ryze.bridge.control.watch import ConnectionWatch
from ryze.bridge.relay.context import CommandLink
from ryze.bridge.relay.outbound.webhook import parse_message
from ryze.chatwoot import ChatwootError
from ryze.chatwoot.port import ChatwootPort
from ryze.protocol import InstanceStateData

log = logging.getLogger(__name__)

MAX_QUEUED_COMMANDS = 32  # an agent types; more waiting than this is a flood, not commands
_SEEN_MEMORY = 256  # webhook ids handled (Chatwoot may deliver one twice)


class ControlCenter:
    def __init__(
        self,
        *,
        integration_id: str,
        instance: str,
        inbox_id: int,
        chatwoot: Callable[[], ChatwootPort],
        store: ControlRoomStore,
        link: CommandLink,
        relay_status: StatusLine,
        selfcheck: SelfCheckRunner | None = None,
        resync: HistoryResync | None = None,
        enabled: bool = True,
    ) -> None:
        self.integration_id = integration_id
        self.enabled = enabled  # False (BRIDGE_CONTROL_ROOM=false): no conversation is ever made
        self.room = ChatwootControlRoom(
            integration_id=integration_id,
            instance=instance,
            inbox_id=inbox_id,
            chatwoot=chatwoot,
            store=store,
        )
        self.watch = ConnectionWatch(self.room)
        self.instance = InstanceLink(link, integration_id)
        self.commands = CommandHandler(
            room=self.room,
            instance=self.instance,
            watch=self.watch,
            relay_status=relay_status,
            selfcheck=selfcheck,
            resync=resync,
        )
        self._queue: asyncio.Queue[str] = asyncio.Queue(MAX_QUEUED_COMMANDS)
        self._worker: asyncio.Task[None] | None = None
        self._greeter: asyncio.Task[None] | None = None
        self._seen: OrderedDict[int, None] = OrderedDict()

    # ------------------------------------------------------------------ webhooks

    async def owns(self, conversation_id: int) -> bool:
        """Is ``conversation_id`` the connection conversation? (Its row is read once, then cached.)"""
        if not self.enabled:
            return False
        known = self.room.known_conversation
        if known is None:
            known = (await self.room.state()).conversation_id
        return known == conversation_id

    def on_webhook(self, payload: dict[str, Any]) -> None:
        """A webhook of the connection conversation: an agent's message is a command; everything
        else (the bot's own posts, private notes, updates, deletions) is nothing to do."""
        message = parse_message(payload)
        if message is None or message.event != "message_created":
            return
        if message.private or message.message_type != "outgoing":
            return  # a note (agents may annotate), or the bot contact's own incoming post
        if self.room.posted(message.id) or message.id in self._seen:
            return
        self._seen[message.id] = None
        if len(self._seen) > _SEEN_MEMORY:
            self._seen.popitem(last=False)
        text = message.content.strip()
        if not text:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning(
                "too many commands waiting; one dropped", extra={"integration_id": self.integration_id}
            )
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name=f"control-{self.integration_id}")

    async def _run(self) -> None:
        while not self._queue.empty():
            text = self._queue.get_nowait()
            try:
                await self.commands.handle(text)
            except ChatwootError as exc:  # the answer could not be posted: nothing else to tell
                log.warning(
                    "a command's answer could not be posted",
                    extra={"integration_id": self.integration_id, "error": str(exc)},
                )
            except Exception:
                log.exception("a control command failed", extra={"integration_id": self.integration_id})

    # ------------------------------------------------------------------ link

    async def on_state(self, data: InstanceStateData) -> None:
        if self.enabled:
            await self.watch.on_state(data)

    def on_link_ready(self) -> None:
        """Opens the connection conversation the first time the link is up, so agents have a
        place to type ``qr`` before anything happened."""
        if self.enabled and (self._greeter is None or self._greeter.done()):
            self._greeter = asyncio.create_task(self._greet(), name=f"control-greet-{self.integration_id}")

    async def _greet(self) -> None:
        try:
            if (await self.room.state()).conversation_id is not None:
                return
            try:
                data = await self.instance.status()
                if data.state == "connected":
                    now = f"WhatsApp is connected as {who(data.number, data.name)}."
                else:
                    now = f"WhatsApp is {data.state.replace('_', ' ')}: type `qr` to link the phone."
            except ControlUnavailable as exc:
                now = f"The WhatsApp state is not known yet ({exc})."
            await self.room.post(
                f"👋 This is the connection conversation of WhatsApp instance {self.room.instance}. "
                f"Connection changes are posted here, and agents can type commands. {now} "
                "Type `help` for the commands."
            )
        except ChatwootError as exc:
            log.warning(
                "the connection conversation could not be opened",
                extra={"integration_id": self.integration_id, "error": str(exc)},
            )

    async def stop(self) -> None:
        for task in (self._worker, self._greeter):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
