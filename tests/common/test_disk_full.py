"""A full disk is named as such in the storage logs (the fault matrix's disk-full row relies on it)."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy.exc import OperationalError

from ryze.common.database import disk_full


def test_sqlite_full_and_enospc_are_a_full_disk() -> None:
    wrapped = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database or disk is full"))
    assert disk_full(wrapped)
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))


def test_other_storage_errors_are_not() -> None:
    assert not disk_full(sqlite3.OperationalError("database is locked"))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(RuntimeError("connection reset"))
