"""The streaming bench: its pure parts, and one tiny real run (`--quick`) against the test stack."""

from __future__ import annotations

import pytest

from sentimon.bench.stream_bench import ModelReport, StreamBenchError, main, parse_rates, render
from sentimon.bench.stream_runs import Offline, Runs, summarize_profile


def test_rates_need_max_before_a_share_of_it():
    assert parse_rates("max, 25%,500") == ["max", "25%", "500"]
    for bad in ("50%,max", "fast", "0", "-5%", ""):
        with pytest.raises(StreamBenchError):
            parse_rates(bad)


def test_run_result_percentiles_and_throughput():
    events = [
        {"timings": {"window_done_ms": 1000 + 10 * i, "ingest_to_window_ms": i + 1, "queue_ms": 1, "batch_size": 4},
         "origin": {"timestamp_ms": 990 + 10 * i}}
        for i in range(100)
    ]  # fmt: skip
    fixed = Runs._result("50%", 100.0, 100, events, 1.0, 0.5)
    assert (fixed.p50_ms, fixed.p95_ms, fixed.p99_ms) == (51, 95, 99)
    assert fixed.throughput == pytest.approx(100 / 1.0)  # first record at 990 ms, last update at 1990 ms
    assert fixed.cpu_ms_per_msg == pytest.approx(5.0)
    flat = Runs._result("max", None, 100, events, 1.0, 0.5)
    assert flat.p99_ms is None and flat.throughput == pytest.approx(99 / 0.99)


def test_profile_stages_take_the_first_matching_rule():
    collapsed = "\n".join([
        "main (x.py:1);_process (sentimon/streams/pipeline.py:9);InferenceSession.run (onnxruntime/capi/x.py:2) 30",
        "main (x.py:1);parse_message (sentimon/streams/schema.py:3) 10",
        "main (x.py:1);BaseEventLoop._run_once (asyncio/base_events.py:1);EpollSelector.select (selectors.py:4) 60",
        "garbage line",
    ])  # fmt: skip
    assert dict(summarize_profile(collapsed)) == pytest.approx(
        {"model: ONNX Runtime run": 0.3, "parse + validate JSON": 0.1, "idle: event loop waiting (epoll)": 0.6}
    )


def test_render_reports_both_ratios():
    from sentimon.bench.stream_runs import RunResult

    run = RunResult("max", None, 10, 10, 400.0, None, None, None, 100.0, 2.0, 1.0, None, 256)
    report = ModelReport("m", "m 1", [Offline(1, 10, 500.0), Offline(2, 10, 800.0)], [run])
    assert "| m (m 1) | 500 (1) | 800 (2) | 400 | 0.80 | 0.50 |" in render([report], 1, "4.4.0", "t", (1.5, 1, 1))
    two = render([report], 2, "4.4.0", "t", (1.5, 1, 1))  # two workers: per worker against one thread's rate
    assert "| 400 | 0.40 | 0.50 |" in two and "at the start: 1.50 / 1.00 / 1.00" in two


@pytest.mark.integration
@pytest.mark.slow
def test_quick_run_measures_offline_end_to_end_and_latency(stack_settings, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SENTIMON_KAFKA_BOOTSTRAP", stack_settings.stack.kafka_servers)
    monkeypatch.setenv("SENTIMON_REDIS_URL", stack_settings.stack.redis)
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## Streaming\nold\n\n## Other\nkeep\n")
    assert main(["--quick", "--models", "vader", "--texts", "templates", "--output", str(out)]) == 0
    text = out.read_text()
    assert "old" not in text and "## Other\nkeep" in text
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| vader |")]
    assert [r[2].strip() for r in rows] == ["max", "50%"]
    for r in rows:
        assert r[4].strip() == r[5].strip() and int(r[5].replace(",", "")) > 0  # every message scored
    assert rows[1][9].strip() != "n/a"  # p99 at half the max rate
    ratio_row = next(line for line in text.splitlines() if line.startswith("| vader (vader"))
    assert float(ratio_row.split("|")[5]) > 0
    assert "## Streaming" in capsys.readouterr().out


def test_help_prints(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--quick" in capsys.readouterr().out
