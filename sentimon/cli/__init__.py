"""The `sentimon` command: a thin shell over the packages (each command only wires them).

Each module in this package that defines ``register(app)`` adds its commands; heavy imports stay inside
the command functions so `sentimon --help` is instant.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path

import typer

from sentimon.cli.common import fail
from sentimon.core.errors import UserError
from sentimon.core.settings import load_settings

app = typer.Typer(
    name="sentimon",
    help="Streaming sentiment monitoring: Kafka -> ONNX student model -> Redis windows -> alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path = typer.Option(None, "--config", help="TOML settings file (also SENTIMON_CONFIG)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug output."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = {"settings": load_settings(config)}


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_module, "register"):
        _module.register(app)


def main() -> None:
    try:
        app(prog_name="sentimon")
    except UserError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
