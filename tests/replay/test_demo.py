from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentimon.core.settings import Settings, load_settings
from sentimon.replay.demo import demo_settings, settings_env
from sentimon.replay.demo_run import pace


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


@pytest.mark.integration
@pytest.mark.slow
def test_demo_end_to_end_shortened(stack_settings, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")},
        "SENTIMON_STATE_DIR": str(stack_settings.stack.state_dir),
        "SENTIMON_KAFKA_PORT": str(stack_settings.stack.kafka_port),
        "SENTIMON_KAFKA_CONTROLLER_PORT": str(stack_settings.stack.kafka_controller_port),
        "SENTIMON_REDIS_PORT": str(stack_settings.stack.redis_port),
        "SENTIMON_POSTGRES_PORT": str(stack_settings.stack.postgres_port),
    }
    model = "default" if (Path(__file__).resolve().parents[2] / "models" / "default").is_dir() else "vader"
    result = subprocess.run(
        [sys.executable, "-m", "sentimon", "demo", "--minutes", "60", "--lead-in", "0", "--duration", "15", "--no-live",
         "--model", model, "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "summary" in result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    timeline = (tmp_path / "timeline.jsonl").read_text().splitlines()
    assert summary["messages"] == len(timeline) > 300
    assert 0.0 <= summary["detection"]["recall"] <= 1.0
