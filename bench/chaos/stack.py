"""The configurations under test: the single-process services on SQLite (the default) or on
PostgreSQL, started as real processes with a TCP proxy on the bridge's link to RyzeAPI.

PostgreSQL: two fresh databases (one per service: each keeps its own Alembic version table) on
127.0.0.1:5432, dropped after the run. SQLite: the services' data directories live on a small
tmpfs when mounting one is permitted (the disk-full fault needs it), else on the work directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.chaos.proxy import LinkProxy
from ryze.devstack import LocalSystem

log = logging.getLogger(__name__)

PG_ADMIN_URL = os.environ.get("RYZE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TMPFS_SIZE = "128m"

# Settings that make the faults observable within a bounded run, documented in docs/reliability.md:
# a blackholed link is noticed after two missed pings, a hung Chatwoot call gives up after 5 s
# (so "answering after 4 s" still succeeds).
BRIDGE_ENV = {"BRIDGE_LINK_PING_INTERVAL": "2", "BRIDGE_CHATWOOT_TIMEOUT": "5"}
API_ENV = {"INSTANCE_QUOTA": "1000"}


@dataclass
class Configuration:
    name: str  # "sqlite" | "postgres"
    workdir: Path
    api_db_url: str = ""
    bridge_db_url: str = ""
    data_root: Path | None = None  # the tmpfs (SQLite) holding both services' data directories
    tmpfs_error: str | None = None  # why no tmpfs could be mounted
    databases: list[str] = field(default_factory=list)

    @property
    def postgres(self) -> bool:
        return self.name == "postgres"


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


async def _create_databases(config: Configuration) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        for role in ("api", "bridge"):
            name = f"ryze_chaos_{role}_{uuid.uuid4().hex[:10]}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            config.databases.append(name)
    finally:
        await admin.close()
    config.api_db_url, config.bridge_db_url = (_pg_url(n) for n in config.databases)


async def _drop_databases(config: Configuration) -> None:
    if not config.databases:
        return
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        for name in config.databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    config.databases.clear()


def _mount_tmpfs(path: Path) -> str | None:
    """Mount a small tmpfs at ``path``; the reason when it cannot be done."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return "no mount command"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        return f"mount -t tmpfs failed: {result.stderr.strip() or result.returncode}"
    return None


def _umount(path: Path) -> None:
    result = subprocess.run(
        ["umount", "-l", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        log.warning("umount failed", extra={"path": str(path), "error": result.stderr.strip()})


@dataclass
class ChaosSystem:
    """One running configuration: the local system and the proxy in front of RyzeAPI."""

    config: Configuration
    system: LocalSystem
    proxy: LinkProxy
    outbox_log: Path


@contextlib.asynccontextmanager
async def running(config: Configuration, *, tmpfs: bool = True) -> AsyncIterator[ChaosSystem]:
    config.workdir.mkdir(parents=True, exist_ok=True)
    mounted = False
    api_env = dict(API_ENV)
    bridge_env = dict(BRIDGE_ENV)
    outbox_log = config.workdir / "phone-network.jsonl"
    outbox_log.touch()
    try:
        if config.postgres:
            await _create_databases(config)
            api_env |= {"DATABASE_URL": config.api_db_url}
            bridge_env |= {"BRIDGE_DATABASE_URL": config.bridge_db_url}
        else:
            root = config.workdir / "disk"
            config.tmpfs_error = _mount_tmpfs(root) if tmpfs else "tmpfs disabled (--no-tmpfs)"
            mounted = config.tmpfs_error is None
            config.data_root = root if mounted else None
            root.mkdir(parents=True, exist_ok=True)
            for sub in ("api", "bridge"):
                (root / sub).mkdir(exist_ok=True)
            api_env |= {
                "DATABASE_URL": f"sqlite:///{root / 'api' / 'ryzeapi.db'}",
                "DATA_DIR": str(root / "api"),
            }
            bridge_env |= {
                "BRIDGE_DATABASE_URL": f"sqlite:///{root / 'bridge' / 'bridge.db'}",
                "BRIDGE_DATA_DIR": str(root / "bridge"),
            }
        system = LocalSystem(workdir=config.workdir, api_env=api_env, bridge_env=bridge_env)
        proxy = LinkProxy("127.0.0.1", system.api_port)
        await proxy.start()
        # The bridge dials RyzeAPI (link WebSocket, media) through the proxy; RyzeAPI tells it where.
        system.api_env |= {
            "BRIDGE_INTERNAL_RYZEAPI_URL": proxy.url,
            "SIMULATOR_OUTBOX_LOG": str(outbox_log),
        }
        try:
            await system.start()
            try:
                yield ChaosSystem(config, system, proxy, outbox_log)
            finally:
                await system.aclose()
        finally:
            await proxy.aclose()
    finally:
        if config.postgres:
            await ensure_postgres_up()
            await _drop_databases(config)
        if mounted and config.data_root is not None:
            await asyncio.to_thread(_umount, config.data_root)


# -- PostgreSQL availability (the restart fault must always leave it running) ---------------------


def cluster_version() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir() if p.is_dir())
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1]


def pg_ctl(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster_version(), "main", action],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def postgres_ready() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def ensure_postgres_up(timeout: float = 60.0) -> None:
    """Start the cluster if it is not running, then wait (bounded) until it accepts connections."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    started = False
    while loop.time() < deadline:
        if await postgres_ready():
            return
        if not started:
            status = await asyncio.to_thread(pg_ctl, "status")
            if status.returncode != 0:
                await asyncio.to_thread(pg_ctl, "start")
            started = True
        await asyncio.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back within the bound")
