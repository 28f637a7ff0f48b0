from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sentimon.compression import CompressionError
from sentimon.compression.data import (
    DROP,
    FINANCE_TWEETS,
    FINANCE_TWEETS_SHA256,
    LABEL_INDEX,
    Example,
    balanced_cap,
    dedupe,
    finance_group,
    in_test,
    load_source,
    map_label,
    prepare,
    rows_to_examples,
    split,
    split_dev,
)
from sentimon.compression.recipe import DataConfig
from sentimon.compression.workspace import Workspace

from .conftest import DATA, fixture_sources


@pytest.mark.parametrize(
    ("raw", "label_map", "expected"),
    [
        ("Negative", None, "negative"),
        ("POS", None, "positive"),
        ("neutral", None, "neutral"),
        ("Irrelevant", None, DROP),
        ("fresh", {"fresh": "positive"}, "positive"),
        ("plot", {"plot": "drop"}, DROP),
        (4, {"4": "positive"}, "positive"),
        ("positive", {"positive": "negative"}, "negative"),  # the source's own map wins
    ],
)
def test_map_label(raw, label_map, expected):
    assert map_label(raw, label_map, "src") == expected


def test_unknown_label_names_the_fix():
    with pytest.raises(CompressionError, match="unknown label 'meh'.*label_map"):
        map_label("meh", None, "src")
    with pytest.raises(CompressionError, match="not one of"):
        map_label("x", {"x": "great"}, "src")


def test_rows_to_examples_counts_what_it_drops():
    dropped = Counter()
    rows = [{"text": "good", "label": "positive"}, {"text": "  ", "label": "negative"},
            {"text": "whatever", "label": "Irrelevant"}, {"text": None, "label": "neutral"}]  # fmt: skip
    out = rows_to_examples(rows, "src", dropped=dropped)
    assert [(e.text, e.label) for e in out] == [("good", LABEL_INDEX["positive"])]
    assert dropped == Counter({"empty text": 2, "label Irrelevant": 1})


def test_missing_columns_are_errors():
    with pytest.raises(CompressionError, match="no column 'text'"):
        rows_to_examples([{"body": "x", "label": "positive"}], "src")
    with pytest.raises(CompressionError, match="no label column 'label'"):
        rows_to_examples([{"text": "x"}], "src")


def test_dedupe_normalizes_whitespace_and_case():
    dropped = Counter()
    exs = [Example("Great  day", 2, "a"), Example("great day", 0, "b"), Example("other", 1, "c")]
    assert [e.group for e in dedupe(exs, dropped)] == ["a", "c"]
    assert dropped["duplicate text"] == 1


def test_group_split_keeps_paraphrases_together():
    exs = [Example(f"tweet {g} version {v}", 0, f"id{g}") for g in range(2000) for v in range(6)]
    train, test = split(exs, seed=13, test_fraction=0.2)
    train_groups, test_groups = {e.group for e in train}, {e.group for e in test}
    assert not train_groups & test_groups
    assert 340 <= len(test_groups) <= 460  # about 20% of 2000 groups
    # the same group always lands on the same side, whatever the row order
    assert (
        split(list(reversed(exs)), 13, 0.2)[1]
        and {e.group for e in split(list(reversed(exs)), 13, 0.2)[1]} == test_groups
    )
    assert in_test("id1", 13, 0.2) == in_test("id1", 13, 0.2)


def test_balanced_cap():
    exs = [Example(f"n{i}", 0, f"n{i}") for i in range(100)] + [Example(f"p{i}", 2, f"p{i}") for i in range(10)]
    capped = balanced_cap(exs, 40, seed=1)
    counts = Counter(e.label for e in capped)
    assert len(capped) == 40 and counts[2] == 10 and counts[0] == 30  # small class kept whole, rest refilled
    assert balanced_cap(exs, 0, 1) == exs


