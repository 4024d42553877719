"""Private files: what both services write under their data folder is readable by its owner only.

The data folder holds the SQLite databases (messages, encrypted secrets, the Chatwoot event log),
the encryption key file, the bridge token file and (neonize) WhatsApp's device keys. Folders are
created 0700 and files 0600 whatever the process umask says; the serving commands also set a
0077 umask (like the systemd units' ``UMask=0077``) for the files a library creates for us.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make every file this process creates from now on owner-only; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> None:
    """Drop group/other bits from a file or folder this process owns (made by an older version)."""
    with contextlib.suppress(FileNotFoundError):
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(path, mode)


def private_dir(path: Path, *, tighten: bool = False) -> Path:
    """Create ``path`` (and missing parents) with mode 0700.

    A parent that already exists keeps its mode: it may be one the operator chose on purpose (a
    mount point, a shared parent such as ``/var/lib``). ``tighten``: ``path`` itself is the
    service's own data folder, made 0700 even if it already existed (and is ours).
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile
            folder.mkdir(mode=DIR_MODE)
        # mkdir's mode is filtered by the umask; chmod states it exactly.
        os.chmod(folder, DIR_MODE)
    if tighten:
        _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 unless it exists (then made 0600 if it is ours).

    Its folder is created private (see ``private_dir``).
    """
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
    else:
        os.close(fd)
    return path


def private_sqlite_file(path: Path) -> Path:
    """The SQLite database file, created 0600 before SQLite opens it.

    SQLite opens an existing file instead of creating it with the umask's 0644, and creates its
    ``-wal`` and ``-shm`` files with the main file's mode (sqlite ``src/os_unix.c``,
    ``findCreateFileMode``). WAL/SHM files an older version left readable are tightened too.
    """
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        _tighten(path.with_name(path.name + suffix), FILE_MODE)
    return path
