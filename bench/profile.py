"""Sampling profiles of the running services (py-spy), summarised into where the time goes.

py-spy attaches to the live processes from outside, so the services are profiled exactly as they
run in the benchmark, with no code change. ``--nonblocking`` keeps it from pausing them while
sampling. The raw (collapsed-stack) output is kept next to the results for flame graphs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procstats import CLK_TCK

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


async def record(
    pids: dict[str, int], seconds: float, outdir: Path, *, tag: str = "", rate: int = 100
) -> dict[str, Path]:
    """Start py-spy on every pid for ``seconds``; returns when all recordings are written."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    await asyncio.to_thread(outdir.mkdir, parents=True, exist_ok=True)
    outputs = {name: outdir / f"profile-{tag + '-' if tag else ''}{name}.txt" for name in pids}
    procs = []
    for name, pid in pids.items():
        args = ["record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
                "--format", "raw", "--nonblocking", "--output", str(outputs[name])]  # fmt: skip
        procs.append(
            await asyncio.create_subprocess_exec(
                exe, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
        )
    await asyncio.gather(*(p.wait() for p in procs))
    return {name: path for name, path in outputs.items() if path.exists()}


def _package(path: str) -> str:
    """Which component a frame's file belongs to. py-spy shortens paths relative to sys.path:
    ``sqlalchemy/engine/base.py`` → ``sqlalchemy``, ``ryze/bridge/relay/inbound/consumer.py`` →
    ``ryze.bridge.relay``, a bare ``selectors.py`` → ``stdlib``."""
    if "/site-packages/" in path:
        path = path.split("/site-packages/", 1)[1]
    if path.startswith("<frozen") or "/" not in path:
        return "stdlib" if not path.startswith("asyncio") else "asyncio"
    parts = path.split("/")
    if parts[0] == "ryze":
        return ".".join(p.removesuffix(".py") for p in parts[:3])
    if parts[0] in ("asyncio", "concurrent", "json", "email", "http", "logging", "importlib"):
        return parts[0] if parts[0] == "asyncio" else "stdlib"
    return parts[0]


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of ``pid``, keyed ``<tid>:<thread name>`` (e.g. aiosqlite's worker)."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[f"{tid}:{name}"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def thread_cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per-thread CPU used in between, busiest first, threads that used nothing left out."""
    delta = {k: round(v - before.get(k, 0.0), 2) for k, v in after.items()}
    return dict(sorted(((k, v) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1]))


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """Where the event-loop thread spends its time, from a py-spy raw (collapsed) file.

    Stacks of other threads (aiosqlite's worker threads) are counted apart: py-spy reports them
    busy while they wait on their queue, and /proc says they use little CPU (``thread_cpu``).
    """
    self_time: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    inclusive_pkg: Counter[str] = Counter()
    inclusive_ryze: Counter[str] = Counter()
    total = other_threads = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = stack.split(";")
        if raw_frames[0].startswith("Thread._bootstrap"):
            other_threads += count
            continue
        frames = [(m["func"], m["file"]) for m in map(_FRAME.match, (f.strip() for f in raw_frames)) if m]
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        self_time[f"{func} ({_package(file)})"] += count
        self_pkg[_package(file)] += count
        for pkg in {_package(f) for _, f in frames}:
            inclusive_pkg[pkg] += count
        for name in {
            f"{fn} ({f.split(':')[0]})" for fn, f in frames if f.startswith("ryze/") and "/" in f[5:]
        }:
            inclusive_ryze[name] += count

    def share(counter: Counter[str], n: int = top) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)] if total else []

    return {
        "main_thread_samples": total,
        "other_thread_samples": other_threads,
        "self_by_function_pct": share(self_time),
        "self_by_component_pct": share(self_pkg),
        "inclusive_by_component_pct": share(inclusive_pkg),
        "inclusive_by_ryze_function_pct": share(inclusive_ryze, 25),
    }
