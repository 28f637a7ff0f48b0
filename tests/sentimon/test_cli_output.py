"""The command line's rules for every command: help with an example and no type tags; data on stdout, errors
as one line on stderr with a non-zero exit; up-front checks that fail fast instead of hanging."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from sentimon.cli import EXAMPLES, command
from sentimon.core.host import free_port
from sentimon.streams.windows import WindowStore
from sentimon.streams.worker import connect_redis
from tests.streams.test_cli import base_env, sentimon


def _paths(cmd, path: str = "") -> list[str]:
    subs = getattr(cmd, "commands", {})
    if not subs:
        return [path]
    own = [path] if path and getattr(cmd, "invoke_without_command", False) else []  # a group that runs itself
    return own + [p for name, sub in subs.items() for p in _paths(sub, f"{path} {name}".strip())]


COMMANDS = _paths(command())


@pytest.mark.parametrize("path", COMMANDS)
def test_every_command_has_an_example_and_no_type_tags(path, capsys, monkeypatch):
    assert path in EXAMPLES, f"add an example for `sentimon {path}` to sentimon.cli.EXAMPLES"
    monkeypatch.setenv("COLUMNS", "250")
    assert command().main([*path.split(), "--help"], prog_name="sentimon", standalone_mode=False) == 0
    output = capsys.readouterr().out
    assert f"Example: {EXAMPLES[path]}" in output
    assert not re.search(r"<(bool|str|int|float|path|list)", output), output
    assert EXAMPLES[path].startswith(f"sentimon {path}") or path == "score", "the example runs the command itself"


def test_examples_name_only_existing_commands():
    assert set(EXAMPLES) <= set(COMMANDS)


def test_tables_go_to_stdout():
    result = sentimon("models", "list", env=base_env())
    assert result.returncode == 0, result.stderr
    assert b"default" in result.stdout and b"vader" in result.stdout and b"cascade" in result.stdout
    rows = json.loads(sentimon("models", "list", "--json", env=base_env()).stdout)
    assert {r["name"] for r in rows} >= {"vader", "cascade", "default", "static"}
    assert {r["kind"] for r in rows} >= {"lexicon", "cascade", "transformer", "static"}


@pytest.mark.parametrize("name", ["vader", "cascade", "default", "static"])
def test_models_show_works_for_every_name_score_accepts(name):
    result = sentimon("models", "show", name, env=base_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(name)
    assert json.loads(sentimon("models", "show", name, "--json", env=base_env()).stdout)


def test_alerts_check_prints_to_stdout():
    result = sentimon("alerts", "check", "alerts/rules/stock.yaml", env=base_env())
    assert result.returncode == 0 and b"ok" in result.stdout and not result.stdout.startswith(b"error")


def test_negative_rate_is_rejected():
    result = sentimon("produce", "--file", "-", "--rate", "-1", env=base_env(), stdin=b"")
    assert result.returncode == 2 and b"--rate" in result.stderr


def test_produce_with_kafka_down_fails_fast_in_one_line():
    started = time.monotonic()
    result = sentimon("produce", "--file", "-", env=base_env(SENTIMON_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}"),
                      stdin=b'{"id": "1", "text": "hi"}\n')  # fmt: skip
    assert result.returncode == 2
    assert b"unreachable" in result.stderr and b"sentimon up" in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1, result.stderr
    assert time.monotonic() - started < 30  # was 30 s before it said so; now the 5 s bootstrap timeout


@pytest.mark.parametrize(
    "args",
    [("rollout", "status"), ("rollout", "abort", "m"), ("drift", "status"), ("drift", "reference", "--topic", "t"),
     ("windows", "AAPL")],
)  # fmt: skip
def test_redis_or_kafka_down_is_one_line_naming_the_fix(args):
    env = base_env(SENTIMON_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
                   SENTIMON_REDIS_URL=f"redis://:s3cret@127.0.0.1:{free_port()}/0")  # fmt: skip
    result = sentimon(*args, env=env)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "unreachable" in err and "sentimon up" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "s3cret" not in err


@pytest.mark.integration
def test_produce_to_a_missing_topic_names_the_fix(stack_settings, unique):
    started = time.monotonic()
    env = base_env(SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers)
    result = sentimon("produce", "--file", "-", "--topic", f"{unique}.nosuchtopic", env=env,
                      stdin=b'{"id": "1", "text": "hi"}\n')  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        f"error: topic {unique}.nosuchtopic does not exist; create the pipeline's topics with "
        "`sentimon topics create` (or name an existing topic)"
    )
    assert time.monotonic() - started < 30  # was a 60 s hang and hundreds of log lines


@dataclass(frozen=True)
class Ev:
    message_id: str
    ts_ms: int
    entities: list[str] = field(default_factory=list)
    label: str = "negative"
    score: float = -0.5


@pytest.fixture
def windows_env(stack_settings, unique):
    store = WindowStore.from_settings(connect_redis(stack_settings), stack_settings.windows.model_copy(
        update={"prefix": unique}))  # fmt: skip
    now = int(time.time() * 1000)
    store.apply([Ev(f"m{i}", now - 60_000, ["AAPL"] if i % 2 else ["acme air"]) for i in range(10)])
    return base_env(SENTIMON_REDIS_URL=stack_settings.stack.redis, SENTIMON_WINDOWS__PREFIX=unique)


@pytest.mark.integration
@pytest.mark.parametrize("typed", ["AAPL", "aapl", "$AAPL", "Apple"])
def test_windows_finds_an_entity_as_typed(windows_env, typed):
    result = sentimon("windows", typed, "--json", env=windows_env)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert (row["entity"], row["count"]) == ("AAPL", 5)


@pytest.mark.integration
def test_windows_unknown_entity_suggests_and_fails(windows_env):
    result = sentimon("windows", "acme", env=windows_env)
    assert result.returncode == 2
    assert "did you mean acme air?" in result.stderr.decode() and b"sentimon entities" in result.stderr


@pytest.mark.integration
def test_entities_lists_known_entities_with_counts(windows_env):
    rows = json.loads(sentimon("entities", "--json", env=windows_env).stdout)
    counts = {r["entity"]: r["count"] for r in rows}
    assert counts == {"AAPL": 5, "acme air": 5}
    found = json.loads(sentimon("entities", "--search", "ACME", "--json", env=windows_env).stdout)
    assert [r["entity"] for r in found] == ["acme air"]


@pytest.mark.integration
def test_window_flags_are_checked_against_retention_and_end(windows_env):
    result = sentimon("top", "--window", "30d", env=windows_env)
    assert result.returncode == 2 and b"longer than the 8d the windows keep" in result.stderr
    result = sentimon("top", "--end", "2020-01-01", env=windows_env)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == "no mentions in the 1h before 2020-01-01 00:00 UTC"
    table = sentimon("top", "--window", "1h30m", env=windows_env)
    assert table.returncode == 0 and b"AAPL" in table.stdout and b"acme air" in table.stdout


def test_main_module_runs():
    assert subprocess.run([sys.executable, "-m", "sentimon", "--help"], capture_output=True).returncode == 0


@pytest.mark.integration
def test_produce_reports_what_the_worker_will_dead_letter(stack_settings, unique, make_topic):
    topic = make_topic(f"{unique}.raw", 1)
    env = base_env(SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers)
    lines = b'{"id":"1","text":"hi"}\n\n{"id":"2","text":"\\ud83d"}\n{"id":"3","text":""}\nnot json\n'
    result = sentimon("produce", "--file", "-", "--topic", topic, env=env, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(f"sent 4 messages to {topic}")
    err = result.stderr.decode()
    assert "skipped 1 blank line" in err
    assert "the worker will dead-letter 3 of them: " in err
    assert all(f"1 {reason}" in err for reason in ("lone_surrogate", "empty_text", "invalid_json"))
    all_bad = sentimon("produce", "--file", "-", "--topic", topic, env=env, stdin=b"nope\n")
    assert all_bad.returncode == 2 and b"none of the 1 lines is a valid message" in all_bad.stderr
    empty = sentimon("produce", "--file", "-", "--topic", topic, env=env, stdin=b"")
    assert empty.returncode == 2 and b"standard input has no lines to send" in empty.stderr
