"""``python -m bench.chaos`` (``make chaos``): run the fault matrix, print it, write it as JSON.

Bounded: every row waits at most ``--settle`` seconds for its messages, and rows that would start
after ``--budget`` seconds are reported as not run. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.chaos.faults import ALL, SLUGS, Fault
from bench.chaos.report import markdown_table, text_table, write_json
from bench.chaos.runner import Row, RowConfig, run_row
from bench.chaos.stack import Configuration, running
from bench.chaos.traffic import open_chats
from bench.common import lift_flood_guard

REPO = Path(__file__).resolve().parents[2]
CONFIGURATIONS = ("sqlite", "postgres")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGURATIONS), help="comma-separated: sqlite,postgres")
    p.add_argument("--faults", default="all", help=f"comma-separated subset of {','.join(SLUGS)}")
    p.add_argument("--messages", type=int, default=80, help="messages per direction per fault")
    p.add_argument("--instances", type=int, default=2, help="WhatsApp instances (one inbox each)")
    p.add_argument("--contacts", type=int, default=4, help="chats per instance")
    p.add_argument("--settle", type=float, default=90.0, help="seconds a row waits for its messages")
    p.add_argument("--budget", type=float, default=840.0, help="seconds for the whole matrix")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chaos.json")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    p.add_argument("--no-tmpfs", action="store_true", help="do not mount a tmpfs (disk full is skipped)")
    p.add_argument("--workdir", type=Path, default=None, help="keep databases and logs here")
    return p.parse_args(argv)


def chosen_faults(spec: str) -> list[type[Fault]]:
    if spec == "all":
        return list(ALL)
    unknown = [s for s in spec.split(",") if s not in SLUGS]
    if unknown:
        raise SystemExit(f"unknown faults: {', '.join(unknown)} (known: {', '.join(SLUGS)})")
    return [SLUGS[s] for s in spec.split(",")]


async def run_configuration(
    name: str, args: argparse.Namespace, faults: list[type[Fault]], root: Path, deadline: float
) -> list[Row]:
    rows: list[Row] = []
    config = Configuration(name=name, workdir=root / name)
    cfg = RowConfig(messages=args.messages, settle=args.settle)
    async with running(config, tmpfs=not args.no_tmpfs) as cs:
        await lift_flood_guard(cs.system)
        chats = await open_chats(cs.system, args.instances, args.contacts)
        for index, fault_type in enumerate(faults):
            fault = fault_type()
            if time.monotonic() > deadline:
                rows.append(Row(fault.name, name, "skipped", reason="not run: time budget spent"))
                continue
            try:
                row = await run_row(cs, chats, fault, f"r{index:02d}{name[0]}", cfg)
            except Exception as exc:
                traceback.print_exc()
                row = Row(fault.name, name, "error", reason=f"{type(exc).__name__}: {exc}"[:300])
            rows.append(row)
            print(f"  {name:8} {fault.name:32} {row.status:8} {row.seconds:5.1f}s", flush=True)
            if row.status == "error":
                break  # the system may be half up: the remaining rows would say nothing
    return rows


async def main(args: argparse.Namespace) -> int:
    faults = chosen_faults(args.faults)
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGURATIONS:
            raise SystemExit(f"unknown configuration {c!r}")
    started = time.monotonic()
    deadline = started + args.budget
    root = args.workdir or Path(tempfile.mkdtemp(prefix="ryze-chaos-"))
    rows: list[Row] = []
    try:
        for name in configs:
            rows += await run_configuration(name, args, faults, root, deadline)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(text_table(rows))
    if args.markdown:
        print()
        print(markdown_table(rows))
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.chaos " + " ".join(sys.argv[1:]),
        "messages_per_direction": args.messages,
        "chats": args.instances * args.contacts,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json(args.out, rows, meta)
    print(f"\nwritten to {args.out} ({meta['seconds']} s)")
    bad = [r for r in rows if r.status in ("FAILED", "error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
