"""Bridge commands: executed at most once per idempotency id, results stored and replayed.

A command id is claimed in ``chatwoot_commands`` before anything is sent. Then:

* a replay while the first execution is still running waits for that execution's result;
* a replay after it finished gets the stored result, and nothing is sent again;
* a final result (success, or a failure retrying cannot fix) is stored; a retryable failure
  (instance not connected, a transient error) releases the claim so the bridge's retry with the
  same id really runs again;
* a claim left "pending" by a crash is never re-executed (the message may already be out): it
  answers a non-retryable failure, which the bridge shows on the Chatwoot message.

Commands for one chat run in arrival order; different chats run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ryze.api.chatwoot.models import ChatwootCommandRow
from ryze.api.errors import ApiError
from ryze.api.services.messaging import MessagingService
from ryze.engines.base import EngineError
from ryze.protocol import (
    CommandAction,
    CommandFrame,
    EditParams,
    MarkReadParams,
    PresenceParams,
    ReactParams,
    ResultFrame,
    RevokeParams,
    SendMediaParams,
    SendTextParams,
)

log = logging.getLogger(__name__)

_CMD = cast(Table, ChatwootCommandRow.__table__)
SOURCE = "chatwoot"
INTERRUPTED = "command was interrupted by a RyzeAPI restart; whether it was sent is unknown"


def _wa_id(result: Any) -> str | None:
    value = getattr(result, "id", None)
    return value if isinstance(value, str) else None


def _chat_of(frame: CommandFrame) -> str:
    params = frame.params
    value = params.get("to") or params.get("chat") or ""
    return str(value)


class _ChatLocks:
    """One lock per (instance, chat), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class CommandRunner:
    def __init__(self, engine: AsyncEngine, messaging: MessagingService) -> None:
        self._engine = engine
        self._messaging = messaging
        self._inflight: dict[tuple[str, str], asyncio.Future[ResultFrame]] = {}
        self._chats = _ChatLocks()

    async def run(self, instance: str, frame: CommandFrame) -> ResultFrame:
        key = (instance, frame.id)
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[ResultFrame] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._run_once(instance, frame)
        except BaseException:
            # Cancelled (shutdown): waiters get a retryable failure rather than hanging.
            future.set_result(
                ResultFrame(id=frame.id, ok=False, error="RyzeAPI is shutting down", retryable=True)
            )
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    async def _run_once(self, instance: str, frame: CommandFrame) -> ResultFrame:
        try:
            stored = await self._claim(instance, frame.id)
        except Exception:
            log.exception("could not claim a command", extra={"instance": instance, "command_id": frame.id})
            return ResultFrame(
                id=frame.id, ok=False, error="RyzeAPI could not record the command", retryable=True
            )
        if stored is not None:
            return stored
        async with self._chats.hold((instance, _chat_of(frame))):
            result = await self._execute(instance, frame)
        try:
            if result.ok or not result.retryable:
                await self._finish(instance, frame.id, result)
            else:
                await self._release(instance, frame.id)
        except Exception:
            # The effect happened (or definitively failed) but could not be recorded; the claim
            # stays pending, so a replay answers "interrupted" instead of sending twice.
            log.exception(
                "could not store a command result", extra={"instance": instance, "command_id": frame.id}
            )
        return result

    async def _claim(self, instance: str, command_id: str) -> ResultFrame | None:
        """None when this call owns the execution; else the result to answer with."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(_CMD).values(
                        instance_name=instance,
                        command_id=command_id,
                        state="pending",
                        result="",
                        created_at=datetime.now(UTC),
                    )
                )
            return None
        except IntegrityError:
            pass
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_CMD.c.state, _CMD.c.result).where(
                        _CMD.c.instance_name == instance, _CMD.c.command_id == command_id
                    )
                )
            ).first()
        if row is None:  # released between our insert attempt and this read: run it
            return await self._claim(instance, command_id)
        if row[0] == "done":
            return ResultFrame.model_validate_json(row[1])
        return ResultFrame(id=command_id, ok=False, error=INTERRUPTED, retryable=False)

    async def _finish(self, instance: str, command_id: str, result: ResultFrame) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(_CMD)
                .where(_CMD.c.instance_name == instance, _CMD.c.command_id == command_id)
                .values(state="done", result=result.model_dump_json())
            )

    async def _release(self, instance: str, command_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(_CMD).where(_CMD.c.instance_name == instance, _CMD.c.command_id == command_id)
            )

    async def forget(self, instance: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(_CMD).where(_CMD.c.instance_name == instance))

    async def prune(self, older_than: timedelta) -> int:
        """Drop claims older than ``older_than`` (the bridge retries within minutes), including
        ones a crash left pending: nobody replays those any more."""
        cutoff = datetime.now(UTC) - older_than
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(_CMD).where(_CMD.c.created_at < cutoff))
        return int(result.rowcount or 0)

    async def _execute(self, instance: str, frame: CommandFrame) -> ResultFrame:
        try:
            params = frame.typed_params()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return ResultFrame(id=frame.id, ok=False, error=f"invalid params: {where}: {first['msg']}")
        try:
            wa_id = await self._dispatch(instance, frame, params)
        except ApiError as exc:
            # 503 not connected / 429 throttled / 5xx: trying later can work; other 4xx cannot.
            retryable = exc.status >= 500 or exc.status == 429
            return ResultFrame(id=frame.id, ok=False, error=exc.message, retryable=retryable)
        except EngineError as exc:
            return ResultFrame(id=frame.id, ok=False, error=exc.message, retryable=exc.retryable)
        except Exception as exc:
            log.exception("command failed", extra={"instance": instance, "command_id": frame.id})
            return ResultFrame(
                id=frame.id, ok=False, error=f"internal error: {type(exc).__name__}", retryable=True
            )
        return ResultFrame(id=frame.id, ok=True, wa_message_id=wa_id)

    async def _dispatch(self, instance: str, frame: CommandFrame, params: Any) -> str | None:
        m = self._messaging
        tag: dict[str, Any] = {"source": SOURCE, "command_id": frame.id}
        action = frame.action
        if action is CommandAction.SEND_TEXT:
            assert isinstance(params, SendTextParams)
            return _wa_id(await m.send_text(instance, params.to, params.text, reply_to=params.replyTo, **tag))
        if action is CommandAction.SEND_MEDIA:
            assert isinstance(params, SendMediaParams)
            sent = await m.send_media(
                instance,
                params.to,
                params.mediaType,
                url=params.url,
                mimetype=params.mimetype,
                file_name=params.fileName,
                caption=params.caption,
                is_voice=params.isVoice,
                reply_to=params.replyTo,
                **tag,
            )
            return _wa_id(sent)
        if action is CommandAction.REACT:
            assert isinstance(params, ReactParams)
            sent = await m.react(
                instance, params.chat, params.messageId, params.emoji, from_me=params.fromMe, **tag
            )
            return _wa_id(sent)
        if action is CommandAction.EDIT:
            assert isinstance(params, EditParams)
            return _wa_id(await m.edit(instance, params.chat, params.messageId, params.text, **tag))
        if action is CommandAction.REVOKE:
            assert isinstance(params, RevokeParams)
            return _wa_id(await m.revoke(instance, params.chat, params.messageId, **tag))
        if action is CommandAction.MARK_READ:
            assert isinstance(params, MarkReadParams)
            await m.mark_read(instance, params.chat, params.messageIds, sender=params.sender)
            return None
        assert isinstance(params, PresenceParams)
        await m.presence(instance, params.chat, params.state)
        return None
