"""The rehearsal (the demo's day through the replay loop, no Kafka) against the real Redis, with gold labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentimon.replay.rehearsal import GoldScorer, markdown, rehearse


def test_gold_scorer_returns_the_planted_label() -> None:
    scorer = GoldScorer([{"text": "$X awful", "label": "negative"}, {"text": "$X fine", "label": "positive"}])
    a, b = scorer.score(["$X fine", "$X awful"])
    assert (a.label, a.score, b.label, b.score) == ("positive", 1.0, "negative", -1.0)
    assert a.probs == {"negative": 0.0, "neutral": 0.0, "positive": 1.0}


@pytest.mark.integration
def test_rehearsal_with_gold_labels_scores_the_session(stack_settings, tmp_path: Path) -> None:
    (result,) = rehearse(stack_settings, ["gold"], seed=3, minutes=120, history_min=60, date="2026-12-03",
                         out_dir=tmp_path)  # fmt: skip
    assert result.model == "gold" and result.messages > 1000
    assert 0 < result.session_alerts <= len(result.alerts)
    assert result.detection.recall > 0  # the TSLA sell-off at least, with perfect labels
    table = markdown([result])
    assert "| gold | 3 |" in table and f"{result.session_alerts} (" in table


@pytest.mark.integration
def test_social_plus_market_scores_tickers_with_the_market_model(stack_settings, tmp_path: Path) -> None:
    # gold labels for brands, VADER for tickers' (market) messages: a worker with inference.market_model.
    gold, mixed = rehearse(stack_settings, ["gold", "gold+vader"], seed=3, minutes=90, history_min=60,
                           date="2026-12-03", out_dir=tmp_path)  # fmt: skip
    assert mixed.model == "gold+vader" and mixed.messages == gold.messages
    assert gold.scored_by == {"gold": gold.messages}
    # Every ticker message (the market topic) went to VADER, every brand message to the gold labels.
    assert set(mixed.scored_by) == {"gold", "vader"} and sum(mixed.scored_by.values()) == gold.messages
    assert 0 < mixed.scored_by["vader"] < gold.messages
    brand = lambda r: sorted((a["rule"], a["started_at_ms"]) for a in r.alerts if a["entity"] == "acme air")  # noqa: E731
    assert brand(mixed) == brand(gold)  # brands are still scored by the gold labels
