"""Grafana dashboards: provisioning layout, every panel query parses (promtool), and -- against a real
Prometheus (the Debian package) scraping a real worker and the console during a short run -- every panel
query returns data. Grafana itself is not packaged here; its panels are exactly these PromQL queries."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from sentimon.core.host import free_port
from tests.alerts.test_stream_alerts import rules
from tests.infra.test_prometheus import PROM, promtool

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
MIN = 60_000


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((board["uid"], panel["title"], target["expr"]))
    return out


def test_dashboards_are_provisioned_from_the_folder_compose_mounts() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"sentimon-pipeline", "sentimon-model", "sentimon-entities",
                                            "sentimon-alerts"}  # fmt: skip
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sentimon.yml").read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./infra/grafana/dashboards:{entry['options']['path']}:ro" in mounts
    assert "./infra/prometheus/rules:/etc/prometheus/rules:ro" in compose["services"]["prometheus"]["volumes"]
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["type"] == "alertlist" or panel.get("targets"), f"{path.name}: {panel['title']}"


def test_every_panel_query_parses(tmp_path: Path) -> None:
    # promtool parses PromQL when it checks rules: one recording rule per panel query.
    queries = panel_queries()
    group = {"name": "panels", "rules": [{"record": f"panel:q{i}", "expr": q} for i, (_, _, q) in enumerate(queries)]}
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [group]}))
    done = subprocess.run([promtool(), "check", "rules", str(tmp_path / "panels.yml")], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def _messages(base_ms: int) -> list[bytes]:
    out = []
    for m in range(8):
        for j in range(6):
            out.append({"id": f"MSFT-{m}-{j}", "ts": base_ms + m * MIN + j * 5000, "text": "MSFT results are out",
                        "entities": ["MSFT"]})  # fmt: skip
            text = "AAPL recall, awful and terrible" if m >= 2 else "AAPL launches a phone"
            out.append({"id": f"AAPL-{m}-{j}", "ts": base_ms + m * MIN + j * 5000 + 1, "text": text,
                        "entities": ["AAPL"]})  # fmt: skip
    return [json.dumps(x).encode() for x in out] + [b"{not json"]  # one dead letter


def _query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return [r for r in body["data"]["result"] if r["value"][1].lower() not in ("nan", "+inf", "-inf")]


def _prometheus(tmp_path: Path, targets: dict[str, int]) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: install the Debian package prometheus (infra/bootstrap.sh does)")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted((PROM / "rules").glob("*.yml"))],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{p}"]}]}
                           for job, p in targets.items()],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.integration
@pytest.mark.slow
def test_every_panel_query_returns_data_from_a_real_worker(stack_settings, unique, make_topic, tmp_path) -> None:
    from sentimon.console import serve_in_background
    from tests.streams.conftest import StreamEnv, send, wait_for

    ruleset = "g" + unique[-8:]
    (tmp_path / "rules.yaml").write_text(rules(ruleset, for_="1m"))
    env = StreamEnv(stack_settings, unique, tmp_path)
    env.extra_env = {
        "SENTIMON_STREAM_HOOKS": '["sentimon.alerts:stream_hook"]',
        "SENTIMON_ALERTS_RULES": json.dumps([str(tmp_path / "rules.yaml")]),
        "SENTIMON_ALERTS_PREFIX": f"{unique}:alerts",
        "SENTIMON_DATABASE_URL": stack_settings.stack.database,
    }
    for kind, topic in env.topics.items():
        make_topic(topic, partitions=4 if kind in ("social", "market") else 1)
    prom = None
    stop = None
    try:
        worker = env.start_worker()
        console_settings = stack_settings.replace(
            windows={"prefix": env.name}, metrics={"port": worker.metrics_port},
            topics={k: v for k, v in env.topics.items()}, console={"examples_lookback": 100},
        )  # fmt: skip
        console_port = free_port()
        _, stop = serve_in_background(console_settings, "127.0.0.1", console_port)
        prom, base = _prometheus(tmp_path, {"sentimon-worker": worker.metrics_port, "sentimon-console": console_port})
        worker.wait_ready()
        start_ms = (int(time.time() * 1000) - 9 * MIN) // MIN * MIN
        send(stack_settings.stack.kafka_servers, env.topics["social"], _messages(start_ms))
        wait_for(lambda: worker.sample("sentimon_alert_deliveries_total{") >= 1, 90, "an alert delivered")

        queries = panel_queries()
        missing: list[tuple[str, str, str]] = []
        # Rates need the counters to move between scrapes: keep a trickle of live traffic flowing, as a dashboard
        # watches a live pipeline (one burst can be over before Prometheus's first scrape on a loaded machine).
        deadline, tick = time.monotonic() + 120, 0
        while time.monotonic() < deadline:
            tick += 1
            live = [{"id": f"live-{tick}-{j}", "ts": int(time.time() * 1000), "text": "MSFT results are out",
                     "entities": ["MSFT"]} for j in range(3)]  # fmt: skip
            send(stack_settings.stack.kafka_servers, env.topics["social"], [json.dumps(x).encode() for x in live])
            missing = [q for q in queries if not _query(base, q[2])]
            if not missing:
                break
            time.sleep(1)
        assert not missing, "panel queries without data:\n" + "\n".join(f"{d} / {t}: {q}" for d, t, q in missing)
    finally:
        if stop:
            stop()
        if prom is not None:
            prom.terminate()
            prom.wait(15)
        env.stop_all()
