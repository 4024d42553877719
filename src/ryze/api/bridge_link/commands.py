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

Cost: every command used to commit three transactions of its own (claim, the sent message, the
result), each several hops to the database driver's thread. Now the claims, releases and stored
failures of concurrent commands share one transaction per batch on a writer connection of their
own (group commit, the message store's pattern), and a successful send's ``done`` row is written
by the transaction that stores the sent message (``CommandRecorder``, a log writer of the event
bus): the common path costs one shared claim commit and nothing after the send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ryze.api.bridge_link.models import ChatwootCommandRow
from ryze.api.errors import ApiError, SentNotStored
from ryze.api.records import StoredMessage
from ryze.api.services import media as media_io
from ryze.api.services.messaging import MessagingService
from ryze.common.database import GroupCommitter, Transaction, write_lock
from ryze.engines.base import EngineError
from ryze.protocol import (
    CommandFrame,
    CommandParams,
    ConnectParams,
    EditParams,
    EventEnvelope,
    EventName,
    HistorySyncParams,
    InstanceParams,
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
# Chatwoot hands out attachment URLs before its storage serves them: keep trying for a while
# (the default of BRIDGE_MEDIA_RETRY_SECONDS).
BRIDGE_MEDIA_RETRY_SECONDS = 30.0

# Pending writes of the command committer, keyed (instance, command id).
_Key = tuple[str, str]


@dataclass(slots=True)
class _Claim:
    key: _Key


@dataclass(slots=True)
class _Finish:
    key: _Key
    result: str  # the ResultFrame JSON


@dataclass(slots=True)
class _Release:
    key: _Key


_Op = _Claim | _Finish | _Release
_AGAIN = object()  # a conflicting claim vanished before it could be read: claim again


def _wa_id(result: Any) -> str | None:
    value = getattr(result, "id", None)
    return value if isinstance(value, str) else None


def _chat_of(params: CommandParams) -> str:
    """The chat a command acts in: commands of one chat run one at a time, in arrival order.
    A history request acts on the whole account: it has a key of its own."""
    if isinstance(params, HistorySyncParams):
        return "\x00history"
    if isinstance(params, SendTextParams | SendMediaParams):
        return params.to
    if isinstance(params, ConnectParams | InstanceParams):
        return ""  # instance control (``control.py``); never executed here
    return params.chat


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
    def __init__(
        self,
        engine: AsyncEngine,
        messaging: MessagingService,
        *,
        media_retry_seconds: float = BRIDGE_MEDIA_RETRY_SECONDS,
    ) -> None:
        self._engine = engine
        self._media_retry_seconds = media_retry_seconds
        self._messaging = messaging
        self._inflight: dict[tuple[str, str], asyncio.Future[ResultFrame]] = {}
        self._chats = _ChatLocks()
        insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        # Built once (SQLAlchemy caches the compiled form); one multi-row INSERT per batch that
        # reports which claims were new.
        self._claim_stmt = (
            insert(_CMD)
            .on_conflict_do_nothing(index_elements=["instance_name", "command_id"])
            .returning(_CMD.c.instance_name, _CMD.c.command_id)
        )
        # The operations of unrelated commands share a transaction: one bad one must not fail the
        # others (a lost release would turn a message that never left into a permanent
        # "interrupted"), so a failed batch is written again op by op.
        self._committer: GroupCommitter[_Op, object] = GroupCommitter(
            engine, self._commit, name="chatwoot commands", on_failure="singly", abandoned=self._abandoned
        )
        # Commands this runner claimed and is executing: only their claims may be marked done by
        # the transaction of the message they send (CommandRecorder).
        self._running: set[_Key] = set()
        self.recorder = CommandRecorder(lambda instance, command_id: (instance, command_id) in self._running)

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
        key = (instance, frame.id)
        try:
            stored = await self._claim(instance, frame.id)
        except Exception:
            log.exception("could not claim a command", extra={"instance": instance, "command_id": frame.id})
            return ResultFrame(
                id=frame.id, ok=False, error="RyzeAPI could not record the command", retryable=True
            )
        if stored is not None:
            return stored
        self._running.add(key)
        try:
            params = _typed(frame)
            if isinstance(params, ResultFrame):  # invalid params: final, stored like any result
                result, recorded = params, False
            else:
                async with self._chats.hold((instance, _chat_of(params))):
                    result, recorded = await self._execute(instance, frame, params)
        finally:
            self._running.discard(key)
        if recorded:
            # The send receipt says the sent message's transaction stored this result (the
            # CommandRecorder): that is what a replay answers; nothing more to write.
            return result
        try:
            if result.ok or not result.retryable:
                await self._finish(instance, frame.id, result)
            else:
                await self._release(instance, frame.id)
        except Exception:
            # The result (or the release) could not be written, even op by op: the claim stays
            # pending, so a replay answers "interrupted" instead of risking a second send.
            log.exception(
                "could not store a command result", extra={"instance": instance, "command_id": frame.id}
            )
        return result

    # -- the command committer: claims, stored results and releases, group-committed -----------

    async def _claim(self, instance: str, command_id: str) -> ResultFrame | None:
        """None when this call owns the execution; else the result to answer with.

        Returns only once the claim is committed: a crash after this never sends twice."""
        while True:
            answer = await self._committer.submit(_Claim((instance, command_id)))
            if answer is not _AGAIN:  # else released meanwhile (PostgreSQL): claim it again
                return cast(ResultFrame | None, answer)

    async def _finish(self, instance: str, command_id: str, result: ResultFrame) -> None:
        await self._committer.submit(_Finish((instance, command_id), result.model_dump_json()))

    async def _release(self, instance: str, command_id: str) -> None:
        await self._committer.submit(_Release((instance, command_id)))

    async def _commit(self, transaction: Transaction, batch: list[_Op]) -> list[object]:
        """The committer's batch: each claim's answer (None: claimed by us), None for the rest."""
        answers = await self._write(transaction, batch)
        return [answers.get(op.key) if isinstance(op, _Claim) else None for op in batch]

    def _abandoned(self, op: _Op, answer: object) -> None:
        if isinstance(op, _Claim) and answer is None:
            # Claimed for a caller that is gone (cancelled at shutdown): nobody will run it, and a
            # pending claim would answer the bridge's retry "interrupted" for a message never sent.
            self._committer.submit_nowait(_Release(op.key))

    async def _write(self, transaction: Transaction, batch: list[_Op]) -> dict[_Key, object]:
        """One transaction for the batch; returns each claim's answer (None: claimed by us)."""
        finishes = [
            {"i": op.key[0], "c": op.key[1], "r": op.result} for op in batch if isinstance(op, _Finish)
        ]
        releases = [{"i": op.key[0], "c": op.key[1]} for op in batch if isinstance(op, _Release)]
        claims = list(dict.fromkeys(op.key for op in batch if isinstance(op, _Claim)))
        answers: dict[_Key, object] = {}
        async with transaction() as conn:
            # Results and releases first: a release followed by a new claim of the same id (the
            # bridge's retry) in one batch must leave the new claim in place.
            if finishes:
                await _mark_done(conn, finishes)
            if releases:
                await conn.execute(
                    delete(_CMD).where(
                        _CMD.c.instance_name == bindparam("i"),
                        _CMD.c.command_id == bindparam("c"),
                        _CMD.c.state == "pending",
                    ),
                    releases,
                )
            if claims:
                now = datetime.now(UTC)
                rows = [
                    {"instance_name": i, "command_id": c, "state": "pending", "result": "", "created_at": now}
                    for i, c in claims
                ]
                claimed = {(r[0], r[1]) for r in await conn.execute(self._claim_stmt, rows)}
                taken = [key for key in claims if key not in claimed]
                found: dict[_Key, tuple[str, str]] = {}
                if taken:
                    result = await conn.execute(
                        select(_CMD.c.instance_name, _CMD.c.command_id, _CMD.c.state, _CMD.c.result).where(
                            tuple_(_CMD.c.instance_name, _CMD.c.command_id).in_(taken)
                        )
                    )
                    found = {(r[0], r[1]): (r[2], r[3]) for r in result}
                for key in claims:
                    if key in claimed:
                        answers[key] = None
                    elif key not in found:
                        answers[key] = _AGAIN
                    elif found[key][0] == "done":
                        answers[key] = ResultFrame.model_validate_json(found[key][1])
                    else:
                        answers[key] = ResultFrame(id=key[1], ok=False, error=INTERRUPTED, retryable=False)
        return answers

    async def aclose(self) -> None:
        """Finish pending writes and release the writer's connection (before the engine is disposed)."""
        await self._committer.aclose()

    async def forget(self, instance: str) -> None:
        async with write_lock(self._engine), self._engine.begin() as conn:
            await conn.execute(delete(_CMD).where(_CMD.c.instance_name == instance))

    async def prune(self, older_than: timedelta) -> int:
        """Drop claims older than ``older_than`` (the bridge retries within minutes), including
        ones a crash left pending: nobody replays those any more."""
        cutoff = datetime.now(UTC) - older_than
        async with write_lock(self._engine), self._engine.begin() as conn:
            result = await conn.execute(delete(_CMD).where(_CMD.c.created_at < cutoff))
        return int(result.rowcount or 0)

    async def _execute(
        self, instance: str, frame: CommandFrame, params: CommandParams
    ) -> tuple[ResultFrame, bool]:
        """The command's result, and whether the send receipt says it is already stored."""
        try:
            sent = await self._dispatch(instance, frame, params)
        except SentNotStored as exc:
            # Out on WhatsApp: a retry would send it twice. The bridge maps it like any success.
            return ResultFrame(id=frame.id, ok=True, wa_message_id=exc.message_id), False
        except ApiError as exc:
            # 503 not connected / 429 throttled / 5xx: trying later can work; other 4xx cannot.
            retryable = exc.status >= 500 or exc.status == 429
            error = _for_agents(params, exc.message)
            return ResultFrame(id=frame.id, ok=False, error=error, retryable=retryable), False
        except EngineError as exc:
            return ResultFrame(id=frame.id, ok=False, error=exc.message, retryable=exc.retryable), False
        except Exception as exc:
            log.exception("command failed", extra={"instance": instance, "command_id": frame.id})
            failed = ResultFrame(
                id=frame.id, ok=False, error=f"internal error: {type(exc).__name__}", retryable=True
            )
            return failed, False
        if isinstance(sent, StoredMessage):
            for item in sent.logged:
                if isinstance(item, RecordedResult) and item.key == (instance, frame.id):
                    return item.result, True
        return ResultFrame(id=frame.id, ok=True, wa_message_id=_wa_id(sent)), False

    async def _dispatch(
        self, instance: str, frame: CommandFrame, params: CommandParams
    ) -> StoredMessage | None:
        """Run the typed command (the params' type is the action: ``COMMAND_PARAMS``)."""
        m = self._messaging
        tag: dict[str, Any] = {"source": SOURCE, "command_id": frame.id}
        match params:
            case SendTextParams():
                sent = await m.send_text(instance, params.to, params.text, reply_to=params.replyTo, **tag)
                await self._mark_read_after(instance, frame, params.to, params.markRead)
                return sent
            case SendMediaParams():
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
                    url_retry_seconds=self._media_retry_seconds,
                    **tag,
                )
                await self._mark_read_after(instance, frame, params.to, params.markRead)
                return sent
            case ReactParams():
                return await m.react(
                    instance, params.chat, params.messageId, params.emoji, from_me=params.fromMe, **tag
                )
            case EditParams():
                return await m.edit(instance, params.chat, params.messageId, params.text, **tag)
            case RevokeParams():
                return await m.revoke(instance, params.chat, params.messageId, **tag)
            case MarkReadParams():
                await m.mark_read(instance, params.chat, params.messageIds, sender=params.sender)
                return None
            case PresenceParams():
                await m.presence(instance, params.chat, params.state)
                return None
            case HistorySyncParams():
                await m.request_history(instance, days=params.days, count=params.count)
                return None
            case ConnectParams() | InstanceParams():
                raise ApiError(400, f"{frame.action.value} is instance control, not a message command")

    async def _mark_read_after(
        self, instance: str, frame: CommandFrame, chat: str, message_ids: list[str] | None
    ) -> None:
        """A send's ``markRead``: the customer's messages its reply answers, read on WhatsApp.

        Best effort, like the ``mark_read`` command it replaces (one frame and one result instead
        of two commands): the message is out, so the send's result stays a success whatever
        happens here, and a failure is logged, never retried (a missed blue tick is no loss)."""
        if not message_ids:
            return
        try:
            await self._messaging.mark_read(instance, chat, message_ids)
        except (ApiError, EngineError) as exc:
            log.warning(
                "read mark after a send failed",
                extra={"instance": instance, "command_id": frame.id, "error": str(exc)[:300]},
            )


def _for_agents(params: CommandParams, message: str) -> str:
    """The failure as the agent reads it on the Chatwoot message (``external_error``).

    The messaging service words its errors for the public API (``mediaUrl``); a bridge command's
    attachment is the agent's upload, so say which one and what to do."""
    if isinstance(params, SendMediaParams) and message.startswith(media_io.DOWNLOAD_FAILED):
        name = params.fileName or params.url.rsplit("/", 1)[-1] or "the attachment"
        detail = message[len(media_io.DOWNLOAD_FAILED) :].strip(": ")
        return (
            f"The attachment {name} could not be downloaded from Chatwoot ({detail}): check that "
            "Chatwoot's storage serves it, then send it again"
        )
    return message


def _typed(frame: CommandFrame) -> CommandParams | ResultFrame:
    """The frame's params as the action's model, or the final failure that says what is wrong."""
    try:
        return frame.typed_params()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ResultFrame(id=frame.id, ok=False, error=f"invalid params: {where}: {first['msg']}")


async def _mark_done(conn: AsyncConnection, rows: list[dict[str, str]]) -> None:
    """Store final results (``i`` instance, ``c`` command id, ``r`` result JSON) of pending claims."""
    await conn.execute(
        update(_CMD)
        .where(
            _CMD.c.instance_name == bindparam("i"),
            _CMD.c.command_id == bindparam("c"),
            _CMD.c.state == "pending",
        )
        .values(state="done", result=bindparam("r")),
        rows,
    )


@dataclass(frozen=True, slots=True)
class RecordedResult:
    """The recorder's item: a command's result, written with the message it sent."""

    key: _Key  # (instance, command id)
    result: ResultFrame


class CommandRecorder:
    """Stores a successful send's result in the transaction that stores the message it sent.

    An ``EventBus`` log writer (see ``ryze.api.events.LogWriter``): the message store calls it for
    each new message in its group commit. A message whose origin is a command this runner is
    executing (``is_running``) marks that command ``done`` with ``{ok: true, wa_message_id: <the
    message id>}``, the result the command answers; message row and stored result commit together,
    so after a crash either both exist (a replay answers the result) or neither (the claim is still
    pending and a replay answers "interrupted"). The item comes back to the runner in the sent
    message's receipt (``StoredMessage.logged``), and the runner then skips its own result write.
    """

    def __init__(self, is_running: Callable[[str, str], bool]) -> None:
        self._is_running = is_running

    def prepare(self, instance: str, envelope: EventEnvelope) -> RecordedResult | None:
        if envelope.event is not EventName.MESSAGE_EXCHANGE:
            return None
        message = envelope.data.get("message")
        if not isinstance(message, dict) or message.get("source") != SOURCE:
            return None
        command_id = message.get("commandId")
        if not isinstance(command_id, str) or not self._is_running(instance, command_id):
            return None
        return RecordedResult(
            (instance, command_id), ResultFrame(id=command_id, ok=True, wa_message_id=str(message["id"]))
        )

    def lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        # The claim of a running command is written only by its own run here; prune and forget
        # may delete it meanwhile, and the update then matches nothing: nothing to serialise.
        return contextlib.nullcontext()

    async def write(self, conn: AsyncConnection, items: list[RecordedResult]) -> None:
        await _mark_done(
            conn, [{"i": r.key[0], "c": r.key[1], "r": r.result.model_dump_json()} for r in items]
        )

    def committed(self, state: None) -> None:
        """The results are in the sent messages' receipts: nothing to keep here."""

    def rolled_back(self, state: None) -> None:
        """Nothing was stored: the run writes its result itself, as without the recorder."""
