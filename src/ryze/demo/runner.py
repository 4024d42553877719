"""`ryze demo`: the whole system on loopback, an instance relayed into the Chatwoot emulator, a
simulated-phone page, and a scripted opening conversation; up until Ctrl+C.

Built on :mod:`ryze.devstack`, so the demo runs exactly the processes an operator runs (RyzeAPI with
the simulated engine, the bridge, the emulator) and exactly what the end-to-end tests exercise.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
from rich.console import Console

from ryze.devstack import LocalSystem
from ryze.launcher import ServiceFailed

from .phone import DemoContact, PhoneChat, PhoneServer
from .script import OPENING, Step, run_script

T = TypeVar("T")

DEMO_HISTORY = Path(__file__).with_name("history.json")
MARKER = ".ryze-demo"  # only a folder holding this file (or an empty one) is ever wiped
SERVICE_LABELS = {"emulator": "Chatwoot emulator", "bridge": "bridge (RyzeIntegrations)", "api": "RyzeAPI"}


class DemoError(RuntimeError):
    pass


@dataclass
class DemoOptions:
    workdir: Path = Path("data/demo")
    instance: str = "demo"
    contact: DemoContact = field(default_factory=DemoContact)
    script: bool = True
    # The simulated phone starts with a few days of chats (demo/history.json), imported into
    # Chatwoot by the history sync when it pairs (bridge.md §4a).
    history: bool = False
    api_port: int | None = None  # None: a free port picked by the OS
    bridge_port: int | None = None
    emulator_port: int | None = None
    phone_port: int | None = None


@dataclass
class Demo:
    """A running demo. Create with :func:`start_demo`; stop with :meth:`aclose`."""

    system: LocalSystem
    phone: PhoneServer
    instance: str
    inbox_id: int
    http: aiohttp.ClientSession
    conversation_id: int | None = None

    @property
    def agent_page_url(self) -> str:
        return f"{self.system.emulator_url}/app"

    @property
    def phone_page_url(self) -> str:
        return self.phone.url

    @property
    def api_docs_url(self) -> str:
        return f"{self.system.api_url}/docs"

    def dead_services(self) -> list[str]:
        return [name for name, svc in self.system.stack.services.items() if not svc.alive()]

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.phone.aclose()
        await self.http.close()
        await self.system.aclose()


def prepare_workdir(workdir: Path) -> None:
    """Start from an empty folder every run. Refuse to wipe anything the demo did not create, so a
    mistyped ``--data-dir`` can never delete someone's files."""
    if workdir.exists():
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise DemoError(
                f"{workdir} is not empty and was not created by `ryze demo`; choose another folder"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("created by `ryze demo`; wiped at the start of every run\n")


async def start_demo(options: DemoOptions, console: Console) -> Demo:
    """Start everything and (unless ``options.script`` is false) play the opening conversation."""
    workdir = options.workdir.resolve()
    prepare_workdir(workdir)
    # control_room: the agent page shows the connection conversation, with its QR code and commands.
    system = LocalSystem(workdir=workdir, control_room=True)
    # Unset ports keep LocalSystem's default: a free one picked by the OS.
    system.api_port = options.api_port or system.api_port
    system.bridge_port = options.bridge_port or system.bridge_port
    system.emulator_port = options.emulator_port or system.emulator_port
    if options.history:
        system.api_env["SIMULATOR_HISTORY_FILE"] = str(DEMO_HISTORY)
    http: aiohttp.ClientSession | None = None
    phone: PhoneServer | None = None
    try:
        await _start_services(system, console)
        name = options.instance
        with console.status(f"Creating instance [bold]{name}[/] with inline Chatwoot activation…"):
            created = await system.create_instance(options.instance)
        chatwoot = created.get("chatwoot") or {}
        if chatwoot.get("status") != "active":
            raise DemoError(f"Chatwoot activation failed: {chatwoot.get('error') or chatwoot}")
        inbox_id = int(chatwoot["chatwoot_inbox_id"])
        _done(console, f"instance [bold]{name}[/] connected; Chatwoot inbox #{inbox_id} is active")

        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        chat = PhoneChat(http, system.api_url, system.account_token, options.instance, options.contact)
        phone = PhoneServer(chat, port=options.phone_port or 0)
        await phone.start()
        _done(console, f"simulated phone page at {phone.url}")
        demo = Demo(system=system, phone=phone, instance=options.instance, inbox_id=inbox_id, http=http)
        print_urls(demo, console)  # before the script, so the person can watch it in both pages
        if options.script:
            await play_opening(demo, console)
        return demo
    except BaseException:
        # Also on Ctrl+C during start-up: no process may outlive the demo.
        if phone is not None:
            with contextlib.suppress(Exception):
                await phone.aclose()
        if http is not None:
            await http.close()
        await system.aclose()
        raise


async def _start_services(system: LocalSystem, console: Console) -> None:
    """``system.start()`` while reporting each service as its health check turns green."""
    specs = {"emulator": system.emulator_spec(), "bridge": system.bridge_spec(), "api": system.api_spec()}
    console.print(f"[dim]logs: {system.workdir / 'logs'}[/]")
    starting = asyncio.create_task(system.start())

    bases = {"emulator": system.emulator_url, "bridge": system.bridge_url, "api": system.api_url}

    async def announce(name: str, url: str) -> None:
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while not starting.done():
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            took = time.monotonic() - started
                            _done(console, f"{SERVICE_LABELS[name]} up at {bases[name]} ({took:.1f}s)")
                            return
                await asyncio.sleep(0.1)

    watchers = [asyncio.create_task(announce(name, spec.health_url)) for name, spec in specs.items()]
    try:
        with console.status("Starting the Chatwoot emulator, the bridge and RyzeAPI (simulated WhatsApp)…"):
            await starting
    except ServiceFailed as exc:
        raise DemoError(f"a service did not start:\n{exc}") from exc
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    _done(console, "RyzeAPI account created")


async def play_opening(demo: Demo, console: Console, steps: tuple[Step, ...] = OPENING) -> int:
    console.print("\n[bold]Opening conversation[/] (contact on the phone page ⇄ agent in the emulator):")

    contact = demo.phone.chat.contact.name

    def say(step: Step) -> None:
        who = f"[green]{contact} (WhatsApp)[/]" if step.who == "contact" else "[blue]agent[/]"
        console.print(f"  {who}: {step.text}")

    with console.status("relaying…"):
        demo.conversation_id = await run_script(demo.system, demo.phone.chat, demo.inbox_id, say, steps)
    _done(console, f"relayed both ways (Chatwoot conversation #{demo.conversation_id})")
    return demo.conversation_id


def print_urls(demo: Demo, console: Console) -> None:
    contact = demo.phone.chat.contact
    rows = (
        ("agent page (Chatwoot stand-in)", demo.agent_page_url),
        (f"simulated phone (you are {contact.name})", demo.phone_page_url),
        ("RyzeAPI docs", demo.api_docs_url),
    )
    width = max(len(label) for label, _ in rows) + 2
    console.print()
    console.print("[bold green]Ryze demo is running.[/] Open:")
    # soft_wrap: a URL or a token cut over two lines cannot be copied
    for label, url in rows:
        console.print(f"  {label.ljust(width)}[link={url}]{url}[/link]", highlight=False, soft_wrap=True)
    token = demo.system.account_token
    console.print(f"  {'account token (for /docs)'.ljust(width)}{token}", highlight=False, soft_wrap=True)


def _done(console: Console, text: str) -> None:
    console.print(f"[green]✓[/] {text}")


async def _until(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """Run ``work`` unless ``stop`` is set first (then cancel it and return None)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _watch(demo: Demo, stop: asyncio.Event) -> str | None:
    """Wait for Ctrl+C; returns the name of a service that died instead, if one does."""
    while not stop.is_set():
        dead = demo.dead_services()
        if dead:
            return dead[0]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    return None


async def run(options: DemoOptions, console: Console) -> int:
    """The `ryze demo` command: returns the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: the children run in their own sessions, so a closed terminal must not leave them behind.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    console.print(f"[bold]Ryze demo[/] — data in {options.workdir.resolve()} (fresh each run)")
    try:
        demo = await _until(stop, start_demo(options, console))
    except DemoError as exc:
        console.print(f"[red]✗ {exc}[/]", highlight=False)
        return 1
    except Exception as exc:  # a failed step of the opening: say which, and where the logs are
        logs = options.workdir.resolve() / "logs"
        console.print(f"[red]✗ {type(exc).__name__}: {exc}[/]\n  logs: {logs}", highlight=False)
        return 1
    if demo is None:
        console.print("stopped during start-up")
        return 130
    code = 0
    try:
        console.print("\nType on the phone page, answer on the agent page. [bold]Ctrl+C[/] stops everything.")
        died = await _watch(demo, stop)
        if died is not None:
            log = demo.system.workdir / "logs" / f"{died}.log"
            console.print(f"[red]✗ {SERVICE_LABELS.get(died, died)} exited unexpectedly; see {log}[/]")
            code = 1
    finally:
        with console.status("Stopping…"):
            await demo.aclose()
        console.print("stopped; bye")
    return code


def main(options: DemoOptions, console: Console | None = None) -> int:
    return asyncio.run(run(options, console or Console()))