def test_csv_jsonl_parquet_sources(tmp_path: Path):
    csv_src = load_source(fixture_sources()["sources"][0], tmp_path)
    assert csv_src.name == "tiny" and len(csv_src.examples) == 120 and not csv_src.binary
    assert csv_src.files[0]["sha256"] and csv_src.files[0]["rows"] == 120
    jsonl_src = load_source(fixture_sources()["sources"][1], tmp_path)
    assert jsonl_src.binary and len(jsonl_src.examples) == 60 and jsonl_src.dropped["label plot"] == 10
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (DATA / "tiny_binary.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    spec = {**fixture_sources()["sources"][1], "path": str(tmp_path / "t.parquet"), "name": "pq"}
    pq_src = load_source(spec, tmp_path)
    assert [e.text for e in pq_src.examples] == [e.text for e in jsonl_src.examples]


def test_bad_files_are_reported_with_the_place(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "positive"}\n{not json\n')
    with pytest.raises(CompressionError, match="line 2 is not valid JSON"):
        load_source({"kind": "file", "path": str(bad)}, tmp_path)
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(CompressionError, match="unsupported file type"):
        load_source({"kind": "file", "path": str(tmp_path / "x.txt")}, tmp_path)
    with pytest.raises(CompressionError, match="does not exist"):
        load_source({"kind": "file", "path": str(tmp_path / "missing.csv")}, tmp_path)
    with pytest.raises(CompressionError, match="unknown data source kind"):
        load_source({"kind": "imdb"}, tmp_path)


def test_prepare_returns_disjoint_splits_and_summary(tmp_path: Path):
    cfg = DataConfig(**fixture_sources())
    data = prepare(cfg, tmp_path, seed=13)
    assert set(data.tests) == {"tiny", "tiny_binary", "finance_tweets", "plain_facts"}
    assert data.summary["tests"]["tiny_binary"]["binary"] and data.summary["tests"]["plain_facts"]["check"]
    assert set(data.dev) == {"tiny", "tiny_binary", "finance_tweets"}
    test_groups = {e.group for t in data.tests.values() for e in t}
    dev_groups = {e.group for e in data.dev_examples()}
    train_groups = {e.group for e in data.train}
    assert not train_groups & test_groups and not train_groups & dev_groups and not dev_groups & test_groups
    held_out = set(data.test_texts()) | {e.text for e in data.dev_examples()}
    assert not {e.text for e in data.transfer} & held_out
    assert data.summary["train"] == len(data.train) and data.summary["transfer"] == len(data.transfer)
    assert all(e.label is None for e in data.transfer) and data.distill == data.train + data.transfer
    assert {f["name"] for f in data.summary["files"]} >= {str(DATA / n) for n in ("tiny.csv", "tiny_binary.jsonl",
                                                                               "tiny_transfer.csv")}  # fmt: skip
    assert {f["sha256"] for f in data.summary["files"] if f["name"].startswith("finance_tweets:")} == {
        FINANCE_TWEETS_SHA256
    }
    # a source's own max_train wins over the per-source cap
    assert data.summary["sources"]["finance_tweets"]["train"] == 400
    assert len(data.tests["plain_facts"]) == data.summary["sources"]["plain_facts"]["test"] > 0
    assert {e.label for e in data.tests["plain_facts"]} == {LABEL_INDEX["neutral"]}
    # same seed, same split
    assert prepare(cfg, tmp_path, seed=13).summary["sources"] == data.summary["sources"]


def test_workspace_round_trips_the_prepared_data(tmp_path: Path):
    data = prepare(DataConfig(**fixture_sources()), tmp_path, seed=13)
    ws = Workspace(tmp_path / "work")
    ws.stage_dir("data").mkdir(parents=True)
    ws.save_data(data)
    assert ws.load_data() == data
    assert ws.test_file("tiny").is_file() and ws.train_file.is_file() and ws.data_summary.is_file()


def test_prepare_fails_on_a_source_too_small_to_split(tmp_path: Path):
    tiny = tmp_path / "two.csv"
    tiny.write_text("text,label\ngood,positive\n")
    cfg = DataConfig(sources=[{"kind": "file", "path": str(tiny)}])
    with pytest.raises(CompressionError, match="too few rows"):
        prepare(cfg, tmp_path, seed=13)


def test_finance_group_puts_templated_headlines_together():
    a = finance_group("$AAPL - Apple rises 3% after earnings beat https://t.co/abc")
    b = finance_group("$MSFT - Apple rises 12.5% after earnings beat  https://t.co/xyz")
    assert a == b == "apple rises after earnings beat"
    assert finance_group("Apple falls after earnings miss") != a
    assert finance_group("$TSLA 100%") == "$tsla 100%"  # nothing left: the normalized text is its own group


def test_finance_tweets_source_maps_labels_and_groups(tmp_path: Path):
    src = load_source({"kind": "finance_tweets"}, tmp_path)
    assert src.files[0]["sha256"] == FINANCE_TWEETS_SHA256 and src.files[0]["rows"] == 9543
    counts = Counter(e.label for e in src.examples)
    # README: 1,442 bearish / 1,923 bullish / 6,178 neutral before deduplication
    assert counts[LABEL_INDEX["negative"]] <= 1442 and counts[LABEL_INDEX["positive"]] <= 1923
    assert counts[LABEL_INDEX["neutral"]] > 6000 and sum(src.dropped.values()) == 9543 - len(src.examples)
    assert all(e.group == finance_group(e.text) for e in src.examples)
    assert any(e.label == LABEL_INDEX["negative"] and "cut" in e.text.lower() for e in src.examples)


def test_finance_tweets_refuses_a_changed_vendored_file(tmp_path: Path, monkeypatch):
    changed = tmp_path / "sent_train.csv"
    changed.write_bytes(FINANCE_TWEETS.read_bytes() + b"extra row,1\n")
    monkeypatch.setattr("sentimon.compression.data.FINANCE_TWEETS", changed)
    with pytest.raises(CompressionError, match="missing or changed"):
        load_source({"kind": "finance_tweets"}, tmp_path)
    # an explicit path is the user's own file: read it, record its digest
    own = load_source({"kind": "finance_tweets", "path": str(changed)}, tmp_path)
    assert own.files[0]["sha256"] != FINANCE_TWEETS_SHA256


def test_dev_split_is_grouped_seeded_and_independent_of_the_test_split():
    examples = [Example(f"text {i}", i % 3, f"g{i // 2}") for i in range(400)]
    train, test = split(examples, 13, 0.2)
    rest, dev = split_dev(train, 13, 0.25)
    assert {e.group for e in rest}.isdisjoint({e.group for e in dev}) and len(rest) + len(dev) == len(train)
    assert 0.15 < len(dev) / len(train) < 0.35
    assert split_dev(train, 13, 0.25) == (rest, dev) and split_dev(train, 13, 0.0) == (train, [])
