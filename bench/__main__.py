"""``python -m bench``: the relay benchmark. Prints a table, writes ``bench/results/latest.json``.

Two fresh local systems (emulator + bridge + RyzeAPI with the simulated engine, real processes on
loopback): the first for inbound, its ceiling, outbound, inbound media (after the text phases, so
their figures are unperturbed; and the optional profile), the second for
the scale phase, so memory figures start from a clean process. Every loop is bounded in count and
in time, and the whole run fits the ``--budget`` (5 minutes by default on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import profile as profiling
from bench.ceiling import CeilingConfig, run_ceiling
from bench.common import clear_webhook_log, lift_flood_guard, webhook_log
from bench.inbound import InboundConfig, chats_of, run_inbound
from bench.media import MediaConfig, run_media
from bench.outbound import OutboundConfig, run_outbound, webhook_ack_summary
from bench.procstats import machine_info
from bench.report import derive, print_report, write_json
from bench.scale import ScaleConfig, run_scale
from ryze.devstack import LocalSystem, start_system

REPO = Path(__file__).resolve().parent.parent
PHASES = ("inbound", "ceiling", "outbound", "media", "scale")
# One account owns every benchmark instance: lift the default per-account quota (100).
API_ENV = {"INSTANCE_QUOTA": "100000"}


def _env(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument("--instances", type=int, default=50, help="instances with an active integration (inbound)")
    p.add_argument("--contacts", type=int, default=4, help="contacts (chats) per instance")
    p.add_argument("--messages", type=int, default=4000, help="measured inbound messages")
    p.add_argument("--batch", type=int, default=5, help="messages per injection call")
    p.add_argument("--concurrency", type=int, default=50, help="requests in flight (relay and ceiling alike)")
    p.add_argument("--backlog", type=int, default=1000, help="max messages injected but not yet relayed")
    p.add_argument("--outbound-messages", type=int, default=1000)
    p.add_argument("--media-images", type=int, default=200, help="inbound images (media phase)")
    p.add_argument("--media-kib", type=int, default=100, help="size of each image, KiB")
    p.add_argument("--scale-integrations", type=int, default=2000, help="K integrations linked at once")
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    p.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run")
    p.add_argument(
        "--profile", action="store_true", help="then profile extra inbound and outbound runs with py-spy"
    )
    p.add_argument("--profile-seconds", type=float, default=15.0)
    p.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "latest.json")
    p.add_argument("--workdir", type=Path, default=None, help="keep databases and logs here")
    p.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra RyzeAPI setting for experiments (repeatable)",
    )
    p.add_argument("--bridge-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra bridge setting for experiments, e.g. BRIDGE_LINK_BACKOFF_MAX=5")  # fmt: skip
    return p.parse_args(argv)


class Run:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.deadline: float = time.monotonic() + float(args.budget)
        self.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
        self.api_env = {**API_ENV, **_env(args.api_env)}
        self.bridge_env = _env(args.bridge_env)
        self.results: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine_info(REPO),
            "phases": {},
            "derived": {},
            "errors": [],
        }

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {text}")

    async def phase(self, name: str, coro: Any) -> Any:
        """Run one phase; a failure is recorded and the run goes on (land what works)."""
        self.note(f"{name}…")
        began = time.monotonic()
        try:
            value = await coro
        except Exception as exc:
            self.results["errors"].append({"phase": name, "error": f"{type(exc).__name__}: {exc}"})
            self.console.print(traceback.format_exc(limit=4), style="dim")
            return None
        self.note(f"{name} done in {time.monotonic() - began:.1f}s")
        return value

    async def relay_phases(self, workdir: Path) -> None:
        a = self.args
        system = await start_system(workdir, api_env=self.api_env, bridge_env=self.bridge_env)
        try:
            await lift_flood_guard(system)
            inbound_cfg = InboundConfig(
                instances=a.instances, contacts=a.contacts, messages=a.messages, batch=a.batch,
                concurrency=a.concurrency, backlog=a.backlog,
                inject_seconds=min(45.0, max(10.0, self.remaining() * 0.2)),
            )  # fmt: skip
            instances, tracker = None, None
            if "inbound" in self.phases or "outbound" in self.phases:
                await clear_webhook_log(system)
                out = await self.phase("inbound", run_inbound(system, inbound_cfg))
                if out is not None:
                    self.results["phases"]["inbound"], instances, tracker = out
                    # Every webhook the emulator sent meanwhile (message_created of each incoming
                    # message, conversation events): all are acknowledged by a loaded bridge.
                    acks = await webhook_log(system)
                    self.results["derived"]["webhook_ack_inbound"] = webhook_ack_summary(acks)
            if "ceiling" in self.phases:
                inbound = self.results["phases"].get("inbound") or {}
                ceiling_cfg = CeilingConfig(
                    conversations=inbound.get("chats") or a.instances * a.contacts,
                    messages=inbound.get("messages") or a.messages,
                    concurrency=a.concurrency,
                )
                self.results["phases"]["ceiling"] = await self.phase(
                    "ceiling", run_ceiling(system, ceiling_cfg)
                )
            if "outbound" in self.phases and instances and tracker is not None:
                await clear_webhook_log(system)
                outbound_cfg = OutboundConfig(
                    messages=a.outbound_messages, concurrency=a.concurrency,
                    send_seconds=min(40.0, max(10.0, self.remaining() * 0.15)),
                )  # fmt: skip
                self.results["phases"]["outbound"] = await self.phase(
                    "outbound", run_outbound(system, chats_of(instances, tracker), outbound_cfg)
                )
            if "media" in self.phases:
                media_cfg = MediaConfig(
                    images=a.media_images, image_kib=a.media_kib,
                    inject_seconds=min(30.0, max(10.0, self.remaining() * 0.1)),
                    drain_seconds=min(60.0, max(15.0, self.remaining() * 0.15)),
                )  # fmt: skip
                self.results["phases"]["media"] = await self.phase(
                    "media", run_media(system, media_cfg, instances or None)
                )
            if self.args.profile and instances and tracker is not None:
                self.results["profile"] = await self.phase(
                    "profile", self.profile(system, instances, tracker, inbound_cfg)
                )
        finally:
            await system.aclose()

    async def profile(
        self, system: LocalSystem, instances: Any, tracker: Any, cfg: InboundConfig
    ) -> dict[str, Any]:
        """Inbound, then outbound, again with py-spy attached to every service (kept apart from
        the measured runs, so the main figures are unperturbed)."""
        seconds = self.args.profile_seconds
        pids = {name: svc.pid for name, svc in system.stack.services.items()}
        outdir = self.args.output.parent
        report: dict[str, Any] = {}

        async def inbound() -> dict[str, Any]:
            icfg = InboundConfig(**{**vars(cfg), "messages": 100_000, "inject_seconds": seconds - 2})
            figures, _, _ = await run_inbound(system, icfg, instances)
            return {k: figures[k] for k in ("found", "steady_rate", "cpu_seconds_per_1000")}

        async def outbound() -> dict[str, Any]:
            ocfg = OutboundConfig(
                messages=100_000,
                concurrency=self.args.concurrency,
                send_seconds=seconds - 2,
                latency_seconds=0,
            )
            figures = await run_outbound(system, chats_of(instances, tracker), ocfg)
            return {k: figures[k] for k in ("delivered", "steady_rate", "cpu_seconds_per_1000")}

        for direction, run in (("inbound", inbound), ("outbound", outbound)):
            threads_before = {name: profiling.thread_cpu(pid) for name, pid in pids.items()}
            recording = asyncio.create_task(profiling.record(pids, seconds, outdir, tag=direction))
            await asyncio.sleep(1.0)  # py-spy attaches
            figures = await run()
            files = await recording
            report[direction] = {
                "under_profiler": figures,
                "thread_cpu_seconds": {
                    name: profiling.thread_cpu_delta(threads_before[name], profiling.thread_cpu(pid))
                    for name, pid in pids.items()
                },
                "files": {name: str(path) for name, path in files.items()},
                "summary": {name: profiling.summarize(path) for name, path in files.items()},
            }
        return report

    async def scale_phase(self, workdir: Path) -> None:
        # What is left of the budget, minus link-up, idle, re-link and shutdown.
        reserve = 20.0 + self.args.idle_seconds + 45.0
        setup = max(10.0, min(150.0, self.remaining() - reserve))
        system = await start_system(workdir, api_env=self.api_env, bridge_env=self.bridge_env)
        try:
            relink = max(30.0, min(45.0, self.remaining() - setup - 30))
            cfg = ScaleConfig(
                integrations=self.args.scale_integrations, setup_seconds=setup,
                idle_seconds=self.args.idle_seconds, link_seconds=20.0, relink_seconds=relink,
            )  # fmt: skip
            self.results["phases"]["scale"] = await self.phase("scale", run_scale(system, cfg))
        finally:
            await system.aclose()

    async def main(self) -> dict[str, Any]:
        root = self.args.workdir or Path(tempfile.mkdtemp(prefix="ryze-bench-"))
        try:
            if self.phases & {"inbound", "ceiling", "outbound", "media"}:
                await self.relay_phases(root / "relay")
            if "scale" in self.phases:
                if self.remaining() > 60:
                    await self.scale_phase(root / "scale")
                else:
                    self.results["errors"].append({"phase": "scale", "error": "skipped: budget exhausted"})
        finally:
            if self.args.workdir is None:
                shutil.rmtree(root, ignore_errors=True)
        self.results["derived"].update(derive(self.results))
        self.results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return self.results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Piped output (make bench | tee) would wrap the table at 80 columns: give it room.
    console = Console() if Console().is_terminal else Console(width=132)
    run = Run(args, console)
    results = asyncio.run(run.main())
    write_json(results, args.output)
    print_report(results, console)
    console.print(f"JSON: {args.output}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
