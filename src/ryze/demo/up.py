"""`ryze up`: RyzeAPI and the bridge on one host, as two supervised child processes.

Each child is the ordinary `ryze api` / `ryze bridge` with its settings from the environment; `up`
only fills in what ties the two together when the operator did not: a shared BRIDGE_TOKEN (generated
once into DATA_DIR/bridge.token, mode 0600) and the loopback URLs each service uses to reach the
other. The children run in their own sessions, so a Ctrl+C (or SIGTERM from systemd) reaches only
`up`, which then stops them in order; if either child dies, `up` stops the other and exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from ryze.api.settings import ApiSettings
from ryze.bridge.settings import BridgeSettings
from ryze.common.files import private_dir
from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.launcher import RunningService, ServiceFailed, ServiceSpec, Stack

TOKEN_FILE = "bridge.token"  # noqa: S105 — a file name, not a secret
START_TIMEOUT = 120.0  # neonize re-connects every stored instance at start; give it room


def dial_host(bind_host: str) -> str:
    """The address to reach a service bound to ``bind_host`` from this host."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0", "::", "localhost") else bind_host


def shared_token(configured: str, data_dir: Path) -> str:
    """BRIDGE_TOKEN when set; otherwise the one in DATA_DIR/bridge.token, created once (0600) so a
    restart keeps the links the bridge already holds."""
    if configured.strip():
        return configured.strip()
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
        path.unlink()
    private_dir(data_dir, tighten=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL + mode at creation: the secret is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


S = TypeVar("S", ApiSettings, BridgeSettings)


def own_url_follows(settings: S, field: str, overrides: dict[str, Any]) -> S:
    """``settings`` whose own-URL field (``BASE_URL`` / ``BRIDGE_PUBLIC_URL``), when left at its
    default, follows the ``--host``/``--port`` flags instead of naming the default port."""
    if not overrides or field in settings.model_fields_set:
        return settings
    host = dial_host(settings.host)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"
    values: dict[str, Any] = {**overrides, field: url}
    return type(settings)(**values)


@dataclass(frozen=True)
class Listen:
    """``ryze up --api-host/--api-port/--bridge-host/--bridge-port``: None = the environment's."""

    api_host: str | None = None
    api_port: int | None = None
    bridge_host: str | None = None
    bridge_port: int | None = None

    def settings(self) -> tuple[ApiSettings, BridgeSettings]:
        api: dict[str, Any] = {
            k: v for k, v in (("host", self.api_host), ("port", self.api_port)) if v is not None
        }
        bridge: dict[str, Any] = {
            k: v for k, v in (("host", self.bridge_host), ("port", self.bridge_port)) if v is not None
        }
        return (
            own_url_follows(ApiSettings(**api), "base_url", api),
            own_url_follows(BridgeSettings(**bridge), "public_url", bridge),
        )


def service_specs(
    api: ApiSettings, bridge: BridgeSettings, environ: Mapping[str, str] = os.environ
) -> tuple[ServiceSpec, ServiceSpec]:
    token = shared_token(api.bridge_token or bridge.token, api.data_dir)
    api_url = f"http://{dial_host(api.host)}:{api.port}"
    bridge_url = f"http://{dial_host(bridge.host)}:{bridge.port}"
    # The children read their listen address from the environment: pass on what `up` resolved
    # (flags included), so the address `up` dials is the one each child binds.
    api_env = {"BRIDGE_TOKEN": token, "HOST": api.host, "PORT": str(api.port), "BASE_URL": api.base_url}
    bridge_env = {
        "BRIDGE_TOKEN": token,
        "BRIDGE_HOST": bridge.host,
        "BRIDGE_PORT": str(bridge.port),
        "BRIDGE_PUBLIC_URL": bridge.public_url,
    }
    # One host: a Chatwoot next to Ryze (and its attachment URLs) is on loopback. Only filled in
    # when the operator set nothing; an empty FETCH_ALLOW= / BRIDGE_FETCH_ALLOW= keeps loopback shut.
    if "FETCH_ALLOW" not in environ:
        api_env["FETCH_ALLOW"] = LOOPBACK_ALLOW
    if "BRIDGE_FETCH_ALLOW" not in environ:
        bridge_env["BRIDGE_FETCH_ALLOW"] = LOOPBACK_ALLOW
    if not api.bridge_url.strip():
        api_env["BRIDGE_URL"] = bridge_url
    if not api.bridge_internal_ryzeapi_url.strip():
        api_env["BRIDGE_INTERNAL_RYZEAPI_URL"] = api_url
    return (
        ServiceSpec(name="api", command=["api"], env=api_env, health_url=f"{api_url}/healthz"),
        ServiceSpec(name="bridge", command=["bridge"], env=bridge_env, health_url=f"{bridge_url}/healthz"),
    )


class ConsoleStack(Stack):
    """A :class:`Stack` whose children write to our stdout/stderr (terminal or journald) instead of
    log files: `up` is what an operator runs in the foreground."""

    def _spawn(self, spec: ServiceSpec) -> RunningService:
        process = subprocess.Popen(  # noqa: S603 — our own interpreter and module, no shell
            [sys.executable, "-m", "ryze", *spec.command],
            env={**os.environ, **spec.env},
            start_new_session=True,
        )
        return RunningService(spec, process)


LABELS = {"api": "RyzeAPI", "bridge": "bridge"}


async def _first_exit(stack: Stack, stop: asyncio.Event) -> tuple[str, int] | None:
    """Wait for a stop signal (None) or for a child to exit (its name and exit code)."""
    while not stop.is_set():
        for name, service in stack.services.items():
            code = service.process.poll()
            if code is not None:
                return name, code
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    return None


async def run(console: Console, listen: Listen | None = None) -> int:
    api, bridge = (listen or Listen()).settings()
    api_spec, bridge_spec = service_specs(api, bridge)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: the children run in their own sessions, so a closed terminal must not leave them behind.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if dial_host(bridge.public_url.split("//", 1)[-1].split(":", 1)[0].split("/", 1)[0]) == "127.0.0.1":
        console.print(
            "[yellow]BRIDGE_PUBLIC_URL is a loopback address: a Chatwoot on another host cannot deliver "
            "webhooks to it. Set BRIDGE_PUBLIC_URL to the bridge's address as Chatwoot sees it.[/]"
        )
    stack = ConsoleStack()
    code = 0
    try:
        # RyzeAPI first: the bridge re-links every integration to it as soon as it starts.
        for spec in (api_spec, bridge_spec):
            starting = asyncio.create_task(stack.start(spec, timeout=START_TIMEOUT))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                console.print("ryze up: stopped during start-up", highlight=False)
                return 130  # the finally below still stops whatever was started
            service = starting.result()
            base = spec.health_url.rsplit("/", 1)[0]
            console.print(
                f"ryze up: {LABELS[spec.name]} ready at {base} (pid {service.pid})", highlight=False
            )
        console.print("ryze up: running; Ctrl+C or SIGTERM stops both", highlight=False)
        exited = await _first_exit(stack, stop)
        if exited is not None:
            name, status = exited
            others = ", ".join(LABELS[n] for n in stack.services if n != name)
            console.print(
                f"[red]ryze up: the {LABELS[name]} exited with code {status}; stopping {others}[/]",
                highlight=False,
            )
            code = 1
    except ServiceFailed as exc:
        console.print(f"[red]ryze up: {exc}[/]", highlight=False)
        code = 1
    finally:
        for name in ("bridge", "api"):  # the bridge first: it closes its links before RyzeAPI goes
            with contextlib.suppress(ProcessLookupError):
                await stack.stop(name)
    if code == 0:
        console.print("ryze up: stopped", highlight=False)
    return code


def main(console: Console | None = None, listen: Listen | None = None) -> int:
    return asyncio.run(run(console or Console(), listen))
