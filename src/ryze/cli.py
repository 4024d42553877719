"""The ``ryze`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(help="Ryze: WhatsApp HTTP API (RyzeAPI) with a Chatwoot bridge.", no_args_is_help=True)
account_app = typer.Typer(help="Manage RyzeAPI accounts.", no_args_is_help=True)
app.add_typer(account_app, name="account")
console = Console()


def _listen_overrides(host: str | None, port: int | None) -> dict[str, Any]:
    """The ``--host`` / ``--port`` given on the command line (they win over the environment)."""
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    return overrides


@app.command()
def api(
    host: str | None = typer.Option(None, help="Bind address (HOST, default 127.0.0.1)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (PORT, default 8080)."),
) -> None:
    """Run RyzeAPI (settings from the environment; the schema is upgraded on start)."""
    from ryze.api.app import create_app
    from ryze.api.settings import ApiSettings
    from ryze.common.files import private_umask
    from ryze.common.lifespan import freeze_gc_after_startup
    from ryze.common.logging import configure
    from ryze.common.serving import serve
    from ryze.demo.up import own_url_follows

    private_umask()  # databases, WAL files, keys, WhatsApp sessions: owner-only
    overrides = _listen_overrides(host, port)
    settings = own_url_follows(ApiSettings(**overrides), "base_url", overrides)
    configure(settings.log_level, service="ryzeapi")
    app = create_app(settings)
    freeze_gc_after_startup(app)
    serve(
        app,
        host=settings.host,
        port=settings.port,
        service="ryzeapi",
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
    )


@account_app.command("create")
def account_create(
    name: str = typer.Option("", help="A label for the account."),
    quota: int | None = typer.Option(None, help="Instance quota (default: INSTANCE_QUOTA)."),
) -> None:
    """Create an account and print its TokenAccount (shown once; stored only as a hash)."""
    from ryze.api.db import Database
    from ryze.api.services.accounts import AccountService, CreatedAccount
    from ryze.api.settings import ApiSettings

    async def run() -> CreatedAccount:
        db = Database(ApiSettings().database_url)
        try:
            await db.upgrade()
            return await AccountService(db).create(name, instance_quota=quota)
        finally:
            await db.aclose()

    created = asyncio.run(run())
    console.print(f"account [bold]{created.id}[/bold] created")
    console.print("TokenAccount (shown once, store it now):", style="yellow")
    print(created.token)  # noqa: T201 - plain stdout so scripts can capture it


@app.command()
def keygen() -> None:
    """Print a new random AES-256 key for ENCRYPTION_KEY (prepend it to rotate: ``new,old``)."""
    from ryze.common.crypto import generate_key

    print(generate_key())  # noqa: T201 - the key is the output


@app.command()
def bridge(
    host: str | None = typer.Option(None, help="Bind address (BRIDGE_HOST, default 127.0.0.1)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (BRIDGE_PORT, default 8090)."),
) -> None:
    """Run the bridge, RyzeIntegrations (settings from BRIDGE_* variables; schema upgraded on start)."""
    from ryze.bridge.server import serve
    from ryze.bridge.settings import BridgeSettings
    from ryze.common.files import private_umask
    from ryze.demo.up import own_url_follows

    private_umask()  # the bridge database (Chatwoot tokens, encrypted) and its key: owner-only
    overrides = _listen_overrides(host, port)
    serve(own_url_follows(BridgeSettings(**overrides), "public_url", overrides))


@app.command("chatwoot-emulator")
def chatwoot_emulator(
    host: str | None = typer.Option(None, help="Bind address (EMULATOR_HOST, default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (EMULATOR_PORT, default 3000)."),
    webhook_timeout: float | None = typer.Option(None, help="Webhook timeout in seconds (default 5)."),
) -> None:
    """Run the Chatwoot emulator (in memory) for tests, the demo and benchmarks."""
    from ryze.emulator.server import serve

    serve(host, port, webhook_timeout=webhook_timeout)


@app.command()
def demo(
    no_script: bool = typer.Option(False, "--no-script", help="Skip the scripted opening conversation."),
    history: bool = typer.Option(False, "--history", help="The phone starts with chats to import."),
    data_dir: str = typer.Option("data/demo", help="Working folder, wiped at every start."),
    api_port: int | None = typer.Option(None, help="RyzeAPI port (default: a free one)."),
    bridge_port: int | None = typer.Option(None, help="Bridge port (default: a free one)."),
    emulator_port: int | None = typer.Option(None, help="Chatwoot emulator port (default: a free one)."),
    phone_port: int | None = typer.Option(None, help="Simulated-phone page port (default: a free one)."),
) -> None:
    """The whole system on loopback (simulated WhatsApp, Chatwoot emulator, phone page) until Ctrl+C."""
    from ryze.demo.runner import DemoOptions
    from ryze.demo.runner import main as run_demo

    options = DemoOptions(
        Path(data_dir),
        script=not no_script,
        history=history,
        api_port=api_port,
        bridge_port=bridge_port,
        emulator_port=emulator_port,
        phone_port=phone_port,
    )
    raise typer.Exit(run_demo(options, console))


@app.command()
def up(
    api_host: str | None = typer.Option(None, help="RyzeAPI bind address (HOST, default 127.0.0.1)."),
    api_port: int | None = typer.Option(None, min=1, max=65535, help="RyzeAPI port (PORT, default 8080)."),
    bridge_host: str | None = typer.Option(None, help="Bridge bind address (BRIDGE_HOST)."),
    bridge_port: int | None = typer.Option(
        None, min=1, max=65535, help="Bridge port (BRIDGE_PORT, default 8090)."
    ),
) -> None:
    """RyzeAPI and the bridge in one command for a single host (settings from the environment)."""
    from ryze.common.files import private_umask
    from ryze.demo.up import Listen
    from ryze.demo.up import main as run_up

    private_umask()  # the token file, and both children inherit it
    listen = Listen(api_host=api_host, api_port=api_port, bridge_host=bridge_host, bridge_port=bridge_port)
    raise typer.Exit(run_up(console, listen))


def main() -> None:
    app()
