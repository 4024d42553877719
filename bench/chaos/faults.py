"""The faults: each a small class whose ``inject()`` breaks one thing and ``heal()`` mends it.

A fault that does not apply to a configuration says why (``skip_reason``); a fault that cannot be
produced here (no permission to mount a tmpfs) is reported as skipped with the reason, never faked.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from bench.chaos.stack import ChaosSystem, ensure_postgres_up, pg_ctl
from bench.chaos.traffic import Flags


@dataclass
class FaultContext:
    cs: ChaosSystem
    flags: Flags
    notes: list[str] = field(default_factory=list)  # what the fault observed (errors shown, ...)


class Fault:
    name: ClassVar[str]
    hold: ClassVar[float] = 4.0  # seconds between inject() and heal()

    def skip_reason(self, cs: ChaosSystem) -> str | None:
        return None

    async def inject(self, ctx: FaultContext) -> None:
        raise NotImplementedError

    async def heal(self, ctx: FaultContext) -> None:
        raise NotImplementedError


# -- processes -------------------------------------------------------------------------------------


class _ProcessFault(Fault):
    service: ClassVar[str]  # "bridge" | "api"
    hard: ClassVar[bool]

    async def inject(self, ctx: FaultContext) -> None:
        stack = ctx.cs.system.stack
        if self.hard:
            await stack.kill(self.service)
        else:
            await stack.stop(self.service)  # SIGTERM, then waits (bounded) for the exit

    async def heal(self, ctx: FaultContext) -> None:
        system = ctx.cs.system
        spec = system.bridge_spec() if self.service == "bridge" else system.api_spec()
        await system.stack.start(spec)


class BridgeKill(_ProcessFault):
    name, service, hard = "bridge SIGKILL", "bridge", True


class BridgeTerm(_ProcessFault):
    name, service, hard = "bridge SIGTERM", "bridge", False


class ApiKill(_ProcessFault):
    name, service, hard = "RyzeAPI SIGKILL", "api", True


class ApiTerm(_ProcessFault):
    name, service, hard = "RyzeAPI SIGTERM", "api", False


# -- the link between the bridge and RyzeAPI -------------------------------------------------------


class _LinkFault(Fault):
    _before = (0, 0)

    def _mark(self, ctx: FaultContext) -> None:
        self._before = (ctx.cs.proxy.connections, ctx.cs.proxy.resets)

    async def heal(self, ctx: FaultContext) -> None:
        proxy = ctx.cs.proxy
        proxy.restore()
        dialed, reset = proxy.connections - self._before[0], proxy.resets - self._before[1]
        ctx.notes.append(f"during the fault the bridge dialed {dialed} time(s), {reset} connection(s) reset")


class LinkDrop(_LinkFault):
    name = "link dropped (TCP RST)"

    async def inject(self, ctx: FaultContext) -> None:
        self._mark(ctx)
        ctx.cs.proxy.drop()


class LinkBlackhole(_LinkFault):
    name = "link blackholed"
    hold = 8.0  # longer than two of the bridge's pings (BRIDGE_LINK_PING_INTERVAL=2)

    async def inject(self, ctx: FaultContext) -> None:
        self._mark(ctx)
        ctx.cs.proxy.blackhole()


# -- storage ---------------------------------------------------------------------------------------


class PostgresRestart(Fault):
    name = "PostgreSQL restarted"
    hold = 1.0

    def skip_reason(self, cs: ChaosSystem) -> str | None:
        return None if cs.config.postgres else "PostgreSQL configuration only"

    async def inject(self, ctx: FaultContext) -> None:
        result = await asyncio.to_thread(pg_ctl, "restart")
        if result.returncode != 0:
            ctx.notes.append(f"pg_ctlcluster restart: {result.stderr.strip() or result.returncode}")

    async def heal(self, ctx: FaultContext) -> None:
        await ensure_postgres_up()  # whatever happened, PostgreSQL runs again after this fault


class DiskFull(Fault):
    """The tmpfs holding both services' SQLite files fills up; space comes back at heal."""

    name = "SQLite disk full"
    hold = 4.0
    _filler: Path | None = None

    def skip_reason(self, cs: ChaosSystem) -> str | None:
        if cs.config.postgres:
            return "SQLite configuration only"
        if cs.config.data_root is None:
            return f"no tmpfs for the data directory ({cs.config.tmpfs_error})"
        return None

    async def inject(self, ctx: FaultContext) -> None:
        root = ctx.cs.config.data_root
        assert root is not None
        self._filler = root / "filler"
        self._marks = {name: _log_size(ctx, name) for name in ("api", "bridge")}
        for db in root.glob("*/*.db"):
            # An emptied write-ahead log: the next commits must grow it, so they meet the full disk
            # (a WAL that already has room would let them through and the fault would test nothing).
            await asyncio.to_thread(_sqlite_exec, db, "PRAGMA wal_checkpoint(TRUNCATE)")
        await asyncio.to_thread(_fill, self._filler)

    async def heal(self, ctx: FaultContext) -> None:
        for name in ("api", "bridge"):
            shown = _disk_errors(ctx, name, self._marks[name])
            ctx.notes.append(f"{name}: {shown}" if shown else f"{name}: no disk-full error logged")
        if self._filler is not None:
            self._filler.unlink(missing_ok=True)


