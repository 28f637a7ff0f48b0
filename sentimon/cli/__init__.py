"""The `sentimon` command: a thin shell over the packages (each command only wires them).

Each module in this package that defines ``register(app)`` adds its commands; heavy imports stay inside
the command functions so `sentimon --help` is instant.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path
from typing import Any

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
    if not verbose:
        # kafka-python logs every failed connection attempt; the commands turn a failure into one line naming the fix.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    ctx.obj = {"settings": load_settings(config)}


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_module, "register"):
        _module.register(app)


# One example per command, shown under its --help (tests/sentimon/test_cli_help.py checks every command has one).
EXAMPLES: dict[str, str] = {
    "up": "sentimon up --secure && sentimon --config ~/.local/state/sentimon/client.toml topics create",
    "down": "sentimon down --only kafka",
    "status": "sentimon status --json",
    "topics create": "sentimon topics create",
    "worker": "sentimon worker --model static --ready-file /tmp/worker.ready",
    "produce": "sentimon produce --file posts.jsonl --rate 200",
    "windows": "sentimon windows '$AAPL' --window 1h30m --json",
    "top": "sentimon top --window 24h --limit 5 > top.txt",
    "entities": "sentimon entities --search air",
    "score": "echo 'Shares fell 12% after the miss.' | sentimon score",
    "bench": "sentimon bench --accuracy-only",
    "eval": "sentimon eval --data test.csv --model default --compare vader --report eval-report",
    "compress": "sentimon compress --recipe tiny --work-dir /tmp/tiny",
    "models list": "sentimon models list --json",
    "models show": "sentimon models show default",
    "models register": "sentimon models register models/default --why 'retrained on December data'",
    "models promote": "sentimon models promote default@3f2a9c1b7d4e --why 'passed the canary'",
    "models rollback": "sentimon models rollback default --why 'negative share doubled after the promotion'",
    "models history": "sentimon models history default --json",
    "rollout start": "sentimon rollout start default@3f2a9c1b7d4e --canary 5 --steps 5,25,50,100 --interval 5m",
    "rollout status": "sentimon rollout status default --json",
    "rollout abort": "sentimon rollout abort default --why 'complaints about neutral labels'",
    "alerts list": "sentimon alerts list --state pending --entity TSLA",
    "alerts check": "sentimon alerts check alerts/rules/stock.yaml",
    "replay": "sentimon replay --topic sentimon.raw.social --from 2026-12-01 --model static --compare default",
    "replay clean": "sentimon replay clean --all --dry-run",
    "forget": "sentimon forget AAPL 'acme air' --yes",
    "demo": "sentimon demo",
    "console": "sentimon console --port 8088",
    "drift reference": "sentimon drift reference --topic sentimon.raw.social --since 2026-12-01 --until 2026-12-02",
    "drift status": "sentimon drift status --json",
}


def _polish(command: Any, path: str = "") -> None:
    """Help without type tags (flags show none, values their name) and with the command's example."""
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if param.param_type_name == "argument":
            param.display_type_rich = lambda ctx: None  # the argument's name and help say what it is
        elif param.metavar is None:
            desc = getattr(param, "type_descriptor", None)
            choices = [getattr(c, "value", c) for c in desc.choices or ()] if desc and desc.is_choice else []
            name = "[" + "|".join(map(str, choices)) + "]" if choices else (param.name or "value").upper()
            param.metavar = "" if getattr(param, "is_flag", False) else name
    if command.help:  # docstring line breaks are layout in the source, not in a terminal: reflow paragraphs
        command.help = "\n\n".join(" ".join(part.split()) for part in command.help.split("\n\n"))
    if path in EXAMPLES:
        command.epilog = f"Example: {EXAMPLES[path]}"
    for name, sub in getattr(command, "commands", {}).items():
        _polish(sub, f"{path} {name}".strip())


def command() -> Any:
    """The `sentimon` command as click runs it (the typer app, help polished)."""
    cmd = typer.main.get_command(app)
    _polish(cmd)
    return cmd


def main() -> None:
    try:
        command().main(prog_name="sentimon")
    except UserError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
    except Exception as exc:
        message = unreachable_service(exc)
        if message is None:
            raise
        raise SystemExit(fail(message).exit_code) from None


def unreachable_service(exc: BaseException) -> str | None:
    """The one-line error for a Redis or Kafka that does not answer, wherever a command met it (commands name the
    service earlier where they can); None for anything else, which stays a bug with its traceback."""
    import redis
    from kafka import errors as kafka_errors

    from sentimon.core.redact import mask_urls_in

    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return (
            f"Redis is unreachable ({mask_urls_in(str(exc)).rstrip('.')}): start it with `sentimon up` or set "
            "stack.redis_url (SENTIMON_REDIS_URL)"
        )
    if isinstance(exc, kafka_errors.KafkaConnectionError | kafka_errors.KafkaTimeoutError):
        return (
            f"Kafka is unreachable ({type(exc).__name__}: {exc}): start it with `sentimon up`, or check "
            "stack.kafka_bootstrap (SENTIMON_KAFKA_BOOTSTRAP) and the kafka.* connection settings"
        )
    return None
