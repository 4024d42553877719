"""A fake MessagingService for command tests: records sends, can be told to fail or to block."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from ryze.api.errors import ApiError


@dataclass
class Sent:
    action: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    id: str


@dataclass
class FakeMessaging:
    outbox: list[Sent] = field(default_factory=list)
    fail_with: Exception | None = None
    gate: asyncio.Event | None = None  # when set, sends wait for it
    read_fails_with: Exception | None = None  # mark_read alone raises it (the send before succeeds)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def _send(self, action: str, *args: Any, **kwargs: Any) -> Sent:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        sent = Sent(action, args, kwargs, f"WA{next(self._ids):04d}")
        self.outbox.append(sent)
        return sent

    async def send_text(self, *args: Any, **kwargs: Any) -> Sent:
        return await self._send("send_text", *args, **kwargs)

    async def send_media(self, *args: Any, **kwargs: Any) -> Sent:
        return await self._send("send_media", *args, **kwargs)

    async def react(self, *args: Any, **kwargs: Any) -> Sent:
        return await self._send("react", *args, **kwargs)

    async def edit(self, *args: Any, **kwargs: Any) -> Sent:
        return await self._send("edit", *args, **kwargs)

    async def revoke(self, *args: Any, **kwargs: Any) -> Sent:
        return await self._send("revoke", *args, **kwargs)

    async def mark_read(self, *args: Any, **kwargs: Any) -> None:
        if self.read_fails_with is not None:
            raise self.read_fails_with
        await self._send("mark_read", *args, **kwargs)

    async def presence(self, *args: Any, **kwargs: Any) -> None:
        await self._send("presence", *args, **kwargs)

    async def get_media(self, instance: str, message_id: str) -> tuple[bytes, str, str | None]:
        if message_id == "missing":
            raise ApiError(404, "Message not found")
        return b"\x89PNG-bytes", "image/png", "photo é.png"
