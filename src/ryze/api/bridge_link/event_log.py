"""The durable per-instance event log behind the bridge link.

``append`` returns only after the event is committed with its seq, so an event is never offered
to the bridge before it would survive a crash. One group committer (``ryze.common.database``) owns
every write (appends, ack pruning, purges): it drains whatever is queued into one transaction,
which turns thousands of concurrent appends per second into a few dozen commits, and seqs are
handed out in commit order so a reader never sees seq N+1 before N.

Seqs are per instance, strictly increasing and never reused (the cursor row outlives the log rows).
Acknowledged events are deleted, so the rows present for an instance are exactly its unacked events.

Messages do not go through ``append``: the message store's group committer writes their events in
the message's own transaction (``EventLogWriter``, an ``EventBus`` log writer), so a crash cannot
keep a message without its event. Both writers share the seq bookkeeping below and take turns on
``_seq_lock`` (held from before the transaction until the cursors and tails are updated), so seqs
stay strictly increasing in commit order.

Single-writer assumption: one RyzeAPI process per database (the seq cache lives in memory).

Reads on the hot path come from memory: while a link listens to an instance, the rows this process
commits for it are also kept in a bounded in-memory tail (dropped as they are acked), and a read
that the tail fully covers never touches the database. Without this, every commit woke every link
into its own ``SELECT`` (a pool checkout each, overflow connections and their aiosqlite threads
opened and closed under load). The writer keeps one connection of its own for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ryze.api.bridge_link.models import ChatwootEventCursorRow, ChatwootEventRow
from ryze.common.database import GroupCommitter, Transaction, write_lock
from ryze.protocol import EventEnvelope

log = logging.getLogger(__name__)

_LOG = cast(Table, ChatwootEventRow.__table__)
_CUR = cast(Table, ChatwootEventCursorRow.__table__)

Listener = Callable[[], None]


@dataclass(slots=True, eq=False)
class _Append:
    instance: str
    payload: str


@dataclass(slots=True)
class _Prune:
    instance: str
    seqs: list[int] = field(default_factory=list)
    upto: int | None = None  # delete every seq <= upto
    purge: bool = False  # delete the instance's whole log


_Op = _Append | _Prune


@dataclass(slots=True)
class _Written:
    """What a transaction appended, applied to the in-memory state once it committed."""

    assigned: list[tuple[_Append, int]] = field(default_factory=list)
    new_cursors: dict[str, int] = field(default_factory=dict)  # instance -> its last seq now
    first_seq: dict[str, int] = field(default_factory=dict)  # instance -> its cursor before


TAIL_LIMIT = 1024  # rows kept in memory per listened instance (the link's window is 256)


@dataclass(slots=True)
class _Tail:
    """Rows committed by this process for one instance, in seq order. Authoritative above
    ``floor``: every row of the instance with a seq > floor is in ``rows``."""

    floor: int
    rows: dict[int, str] = field(default_factory=dict)

    def trim(self) -> None:
        while len(self.rows) > TAIL_LIMIT:
            seq = next(iter(self.rows))
            del self.rows[seq]
            self.floor = seq


class EventLog:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = 1000) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._committer: GroupCommitter[_Op, int | None] = GroupCommitter(
            engine, self._commit, name="chatwoot event log", max_batch=max_batch
        )
        self._started = False
        self._cursors: dict[str, int] = {}  # instance -> last seq committed (cache)
        self._cursor_rows: set[str] = set()  # instances whose cursor row exists
        self._listeners: dict[str, Listener] = {}
        # Held by every transaction that assigns seqs or prunes (this writer's and the message
        # store's), before the write lock, until the in-memory state reflects the commit.
        self._seq_lock = asyncio.Lock()
        self._tails: dict[str, _Tail] = {}  # listened instances only

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Accept acks (fire-and-forget prunes); appends and purges are accepted at any time."""
        self._started = True

    async def stop(self) -> None:
        """Finish what is queued, then stop taking acks. An append after this still commits
        (sessions may still emit during shutdown): dropping the event would lose it."""
        self._started = False
        await self._committer.aclose()

    # -- writes ---------------------------------------------------------------------------------

    async def append(self, instance: str, payload: str) -> int:
        """Commit ``payload`` (the envelope JSON) to the instance's log; returns its seq."""
        return cast(int, await self._committer.submit(_Append(instance, payload)))

    def ack(self, instance: str, seq: int) -> None:
        """Prune an acknowledged event. Fire-and-forget: a lost prune (or an ack arriving while
        stopped) only means a redundant replay, which the bridge's watermark and mapping dedupe."""
        self.ack_many(instance, [seq])

    def ack_many(self, instance: str, seqs: list[int]) -> None:
        """Prune several acknowledged events (an ``acks`` frame) as one queued operation, so the
        writer handles a frame's worth of acks at the cost of one. Fire-and-forget, as ``ack``."""
        if self._started and seqs:
            self._committer.submit_nowait(_Prune(instance, seqs=list(seqs)))

    async def prune_upto(self, instance: str, upto: int) -> None:
        await self._committer.submit(_Prune(instance, upto=upto))

    async def purge(self, instance: str) -> None:
        """Forget every pending event of an instance (its integration or the instance is gone)."""
        await self._committer.submit(_Prune(instance, purge=True))

    async def purge_orphans(self, keep: set[str]) -> int:
        """Drop the logs of instances without an integration (left by a crash between removing
        an integration and purging its log). Start-up only: nothing is activating then."""
        async with write_lock(self._engine), self._engine.begin() as conn:
            names = [r[0] for r in await conn.execute(select(_LOG.c.instance_name).distinct())]
            orphans = [n for n in names if n not in keep]
            for name in orphans:
                await conn.execute(delete(_LOG).where(_LOG.c.instance_name == name))
        for name in orphans:
            tail = self._tails.get(name)
            if tail is not None:
                tail.rows.clear()
        return len(orphans)

    # -- reads ----------------------------------------------------------------------------------

    async def read(self, instance: str, *, after: int, limit: int) -> list[tuple[int, str]]:
        tail = self._tails.get(instance)
        if tail is not None and after >= tail.floor:
            out: list[tuple[int, str]] = []
            if limit <= 0:
                return out
            for seq, payload in tail.rows.items():
                if seq > after:
                    out.append((seq, payload))
                    if len(out) >= limit:
                        break
            return out
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(_LOG.c.seq, _LOG.c.payload)
                .where(_LOG.c.instance_name == instance, _LOG.c.seq > after)
                .order_by(_LOG.c.seq)
                .limit(limit)
            )
            return [(int(r[0]), r[1]) for r in rows]

    async def stats(self, instance: str, *, after: int) -> tuple[int, int]:
        """(last seq handed out, number of unacked events with seq > after)."""
        async with self._engine.connect() as conn:
            last = await self._load_cursor(conn, instance)
            pending = await conn.scalar(
                select(func.count()).where(_LOG.c.instance_name == instance, _LOG.c.seq > after)
            )
        return last, int(pending or 0)

    async def unacked_total(self) -> int:
        """Unacked events across every instance (the rows present are exactly those): for metrics."""
        async with self._engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(_LOG)) or 0)

    # -- notifications --------------------------------------------------------------------------

    def listen(self, instance: str, listener: Listener) -> None:
        """Call ``listener`` after each commit that added events for ``instance`` (one per link)."""
        self._listeners[instance] = listener

    def unlisten(self, instance: str, listener: Listener) -> None:
        if self._listeners.get(instance) is listener:
            del self._listeners[instance]
            self._tails.pop(instance, None)

    # -- the writer -----------------------------------------------------------------------------

    async def _load_cursor(self, conn: AsyncConnection, instance: str) -> int:
        if instance in self._cursors:
            return self._cursors[instance]
        value = await conn.scalar(select(_CUR.c.last_seq).where(_CUR.c.instance_name == instance))
        if value is None:
            return 0
        return int(value)

    async def _commit(self, transaction: Transaction, batch: list[_Op]) -> list[int | None]:
        """One transaction for the batch: each append's seq, None for each prune."""
        appends = [op for op in batch if isinstance(op, _Append)]
        prunes = [op for op in batch if isinstance(op, _Prune)]
        async with self._seq_lock:
            written = _Written()
            try:
                async with transaction() as conn:
                    # Prunes first: a purge in the same batch as later appends must not eat them.
                    await self._apply_prunes(conn, prunes)
                    written = await self._write_appends(conn, appends)
            except Exception:
                self._rolled_back(written)
                for op in appends:
                    self._cursors.pop(op.instance, None)  # reloaded from the database next time
                raise
            self._committed(written, prunes)
        seqs: dict[int, int] = {id(op): seq for op, seq in written.assigned}
        return [seqs[id(op)] if isinstance(op, _Append) else None for op in batch]

    async def _write_appends(self, conn: AsyncConnection, appends: list[_Append]) -> _Written:
        """Assign seqs and write the rows and cursors of ``appends`` in ``conn``'s transaction.
        The caller holds ``_seq_lock`` until ``_committed`` or ``_rolled_back``."""
        written = _Written()
        new_cursors, first_seq = written.new_cursors, written.first_seq
        for op in appends:
            if op.instance not in new_cursors:
                if op.instance not in self._cursors:
                    value = await conn.scalar(
                        select(_CUR.c.last_seq).where(_CUR.c.instance_name == op.instance)
                    )
                    if value is not None:
                        self._cursor_rows.add(op.instance)
                    self._cursors[op.instance] = int(value or 0)
                new_cursors[op.instance] = first_seq[op.instance] = self._cursors[op.instance]
            new_cursors[op.instance] += 1
            written.assigned.append((op, new_cursors[op.instance]))
        if written.assigned:
            await conn.execute(
                insert(_LOG),
                [
                    {"instance_name": op.instance, "seq": seq, "payload": op.payload}
                    for op, seq in written.assigned
                ],
            )
        # One executemany per kind: a per-instance statement would cost a round trip
        # each and dominate the batch.
        updates = [{"k": inst, "v": last} for inst, last in new_cursors.items() if inst in self._cursor_rows]
        inserts = [
            {"instance_name": inst, "last_seq": last}
            for inst, last in new_cursors.items()
            if inst not in self._cursor_rows
        ]
        if updates:
            await conn.execute(
                update(_CUR).where(_CUR.c.instance_name == bindparam("k")).values(last_seq=bindparam("v")),
                updates,
            )
        if inserts:
            await conn.execute(insert(_CUR), inserts)
        return written

    def _rolled_back(self, written: _Written) -> None:
        # Nothing of this transaction is committed: forget cached cursors we may have advanced.
        for instance in written.new_cursors:
            self._cursors.pop(instance, None)

    def _committed(self, written: _Written, prunes: list[_Prune]) -> None:
        """Mirror a commit into memory, resolve the appends, then wake the listeners."""
        self._update_tails(prunes, written.assigned, written.first_seq)
        for instance, last in written.new_cursors.items():
            self._cursors[instance] = last
            self._cursor_rows.add(instance)
        for instance in written.new_cursors:
            listener = self._listeners.get(instance)
            if listener is not None:
                listener()

    def _update_tails(
        self, prunes: list[_Prune], assigned: list[tuple[_Append, int]], first_seq: dict[str, int]
    ) -> None:
        """Mirror a committed batch into the in-memory tails (same order as the SQL: prunes first)."""
        for p in prunes:
            tail = self._tails.get(p.instance)
            if tail is None:
                continue
            if p.purge:
                tail.rows.clear()
            elif p.upto is not None:
                for seq in [s for s in tail.rows if s <= p.upto]:
                    del tail.rows[seq]
            for seq in p.seqs:
                tail.rows.pop(seq, None)
        touched: set[str] = set()
        for op, seq in assigned:
            tail = self._tails.get(op.instance)
            if tail is None:
                if op.instance not in self._listeners:
                    continue  # nobody streams this instance: its link will read from the database
                # No row above the cursor existed before this batch: the tail covers everything.
                tail = self._tails[op.instance] = _Tail(floor=first_seq[op.instance])
            tail.rows[seq] = op.payload
            touched.add(op.instance)
        for instance in touched:
            self._tails[instance].trim()

    @staticmethod
    async def _apply_prunes(conn: AsyncConnection, prunes: list[_Prune]) -> None:
        seqs: dict[str, list[int]] = defaultdict(list)
        for p in prunes:
            if p.purge:
                await conn.execute(delete(_LOG).where(_LOG.c.instance_name == p.instance))
            elif p.upto is not None:
                await conn.execute(
                    delete(_LOG).where(_LOG.c.instance_name == p.instance, _LOG.c.seq <= p.upto)
                )
            seqs[p.instance].extend(p.seqs)
        # Acks of every instance in one executemany: a statement per instance cost a round trip
        # through the driver's thread each, and a batch carries the acks of every busy link.
        pairs = [{"i": instance, "s": seq} for instance, values in seqs.items() for seq in values]
        if pairs:
            await conn.execute(
                delete(_LOG).where(_LOG.c.instance_name == bindparam("i"), _LOG.c.seq == bindparam("s")),
                pairs,
            )


class EventLogWriter:
    """The event log as an ``EventBus`` log writer: a message's event is written by the message
    store's transaction (see ``ryze.api.services.store``), not by ``append``.

    ``payload`` turns an event into the row's payload, or None when the instance is not logged.
    """

    def __init__(self, event_log: EventLog, payload: Callable[[str, EventEnvelope], str | None]) -> None:
        self._log = event_log
        self._payload = payload

    def prepare(self, instance: str, envelope: EventEnvelope) -> _Append | None:
        payload = self._payload(instance, envelope)
        return None if payload is None else _Append(instance, payload)

    def lock(self) -> asyncio.Lock:
        return self._log._seq_lock

    async def write(self, conn: AsyncConnection, items: list[Any]) -> _Written:
        return await self._log._write_appends(conn, items)

    def committed(self, state: _Written) -> None:
        self._log._committed(state, [])

    def rolled_back(self, state: _Written) -> None:
        self._log._rolled_back(state)
