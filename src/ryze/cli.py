"""The ``ryze`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Ryze: WhatsApp HTTP API (RyzeAPI) with a Chatwoot bridge.", no_args_is_help=True)
account_app = typer.Typer(help="Manage RyzeAPI accounts.", no_args_is_help=True)
app.add_typer(account_app, name="account")
console = Console()


@app.command()
def api() -> None:
    """Run RyzeAPI (settings from the environment; the schema is upgraded on start)."""
    import uvicorn

    from ryze.api.app import create_app
    from ryze.api.settings import ApiSettings
    from ryze.common.lifespan import freeze_gc_after_startup
    from ryze.common.logging import configure

    settings = ApiSettings()
    configure(settings.log_level, service="ryzeapi")
    app = create_app(settings)
    freeze_gc_after_startup(app)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
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
def bridge() -> None:
    """Run the bridge, RyzeIntegrations (settings from BRIDGE_* variables; schema upgraded on start)."""
    from ryze.bridge.server import serve

    serve()


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
    data_dir: str = typer.Option("data/demo", help="Working folder, wiped at every start."),
    api_port: int | None = typer.Option(None, help="RyzeAPI port (default: a free one)."),
    bridge_port: int | None = typer.Option(None, help="Bridge port (default: a free one)."),
    emulator_port: int | None = typer.Option(None, help="Chatwoot emulator port (default: a free one)."),
    phone_port: int | None = typer.Option(None, help="Simulated-phone page port (default: a free one)."),
) -> None:
    """The whole system on loopback (simulated WhatsApp, Chatwoot emulator, phone page) until Ctrl+C."""
    from ryze.demo.runner import DemoOptions
    from ryze.demo.runner import main as run_demo

    options = DemoOptions(Path(data_dir), script=not no_script, api_port=api_port, bridge_port=bridge_port,
                          emulator_port=emulator_port, phone_port=phone_port)  # fmt: skip
    raise typer.Exit(run_demo(options, console))


@app.command()
def up() -> None:
    """RyzeAPI and the bridge in one command for a single host (settings from the environment)."""
    from ryze.demo.up import main as run_up

    raise typer.Exit(run_up(console))


def main() -> None:
    app()
