"""Serving the console: in the foreground (`sentimon console`) or on a background thread (`sentimon demo`)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Callable

from sentimon.console.errors import ConsoleError

STARTUP_TIMEOUT_S = 10.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token to require: the one given; off loopback without one, a fresh random one (the URL carries it)."""
    if token:
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(18)


def check_port(host: str, port: int) -> None:
    """Fail with the fix before uvicorn would log and exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConsoleError(f"the console cannot listen on {host}:{port} ({exc.strerror}); pick another port "
                               "with --port (console.port, SENTIMON_CONSOLE__PORT)") from None


def url_of(host: str, port: int, token: str | None = None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _server(settings, host: str, port: int, token: str | None):
    import uvicorn

    from sentimon.console.app import create_app

    app = create_app(settings, token=token or "")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    return uvicorn.Server(config)


def serve(settings, host: str, port: int, token: str | None = None, on_ready: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C / SIGTERM; ``on_ready`` gets the URL to open."""
    token = resolve_token(host, token)
    check_port(host, port)
    server = _server(settings, host, port, token)
    _started_message(server, lambda: on_ready(url_of(host, port, token)))
    server.run()


def _started_message(server, say: Callable[[], None]) -> None:
    # uvicorn has no "started" hook: announce the URL from its startup, once the socket is bound.
    original = server.startup

    async def startup(sockets=None) -> None:
        await original(sockets=sockets)
        if server.started:
            say()

    server.startup = startup


def serve_in_background(settings, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Start the console on a daemon thread; returns its URL (with the token when off loopback) and a ``stop()``
    that shuts it down. ``port`` 0 = ``console.port``. Raises ``ConsoleError`` when it cannot listen."""
    port = port or settings.console.port
    token = resolve_token(host, settings.console.token)
    check_port(host, port)
    server = _server(settings, host, port, token)
    thread = threading.Thread(target=server.run, name="sentimon-console", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        thread.join(timeout=5)
        raise ConsoleError(f"the console could not listen on {host}:{port} within {STARTUP_TIMEOUT_S:.0f} s; "
                           "pick another port (console.port, SENTIMON_CONSOLE__PORT)")  # fmt: skip

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return url_of(host, port, token), stop