def _fill(path: Path) -> None:
    """Write zeros until the file system is full (bounded by its size)."""
    chunk = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as filler:
        try:
            for _ in range(1 << 16):  # 64 GiB: far above any tmpfs the harness mounts
                filler.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    # What is left (less than a chunk) in smaller pieces, so SQLite really finds no page free.
    with path.open("ab", buffering=0) as filler, contextlib.suppress(OSError):
        for _ in range(1 << 12):
            filler.write(b"\0" * 256)


def _log_path(ctx: FaultContext, service: str) -> Path:
    return ctx.cs.system.workdir / "logs" / f"{service}.log"


def _log_size(ctx: FaultContext, service: str) -> int:
    path = _log_path(ctx, service)
    return path.stat().st_size if path.exists() else 0


_DISK_FULL_TEXTS = ("the disk is full", "database or disk is full", "No space left on device")


def _disk_errors(ctx: FaultContext, service: str, since: int) -> str:
    """The first disk-full line the service logged during the fault (the operator's clear error)."""
    path = _log_path(ctx, service)
    if not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    for line in text.splitlines():
        if any(t in line for t in _DISK_FULL_TEXTS):
            try:
                record = json.loads(line)
            except ValueError:
                return line.strip()[:200]
            return f"{record.get('level')} {record.get('logger')}: {record.get('msg')}"
    return ""


class SinkFailure(Fault):
    """RyzeAPI's message storage fails for a while (its ``messages`` table is renamed away, so
    every insert fails as a real storage error does); the engine's sink must not drop anything."""

    name = "engine sink failure (storage)"
    hold = 3.0
    _AWAY = "messages_chaos_away"

    async def inject(self, ctx: FaultContext) -> None:
        await self._rename(ctx, "messages", self._AWAY)

    async def heal(self, ctx: FaultContext) -> None:
        await self._rename(ctx, self._AWAY, "messages")

    async def _rename(self, ctx: FaultContext, old: str, new: str) -> None:
        config = ctx.cs.config
        sql = f"ALTER TABLE {old} RENAME TO {new}"
        if config.postgres:
            conn = await asyncpg.connect(config.api_db_url)
            try:
                await conn.execute("SET lock_timeout = '20s'")
                await conn.execute(sql)
            finally:
                await conn.close()
            return
        db = _sqlite_path(ctx.cs)
        await asyncio.to_thread(_sqlite_exec, db, sql)


def _sqlite_path(cs: ChaosSystem) -> Path:
    url = cs.system.api_env["DATABASE_URL"]
    return Path(url.split("///", 1)[1])


def _sqlite_exec(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db, timeout=20)
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


# -- Chatwoot (the emulator's fault rules and webhook settings) ------------------------------------


class _ChatwootRule(Fault):
    rule: ClassVar[dict[str, Any]]

    async def inject(self, ctx: FaultContext) -> None:
        system = ctx.cs.system
        await system.call("POST", f"{system.emulator_url}/_emulator/faults", json=self.rule, expect=200)

    async def heal(self, ctx: FaultContext) -> None:
        system = ctx.cs.system
        _, rules = await system.call("GET", f"{system.emulator_url}/_emulator/faults", expect=200)
        ctx.notes.append(f"Chatwoot refused {sum(int(r['fired']) for r in rules)} requests")
        await system.call("DELETE", f"{system.emulator_url}/_emulator/faults", expect=200)


_MESSAGES = r"/conversations/\d+/messages$"


class Chatwoot5xx(_ChatwootRule):
    name = "Chatwoot 5xx"
    rule: ClassVar[dict[str, Any]] = {"method": "POST", "path": _MESSAGES, "status": 500}


class Chatwoot429(_ChatwootRule):
    name = "Chatwoot 429 (no Retry-After)"
    rule: ClassVar[dict[str, Any]] = {"path": "/api/v1/", "status": 429}


