"""Per-process CPU and memory from /proc, and a description of the machine the figures came from.

/proc is read directly (no psutil dependency): VmRSS from ``/proc/<pid>/status`` and utime + stime
(clock ticks) from ``/proc/<pid>/stat``. Linux only, like the deployment target.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed by ``pid`` so far (0.0 if the process is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLK_TCK


def activity(pid: int) -> dict[str, int]:
    """System calls (read-like, write-like) and context switches of every thread of ``pid``.

    Per relayed message these show how chatty a service is: every SQLite statement run through
    aiosqlite is a hop to its worker thread and back (context switches), every commit and socket
    operation a system call. Cheap to read, and independent of machine speed.
    """
    out = {"syscr": 0, "syscw": 0, "ctxt_switches": 0}
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("syscr", "syscw"):
                out[key] = int(value)
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return out
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                out["ctxt_switches"] += int(line.split()[1])
    return out


@dataclass
class ActivitySnapshot:
    counters: dict[str, dict[str, int]]

    @classmethod
    def take(cls, pids: dict[str, int]) -> ActivitySnapshot:
        return cls({name: activity(pid) for name, pid in pids.items()})

    def per_message(self, earlier: ActivitySnapshot, messages: int) -> dict[str, dict[str, float]]:
        """Counter deltas per message, per process. Exited threads' switches are lost, so the
        context-switch figure is a lower bound."""
        if messages <= 0:
            return {}
        return {
            name: {
                k: round((v - earlier.counters.get(name, {}).get(k, 0)) / messages, 1) for k, v in now.items()
            }
            for name, now in self.counters.items()
        }


@dataclass
class CpuSnapshot:
    """CPU seconds of a set of named processes at one wall-clock instant."""

    at: float
    cpu: dict[str, float]

    @classmethod
    def take(cls, pids: dict[str, int]) -> CpuSnapshot:
        return cls(time.monotonic(), {name: cpu_seconds(pid) for name, pid in pids.items()})

    def since(self, earlier: CpuSnapshot) -> dict[str, float]:
        """CPU seconds used per process between ``earlier`` and this snapshot."""
        return {name: round(self.cpu[name] - earlier.cpu.get(name, 0.0), 3) for name in self.cpu}


def watched_pids(services: dict[str, int]) -> dict[str, int]:
    """The services plus the benchmark process itself: the load generator shares the 2 cores."""
    return {**services, "bench": os.getpid()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _git(args: list[str], cwd: Path) -> str:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not refresh the index (other engineers share the tree).
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


_PACKAGES = (
    "uvicorn", "uvloop", "httptools", "fastapi", "starlette", "aiohttp", "websockets", "sqlalchemy",
    "aiosqlite", "orjson", "pydantic",
)  # fmt: skip


def machine_info(repo: Path) -> dict[str, Any]:
    commit = _git(["rev-parse", "HEAD"], repo)
    dirty = bool(_git(["status", "--porcelain", "--untracked-files=no"], repo))
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_mib": _mem_total_mib(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": commit or None,
        "git_dirty": dirty,
        "packages": {name: _package_version(name) for name in _PACKAGES},
    }
