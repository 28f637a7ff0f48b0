"""The live web console: entity board, entity pages, alert list and pipeline status over the running stack.

An application layer beside replay and bench: it reads the Redis windows (``streams``), the alert history
(``alerts``), the scored topic (example posts) and the worker's /metrics. Start reading at ``app.create_app``;
``views`` holds the pure computations the pages show.
- ``create_app(settings)``: the ASGI app; ``serve(...)``: run it in the foreground (`sentimon console`).
- ``serve_in_background(settings, host, port) -> (url, stop)``: for `sentimon demo`.
- ``entity_link(base, entity, at_ms)`` / ``base_url(settings)``: links for alert payloads.
Starlette and uvicorn are imported when a server starts, so importing this package stays light.
"""

from sentimon.console.errors import ConsoleError
from sentimon.console.links import base_url, entity_link
from sentimon.console.server import serve, serve_in_background


def create_app(*args, **kwargs):
    from sentimon.console.app import create_app as create

    return create(*args, **kwargs)


__all__ = ["ConsoleError", "base_url", "create_app", "entity_link", "serve", "serve_in_background"]
