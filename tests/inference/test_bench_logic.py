"""The pure parts of sentimon/bench/: the cascade threshold rule, the row discovery, the report and config writers."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from sentimon.bench.cascade import choose, curve_points
from sentimon.bench.run import END, START, write_section
from sentimon.bench.tune import write_config
from sentimon.core.settings import ConfigError
from sentimon.inference.evaluation import LabelledSet


def test_cascade_curve_and_rule():
    split = LabelledSet("s", ["a", "b", "c", "d"], np.array([2, 0, 1, 2]))
    fast = np.array([[0.1, 0.1, 0.8], [0.4, 0.35, 0.25], [0.5, 0.3, 0.2], [0.3, 0.36, 0.34]])
    slow = np.array([[0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    points = curve_points([fast], [slow], [split], [0.0, 0.1, 0.25, 1.0])
    assert [p["escalated"] for p in points] == [0.0, 0.5, 0.75, 1.0]
    assert [p["mean_accuracy"] for p in points] == [0.5, 0.75, 1.0, 1.0]
    assert choose(points, tolerance_pt=0.0)["threshold"] == 0.25  # best accuracy, least escalation
    assert choose(points, tolerance_pt=30.0)["threshold"] == 0.1  # 0.75 is within 30 pt of 1.0
    assert choose(points, tolerance_pt=100.0)["threshold"] == 0.0


def test_write_section_replaces_only_its_own(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Compression\nkeep me\n")
    write_section(md, f"{START}\nfirst\n{END}\n")
    write_section(md, f"{START}\nsecond\n{END}\n")
    write_section(md, "<!-- c:start -->\nother\n<!-- c:end -->\n", "<!-- c:start -->", "<!-- c:end -->")
    text = md.read_text()
    assert "keep me" in text and "second" in text and "first" not in text and text.count(START) == 1
    assert "other" in text


def test_write_config_merges_and_validates(tmp_path):
    cfg = tmp_path / "sentimon.toml"
    cfg.write_text("redis_port = 16400\ninference_threads = 4\n")
    write_config(cfg, {"threads": 2, "max_batch": 32, "pad_multiple": 8, "max_batch_tokens": 4096})
    data = tomllib.loads(cfg.read_text())
    assert data == {"redis_port": 16400, "inference_threads": 2, "inference_max_batch": 32,
                    "inference_pad_multiple": 8, "inference_max_batch_tokens": 4096}  # fmt: skip
    with pytest.raises(ConfigError):
        write_config(cfg, {"max_batch": 0})
    assert json.dumps(tomllib.loads(cfg.read_text()))  # a failed write left the file intact
    assert tomllib.loads(cfg.read_text())["inference_max_batch"] == 32


def test_write_config_fills_an_inference_table_and_drops_its_flat_twins(tmp_path):
    from sentimon.core.settings import load_settings

    cfg = tmp_path / "sentimon.toml"
    cfg.write_text('inference_max_batch = 8\nmodel = "static"\n\n[inference]\nthreads = 1\n')
    write_config(cfg, {"threads": 2, "max_batch": 32})
    data = tomllib.loads(cfg.read_text())
    assert data == {"model": "static", "inference": {"threads": 2, "max_batch": 32}}
    settings = load_settings(cfg)  # both spellings of one key in a file would be a ConfigError
    assert (settings.inference.threads, settings.inference.max_batch, settings.inference.model) == (2, 32, "static")


def test_rows_use_what_exists_and_say_what_is_skipped(tmp_path):
    import shutil

    from sentimon.bench.rows import discover
    from sentimon.core.settings import load_settings
    from sentimon.inference.cascade import CascadeConfig, write_cascade

    from .conftest import TINY, TINY_STATIC

    settings = load_settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache")
    shutil.copytree(TINY, settings.inference.models_dir / "default")
    shutil.copytree(TINY_STATIC, settings.inference.models_dir / "static")
    config = CascadeConfig(version="t", fast="static", accurate="default", threshold=0.2)
    write_cascade(settings.inference.models_dir / "cascade", config)
    rows, skipped = discover(settings, teacher=tmp_path / "teacher", extra={"mine": str(TINY)})
    labels = [r.label for r in rows]
    assert labels == ["HF pipeline fp32 teacher", "ORT int8 student", "static tier", "cascade", "VADER", "mine"]
    assert any(s.startswith("ORT fp32 student: no bundle") for s in skipped)
    assert any(s.startswith("pruned student int8: no bundle") for s in skipped)


def test_worker_measures_a_row_and_the_report_renders(tmp_path):
    from sentimon.bench.run import markdown
    from sentimon.bench.worker import measure

    from .conftest import TINY

    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps({"tweet": ["love it", "terrible"] * 8, "headline": ["great news"] * 8,
                                 "long": [" ".join(["hate"] * 100)] * 2}))  # fmt: skip
    split = tmp_path / "test_s.jsonl"
    split.write_text('{"text": "I love it", "label": "positive"}\n{"text": "the news", "label": "neutral"}\n')
    job = {"threads": 1, "batch_sizes": [1, 4], "micro_batch": 4, "budget_s": 0.05, "latency_calls": 5, "passes": 2,
           "texts_file": str(texts), "splits": [str(split)]}  # fmt: skip
    rows = [{"label": "ORT int8 student", "kind": "scorer", "ref": str(TINY), "note": "tiny"},
            {"label": "VADER", "kind": "scorer", "ref": "vader", "note": "lexicon"}]  # fmt: skip
    results = [measure({**job, "row": row}) for row in rows]
    r = results[0]
    assert set(r["throughput"]) == {"tweet", "headline", "long"} and set(r["throughput"]["long"]) == {"1", "4"}
    assert all(v > 0 for s in r["throughput"].values() for v in s.values())
    assert set(r["latency_ms"]) == {"1", "4"} and r["latency_ms"]["1"]["p50"] <= r["latency_ms"]["1"]["p99"]
    assert r["accuracy"]["s"]["n"] == 2 and r["size_bytes"] > 0 and r["peak_rss_bytes"] > 0
    report = {"date": "d", "machine": "m", "loadavg": 1.0, "job": job, "results": results, "skipped": ["x: why"],
              "splits": ["test_s.jsonl"]}  # fmt: skip
    md = markdown(report, "python -m sentimon.bench.run")
    assert md.startswith(START) and md.rstrip().endswith(END)
    assert "| ORT int8 student |" in md and "skipped: x: why" in md and "batch-1 p99" in md
    assert "int8 student vs teacher: not measured" in md  # no baseline row in this report
