"""Entity extraction: cashtags and watchlist aliases, case-insensitive, whole words, several per text."""

from __future__ import annotations

import pytest

from sentimon.streams.entities import DEFAULT_WATCHLIST, EntityExtractor, WatchlistError, load_watchlist

WATCH = {"AAPL": ["Apple", "iPhone", "Tim Cook"], "UAL": ["United Airlines", "@united"], "TIM": ["Tim"]}


@pytest.fixture
def ex() -> EntityExtractor:
    return EntityExtractor(WATCH)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$AAPL up 3%", ["AAPL"]),
        ("$aapl and $tsla", ["AAPL", "TSLA"]),
        ("$BRK.B holds", ["BRK.B"]),
        ("paid $100 for it", []),
        ("US$AAPL", []),
        ("apple's new IPHONE", ["AAPL"]),
        ("pineapple juice", []),
        ("Tim Cook spoke", ["AAPL"]),  # the longest alias wins
        ("Tim spoke", ["TIM"]),
        ("flew @united today, then $AAPL", ["UAL", "AAPL"]),
        ("United   Airlines lost my bag; Apple too", ["UAL", "AAPL"]),
        ("$AAPL iPhone Apple", ["AAPL"]),  # each entity once
        ("", []),
    ],
)
def test_extract(ex, text, expected):
    assert ex.extract(text) == expected


def test_no_cashtags_when_disabled():
    assert EntityExtractor(WATCH, cashtags=False).extract("$TSLA and Apple") == ["AAPL"]


def test_alias_shared_by_two_entities_counts_for_both():
    ex = EntityExtractor({"GOOGL": ["Alphabet"], "GOOG": ["Alphabet"]})
    assert ex.extract("Alphabet beats") == ["GOOGL", "GOOG"]


def test_sample_watchlist_loads():
    ex = EntityExtractor.from_file(DEFAULT_WATCHLIST)
    assert {"AAPL", "BA", "UAL"} <= set(ex.entities)
    assert ex.extract("Boeing 737 MAX grounded; Spirit AeroSystems falls") == ["BA"]


def test_watchlist_forms(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("entities:\n  A: [x]\n  B:\n    aliases: [y]\n    keywords: [z]\n  C:\n")
    assert load_watchlist(path) == {"A": ["x"], "B": ["y", "z"], "C": []}
    (tmp_path / "empty.yaml").write_text("")
    assert load_watchlist(tmp_path / "empty.yaml") == {}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[a, b]", "mapping"),
        ("A: 3", "list of aliases"),
        ("A: {other: [x]}", "list of aliases"),
        ("A: [1]", "non-empty strings"),
        ("A: ['']", "non-empty strings"),
        ("1: [x]", "entity names"),
        ("A: [x", "not valid YAML"),
    ],
)
def test_bad_watchlist_names_the_problem(tmp_path, content, match):
    path = tmp_path / "w.yaml"
    path.write_text(content)
    with pytest.raises(WatchlistError, match=match):
        load_watchlist(path)


def test_missing_watchlist(tmp_path):
    with pytest.raises(WatchlistError, match="does not exist"):
        load_watchlist(tmp_path / "nope.yaml")


def test_the_sample_watchlist_covers_the_demo_brand():
    from sentimon.replay.timeline import trading_day

    extractor = EntityExtractor.from_file()
    for profile in trading_day(date="2026-11-24").entities:
        assert profile.name in extractor.extract(f"Just saw {profile.mention} in the news"), profile
