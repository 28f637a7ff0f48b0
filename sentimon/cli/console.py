"""`sentimon console`: the live web board (entities, alerts, pipeline status) over the running stack."""

from __future__ import annotations

import typer

from sentimon.cli.common import console, settings_of


def console_command(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Bind address (default: setting `console.host`, 127.0.0.1). Off loopback "
                             "a token is required: `console.token`, or a random one printed in the URL."),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default: setting `console.port`)."),
    token: str = typer.Option(None, help="Access token (default: setting `console.token`)."),
) -> None:
    """Serve the board: entity rows with 1 h / 24 h sentiment and firing alerts, entity pages with the timeline,
    alert episodes, top terms and example posts, the alert list, and the worker's status. Ctrl-C stops it."""
    from sentimon.console import serve

    settings = settings_of(ctx)
    host = host or settings.console.host
    port = port or settings.console.port

    def ready(url: str) -> None:
        console.print(f"console: [bold]{url}[/] (Ctrl-C stops it)", highlight=False)

    try:
        serve(settings, host, port, token or settings.console.token, on_ready=ready)
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then raises it again for the caller
        console.print("console stopped")


def register(app: typer.Typer) -> None:
    app.command("console")(console_command)
