from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sentimon.core.settings import Settings, load_settings
from sentimon.replay.demo import demo_settings, settings_env
from sentimon.replay.demo_run import pace
from sentimon.replay.timeline import MARKET_SOURCE


def test_demo_settings_isolate_every_write_target(tmp_path: Path) -> None:
    base = load_settings(state_dir=tmp_path)
    a, b = demo_settings(base, "aaa", tmp_path / "a"), demo_settings(base, "bbb", tmp_path / "b")
    targets = [("topics", kind) for kind in ("social", "market", "scored", "dlq", "alerts")]
    targets += [("windows", "prefix"), ("alerts", "prefix"), ("stack", "database_url"), ("worker", "id")]
    for part, field in targets:
        values = [getattr(getattr(s, part), field) for s in (a, b, base)]
        assert values[0] != values[1] != values[2], (part, field)
    assert a.stream.hooks == ["sentimon.alerts:stream_hook"] and a.alerts.webhooks == []


def test_settings_env_reproduces_settings_in_a_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = demo_settings(load_settings(state_dir=tmp_path), "xyz", tmp_path)
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    again = load_settings()
    assert again.model_dump() == Settings.model_validate(settings.model_dump()).model_dump()


def test_pace_keeps_event_time_proportional_to_wall_time() -> None:
    now = [0.0]
    sent: list[tuple[float, int]] = []
    messages = [{"ts": t} for t in (0, 1000, 1000, 61_000)]
    wall = pace(messages, lambda m: sent.append((now[0], m["ts"])), speed=10.0,
                clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))  # fmt: skip
    assert [round(t, 3) for t, _ in sent] == [0.0, 0.1, 0.1, 6.1]
    assert wall == pytest.approx(6.1)


@pytest.mark.parametrize(
    ("date", "message"),
    [("2020-01-07", "older than the raw topics' retention"), ("2099-01-06", "has not ended"), ("someday", "--date")],
)
def test_demo_rejects_a_date_whose_records_kafka_would_not_keep(date: str, message: str) -> None:
    from typer.testing import CliRunner

    from sentimon.cli import app

    result = CliRunner().invoke(app, ["demo", "--date", date])
    assert result.exit_code != 0
    assert message in str(result.exception)


@pytest.mark.integration
@pytest.mark.slow
def test_demo_end_to_end_and_where_to_look_next(stack_settings, tmp_path: Path) -> None:
    """A shortened demo (two-hour session after an hour of history, VADER: fast and fixed), then every command
    its summary suggests, run as printed against the demo's stack and namespace."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")},
        "SENTIMON_STATE_DIR": str(stack_settings.stack.state_dir),
        "SENTIMON_KAFKA_PORT": str(stack_settings.stack.kafka_port),
        "SENTIMON_KAFKA_CONTROLLER_PORT": str(stack_settings.stack.kafka_controller_port),
        "SENTIMON_REDIS_PORT": str(stack_settings.stack.redis_port),
        "SENTIMON_POSTGRES_PORT": str(stack_settings.stack.postgres_port),
    }
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "sentimon", "demo", "--minutes", "120", "--history", "60", "--duration", "15",
         "--no-live", "--model", "vader", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    timeline = [json.loads(line) for line in (out / "timeline.jsonl").read_text().splitlines()]
    assert summary["messages"] == len(timeline) > 1000
    assert any(m["ts"] < summary["session_start_ms"] for m in timeline), "the history is played too"
    assert summary["alerts"], "VADER catches the planted TSLA sell-off and the brand crisis"
    assert 0.0 < summary["detection"]["recall"] <= 1.0

    steps = _where_to_look_next(printed)
    assert set(steps) == {"alerts", "windows", "replay"}, printed[-2000:]
    ran = {name: _run_printed(command, env, cwd=tmp_path) for name, command in steps.items()}
    for name, done in ran.items():
        assert done.returncode == 0, (name, done.stdout[-2000:], done.stderr[-2000:])

    listed = ran["alerts"].stdout
    for alert in summary["alerts"]:
        assert alert["rule"] in listed and alert["entity"] in listed

    windows = re.search(r"TSLA\b.*?: (\d+) mentions, negative (\d+)", ran["windows"].stdout)
    assert windows and int(windows[1]) > 0 and int(windows[2]) > 0, ran["windows"].stdout

    report = json.loads((out / "replay" / "report.json").read_text())
    tickers = [m for m in timeline if m["source"] == MARKET_SOURCE]  # the market topic's records
    assert 0 < len(tickers) < len(timeline) and report["records"] == len(tickers)
    assert set(report["models"]) == {"finance", "vader"}  # --model finance --compare vader
    assert all(m["scored"] == len(tickers) and "detection" in m for m in report["models"].values())
    assert "Label agreement" in (out / "replay" / "report.md").read_text()


def _where_to_look_next(printed: str) -> dict[str, str]:
    """``name: command`` lines after "where to look next:" (each printed on one line, never wrapped)."""
    tail = printed.split("where to look next:", 1)[1]
    steps = {}
    for line in tail.splitlines():
        match = re.fullmatch(r"\s+(alerts|windows|replay):\s+(.+)", line)
        if match:
            steps[match[1]] = match[2]
    return steps


def _run_printed(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """A printed ``[VAR=value ...] sentimon ...`` line, run as a shell would, with this interpreter's sentimon."""
    words = shlex.split(command)
    assignments = dict(w.split("=", 1) for w in itertools.takewhile(lambda w: "=" in w and w[0] != "-", words))
    argv = words[len(assignments) :]
    assert argv[0] == "sentimon", command
    return subprocess.run([sys.executable, "-m", "sentimon", *argv[1:]], env={**env, **assignments}, cwd=cwd,
                          capture_output=True, text=True, timeout=400)  # fmt: skip
