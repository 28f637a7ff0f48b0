"""Finding an entity the way a user types it (pure)."""

from __future__ import annotations

import pytest

from sentimon.streams.lookup import find_entity, search_entities

KNOWN = ["AAPL", "TSLA", "acme air", "NVDA"]
WATCH = {"AAPL": ["Apple", "Tim Cook"], "acme air": ["Acme Air", "@acmeair"], "UAL": ["United Airlines"]}


@pytest.mark.parametrize(
    ("typed", "entity", "how"),
    [("AAPL", "AAPL", "exact"), ("aapl", "AAPL", "case"), ("$AAPL", "AAPL", "case"), ("$aapl", "AAPL", "case"),
     ("Acme Air", "acme air", "case"), ("  ACME   air ", "acme air", "case"), ("apple", "AAPL", "alias"),
     ("@acmeair", "acme air", "alias"), ("UAL", "UAL", "exact"), ("united airlines", "UAL", "alias")],
)  # fmt: skip
def test_find_entity_matches_case_dollar_and_aliases(typed, entity, how):
    match = find_entity(typed, KNOWN, WATCH)
    assert (match.entity, match.how) == (entity, how)


def test_find_entity_suggests_close_names():
    match = find_entity("appl", KNOWN, WATCH)
    assert match.entity is None and match.suggestions[0] == "AAPL"
    assert find_entity("acme", KNOWN, WATCH).suggestions == ["acme air"]
    assert find_entity("zzzzzz", KNOWN, WATCH).suggestions == []


def test_search_entities_by_name_or_alias():
    assert search_entities("air", KNOWN, WATCH) == ["acme air"]
    assert search_entities("apple", KNOWN, WATCH) == ["AAPL"]
    assert search_entities(None, KNOWN, WATCH) == sorted(KNOWN)
