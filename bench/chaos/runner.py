"""One row of the matrix: traffic across every chat while one fault is injected, held and healed,
then (bounded) until everything arrived; the counts and the recovery time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bench.chaos.checker import Counts, check, problems, recovery_seconds
from bench.chaos.faults import Fault, FaultContext
from bench.chaos.stack import ChaosSystem
from bench.chaos.traffic import Chat, Observer, Traffic
from bench.common import client_session

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2


@dataclass
class RowConfig:
    messages: int = 80  # per direction, spread over every chat
    lead: float = 1.5  # seconds of traffic before the fault
    settle: float = 90.0  # at most this long after the traffic for everything to arrive
    grace: float = 1.0  # then this long for a late duplicate to show


@dataclass
class Row:
    fault: str
    configuration: str
    status: str  # "ok" | "FAILED" | "skipped" | "error"
    inbound: Counts | None = None
    outbound: Counts | None = None
    recovery_s: float | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    problems: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # direction -> per chat
    seconds: float = 0.0

    @property
    def total(self) -> Counts | None:
        if self.inbound is None or self.outbound is None:
            return None
        return self.inbound + self.outbound

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "fault": self.fault,
            "configuration": self.configuration,
            "status": self.status,
            "inbound": self.inbound.to_json() if self.inbound else None,
            "outbound": self.outbound.to_json() if self.outbound else None,
            "total": total.to_json() if total else None,
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2),
            "reason": self.reason,
            "notes": self.notes,
            "problems": self.problems,
            "seconds": round(self.seconds, 1),
        }


async def run_row(cs: ChaosSystem, chats: list[Chat], fault: Fault, prefix: str, cfg: RowConfig) -> Row:
    started = time.monotonic()
    skip = fault.skip_reason(cs)
    if skip is not None:
        return Row(fault.name, cs.config.name, "skipped", reason=skip)
    per_chat = max(1, cfg.messages // len(chats))
    # Paced so that a third of each chat's messages goes before the fault, a third during it and a
    # third after the heal.
    pace = (2 * cfg.lead + fault.hold) / per_chat
    traffic = Traffic(cs.system, chats, prefix, per_chat, pace)
    observer = Observer(cs.system, chats, cs.outbox_log, prefix)
    ctx = FaultContext(cs, traffic.flags)
    healed_at: float | None = None
    async with client_session(4) as http:
        await observer.start(http)
        send_deadline = time.monotonic() + 4 * (2 * cfg.lead + fault.hold) + cfg.settle
        sending = asyncio.create_task(traffic.run(send_deadline))
        polling = asyncio.create_task(_poll_forever(observer))
        try:
            await asyncio.sleep(cfg.lead)
            try:
                await fault.inject(ctx)
                await asyncio.sleep(fault.hold)
            finally:
                # Recovery counts from the moment the repair starts (a restart's start-up included).
                healed_at = time.time()
                await fault.heal(ctx)  # always: the next row must start on a whole system
            await sending
            failed = await _settle(observer, traffic, chats, cfg)
        finally:
            sending.cancel()
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            with contextlib.suppress(asyncio.CancelledError):
                await polling
        await observer.poll()
    arrived_in = [(a.chat, a.token) for a in observer.inbound]
    arrived_out = [(a.chat, a.token) for a in observer.outbound]
    inbound = check(traffic.sent.inbound, arrived_in)
    outbound = check(traffic.sent.outbound, arrived_out, failed)
    arrivals = [a.at for a in observer.inbound + observer.outbound]
    row = Row(
        fault.name,
        cs.config.name,
        "ok" if inbound.clean and outbound.clean else "FAILED",
        inbound=inbound,
        outbound=outbound,
        recovery_s=recovery_seconds(healed_at, arrivals),
        notes=ctx.notes,
    )
    if not inbound.clean:
        row.problems["inbound"] = problems(traffic.sent.inbound, arrived_in)
    if not outbound.clean:
        row.problems["outbound"] = problems(traffic.sent.outbound, arrived_out, failed)
    if traffic.sent.refused:
        row.notes.append(
            f"WhatsApp deliveries RyzeAPI did not acknowledge (delivered again): {traffic.sent.refused}"
        )
    if traffic.sent.agent_retries:
        row.notes.append(
            f"agent messages Chatwoot did not take at first (sent again): {traffic.sent.agent_retries}"
        )
    if traffic.sent.undelivered:
        row.notes.append(
            f"{len(traffic.sent.undelivered)} message(s) could not be handed over within the bound"
        )
    row.seconds = time.monotonic() - started
    return row


async def _poll_forever(observer: Observer) -> None:
    while True:
        await observer.poll()
        await asyncio.sleep(POLL_INTERVAL)


async def _settle(observer: Observer, traffic: Traffic, chats: list[Chat], cfg: RowConfig) -> set[str]:
    """Wait (bounded) until every message arrived; then a short grace. A message shown as failed
    is no end: the bridge's catch-up sweep sends what Chatwoot marked failed for want of a bridge
    (docs/bridge.md §5a), so it may still arrive; one failed at the deadline fails the row."""
    expected_in = sum(len(t) for t in traffic.sent.inbound.values())
    expected_out = sum(len(t) for t in traffic.sent.outbound.values())
    deadline = time.monotonic() + cfg.settle
    while time.monotonic() < deadline:
        await observer.poll()
        arrived_in = len({a.token for a in observer.inbound})
        arrived_out = {a.token for a in observer.outbound}
        if arrived_in >= expected_in and len(arrived_out) >= expected_out:
            break
        await asyncio.sleep(POLL_INTERVAL)
    await asyncio.sleep(cfg.grace)
    return await observer.failed_outbound(chats, traffic.sent)
