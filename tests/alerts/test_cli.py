"""`sentimon alerts list | check` through the real CLI entry point (SQLite history)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sentimon.alerts.history import History
from sentimon.alerts.schema import RULES_DIR
from sentimon.cli import app

from .fakes import HOUR, T0
from .history_cases import episode

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    history = History(url)
    for note, payload in episode("AAPL", T0, 3):
        history.record(note, payload)
    history.record(*episode("TSLA", T0 + HOUR, 3)[0])  # still firing
    history.close()
    return {"SENTIMON_DATABASE_URL": url}


def test_list_json_with_filters(db):
    result = runner.invoke(app, ["alerts", "list", "--json"], env=db)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["entity"], r["state"]) for r in rows] == [("TSLA", "firing"), ("AAPL", "resolved")]
    for row in rows:
        assert {"rule", "entity", "state", "started_at", "resolved_at", "value"} <= row.keys()
    assert rows[0]["resolved_at"] is None and rows[1]["resolved_at"] == "2026-01-01T00:03:00.000Z"
    firing = json.loads(runner.invoke(app, ["alerts", "list", "--json", "--state", "firing"], env=db).stdout)
    assert [r["entity"] for r in firing] == ["TSLA"]
    aapl = json.loads(runner.invoke(app, ["alerts", "list", "--json", "--entity", "AAPL"], env=db).stdout)
    assert [r["state"] for r in aapl] == ["resolved"]


def test_list_table_and_bad_state(db):
    result = runner.invoke(app, ["alerts", "list"], env=db)
    assert result.exit_code == 0 and "AAPL" in result.output and "h/neg" in result.output
    bad = runner.invoke(app, ["alerts", "list", "--state", "ringing"], env=db)
    assert bad.exit_code == 2


def test_check_ok_and_bad_rules(tmp_path):
    ok = runner.invoke(app, ["alerts", "check", str(RULES_DIR / "stock.yaml"), str(RULES_DIR / "opinion.yaml")])
    assert ok.exit_code == 0 and "ok stock: 6 rules" in ok.output and "ok opinion: 5 rules" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules:\n  - {name: a, kind: level, metric: negative_share, window: 1h, op: up}\n")
    # The real entry point prints user errors as one line with exit code 2.
    proc = subprocess.run([sys.executable, "-m", "sentimon", "alerts", "check", str(bad)], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "bad.yaml: rule 'a': field 'op'" in proc.stderr and "field 'threshold'" in proc.stderr


def test_list_with_an_unreachable_database_is_one_line(tmp_path):
    env = {"SENTIMON_DATABASE_URL": "postgresql://sentimon@127.0.0.1:9/sentimon", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "sentimon", "alerts", "list"], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "cannot reach the alert database" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.integration
def test_pending_alerts_are_listed_with_when_they_fire(stack_settings, unique, tmp_path):
    from sentimon.alerts.engine import AlertEngine
    from sentimon.alerts.schema import load_rulesets
    from sentimon.alerts.store import RedisStates
    from sentimon.streams.worker import connect_redis

    from .fakes import FakeWindows

    rs = next(rs for rs in load_rulesets(None) if rs.entities.selects("acme air"))
    rule = next(r for r in rs.rules if r.kind == "level" and r.for_ms > 0)
    w = FakeWindows()
    w.fill("acme air", T0, T0 + 2 * HOUR, 60, "negative", -0.9)  # breaching from the start
    client = connect_redis(stack_settings)
    engine = AlertEngine([rs], RedisStates(client, f"{unique}:alerts"), lambda note, payload: None)
    engine.evaluate(w, ["acme air"], T0 + HOUR)
    client.close()
    env = {"SENTIMON_REDIS_URL": stack_settings.stack.redis, "SENTIMON_ALERTS__PREFIX": f"{unique}:alerts",
           "SENTIMON_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}  # fmt: skip
    result = runner.invoke(app, ["alerts", "list", "--state", "pending", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["state"], r["entity"]) for r in rows} == {("pending", "acme air")}
    [row] = [r for r in rows if r["rule"] == rs.rule_id(rule)]
    assert row["pending_since"] == "2026-01-01T01:00:00.000Z"
    assert row["for_ms"] == rule.for_ms and row["fires_at"] > row["pending_since"]
    table = runner.invoke(app, ["alerts", "list"], env=env)  # the default shows pending ones too
    assert table.exit_code == 0 and "pending" in table.stdout and "fires at" in table.stdout


def test_all_lists_history_and_says_when_redis_is_missing(db):
    from sentimon.core.host import free_port

    missing_redis = {**db, "SENTIMON_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = runner.invoke(app, ["alerts", "list", "--json"], env=missing_redis)
    assert result.exit_code == 0
    assert [r["entity"] for r in json.loads(result.stdout)] == ["TSLA", "AAPL"]
    assert "pending alerts not shown" in result.stderr
