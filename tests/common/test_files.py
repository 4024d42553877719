"""Private files: created owner-only whatever the umask, and an older version's readable ones tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ryze.common.database import make_engine
from ryze.common.files import private_dir, private_sqlite_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The 0022 umask most shells have (tests must not depend on the runner's)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
async def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "nested" / "r.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert (tmp_path / "fresh" / "nested" / "r.db-wal").exists()
        for name in ("r.db", "r.db-wal", "r.db-shm"):
            assert mode(path.with_name(name)) == 0o600, name
        assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("open_umask")
def test_what_an_older_version_left_readable_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("r.db", "r.db-wal", "r.db-shm"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    os.chmod(data, 0o755)
    private_dir(data, tighten=True)
    private_sqlite_file(data / "r.db")
    assert mode(data) == 0o700
    for name in ("r.db", "r.db-wal", "r.db-shm"):
        assert mode(data / name) == 0o600, name


@pytest.mark.usefixtures("open_umask")
def test_an_existing_parent_folder_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "var-lib"
    shared.mkdir()
    os.chmod(shared, 0o755)
    private_dir(shared / "ryze")
    assert mode(shared) == 0o755 and mode(shared / "ryze") == 0o700