class Chatwoot429RetryAfter(_ChatwootRule):
    name = "Chatwoot 429 + Retry-After"
    rule: ClassVar[dict[str, Any]] = {"path": "/api/v1/", "status": 429, "retry_after": 2}


class ChatwootTimeout(_ChatwootRule):
    name = "Chatwoot timing out"
    hold = 6.0  # beyond the bridge's 5 s Chatwoot timeout
    rule: ClassVar[dict[str, Any]] = {"method": "POST", "path": _MESSAGES, "hang": True, "hang_seconds": 20}


class ChatwootSlow(_ChatwootRule):
    name = "Chatwoot answering after 4 s"
    hold = 6.0
    rule: ClassVar[dict[str, Any]] = {"path": "/api/v1/", "latency": 4.0}


class _WebhookSettings(Fault):
    async def _settings(self, ctx: FaultContext, **values: Any) -> None:
        system = ctx.cs.system
        await system.call("POST", f"{system.emulator_url}/_emulator/settings", json=values, expect=200)


class WebhooksTwice(_WebhookSettings):
    """Every webhook delivered twice (chatwoot/chatwoot#11901), each copy its own delivery id."""

    name = "webhooks delivered twice"

    async def inject(self, ctx: FaultContext) -> None:
        await self._settings(ctx, webhook_duplicate_rate=1.0)

    async def heal(self, ctx: FaultContext) -> None:
        await self._settings(ctx, webhook_duplicate_rate=0.0)


class WebhooksOutOfOrder(_WebhookSettings):
    """A backlog of webhooks (Sidekiq or Redis stalled during the fault), then drained as Sidekiq
    drains it: in queue order, ten jobs at once (``app/listeners/webhook_listener.rb`` enqueues one
    ``WebhookJob`` per event; ``config/sidekiq.yml`` ``:concurrency: 10``), so events of one
    conversation that are in flight together arrive in either order."""

    name = "webhooks out of order"
    release: ClassVar[str] = "queued"

    async def inject(self, ctx: FaultContext) -> None:
        await self._settings(ctx, webhook_delivery="sidekiq", webhook_hold=True)

    async def heal(self, ctx: FaultContext) -> None:
        await self._settings(ctx, webhook_release=self.release)
        await self._settings(ctx, webhook_delivery="ordered")


class WebhooksShuffled(WebhooksOutOfOrder):
    """Harsher than Chatwoot (not in the default matrix): the whole backlog let go in a random
    order, so a message can reach the bridge seconds after a later one of its conversation —
    beyond ``BRIDGE_OUTBOUND_REORDER_WINDOW``, which then cannot restore the order."""

    name = "webhooks shuffled (harsher than Chatwoot)"
    release: ClassVar[str] = "shuffle"


# -- WhatsApp ---------------------------------------------------------------------------------------


class WhatsAppTwice(Fault):
    name = "WhatsApp delivers twice"

    async def inject(self, ctx: FaultContext) -> None:
        ctx.flags.duplicate_inbound = True

    async def heal(self, ctx: FaultContext) -> None:
        ctx.flags.duplicate_inbound = False


ALL: tuple[type[Fault], ...] = (
    BridgeKill,
    BridgeTerm,
    ApiKill,
    ApiTerm,
    LinkDrop,
    LinkBlackhole,
    PostgresRestart,
    DiskFull,
    SinkFailure,
    Chatwoot5xx,
    Chatwoot429,
    Chatwoot429RetryAfter,
    ChatwootTimeout,
    ChatwootSlow,
    WebhooksTwice,
    WebhooksOutOfOrder,
    WhatsAppTwice,
)
SLUGS: dict[str, type[Fault]] = {
    "bridge-kill": BridgeKill,
    "bridge-term": BridgeTerm,
    "api-kill": ApiKill,
    "api-term": ApiTerm,
    "link-drop": LinkDrop,
    "link-blackhole": LinkBlackhole,
    "pg-restart": PostgresRestart,
    "disk-full": DiskFull,
    "sink-failure": SinkFailure,
    "cw-5xx": Chatwoot5xx,
    "cw-429": Chatwoot429,
    "cw-429-retry-after": Chatwoot429RetryAfter,
    "cw-timeout": ChatwootTimeout,
    "cw-slow": ChatwootSlow,
    "webhooks-twice": WebhooksTwice,
    "webhooks-out-of-order": WebhooksOutOfOrder,
    "webhooks-shuffled": WebhooksShuffled,  # opt-in: --faults webhooks-shuffled
    "wa-twice": WhatsAppTwice,
}
