"""Links into the console, for alert payloads and messages (pure: no server needed to build one).

The format lives in ``ConsoleSettings.entity_url`` (core), so the alerts package builds the same links."""

from __future__ import annotations

from sentimon.core.parts import ConsoleSettings


def base_url(settings) -> str:
    """``console.public_url``, else the address the console binds (loopback by default)."""
    return settings.console.base_url()


def entity_link(base: str, entity: str, at_ms: int | None = None, range_name: str = "6h") -> str:
    """The entity page under ``base`` centred on ``at_ms``, e.g. for ``payload["console_url"]``."""
    return ConsoleSettings(public_url=base).entity_url(entity, at_ms, range_name)
