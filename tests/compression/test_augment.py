from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from sentimon.compression.augment import (
    GROUP_PREFIX,
    NEGATIVE_ADJECTIVES,
    NEGATIVE_VERBS,
    POSITIVE_ADJECTIVES,
    POSITIVE_VERBS,
    SUBJECTS,
    negation_contrasts,
)
from sentimon.compression.data import Example, balanced_cap, prepare, teacher_subset
from sentimon.compression.recipe import DataConfig
from sentimon.inference.behaviour import build_cases, load_suite

from .test_data import fixture_sources

NEGATION = re.compile(r"\b(not|never|no)\b|n't", re.I)


def _suite_negation_words() -> set[str]:
    suite = load_suite()
    words: set[str] = set()
    for test in suite.tests:
        if test.capability != "negation":
            continue
        for case in build_cases(test, suite):
            for text in case.texts:
                words.update(w.lower() for w in re.findall(r"[A-Za-z]+", text))
    return words


def test_the_word_lists_share_nothing_with_the_suites_negation_tests():
    ours = {*NEGATIVE_ADJECTIVES, *POSITIVE_ADJECTIVES, *NEGATIVE_VERBS, *POSITIVE_VERBS}
    ours |= {w for s in SUBJECTS for w in s.lower().split() if w not in {"the", "this", "new"}}
    assert not ours & _suite_negation_words()
    generated = {text for text, _ in negation_contrasts(3000, seed=1)}
    suite = load_suite()
    suite_texts = {t for test in suite.tests for case in build_cases(test, suite) for t in case.texts}
    assert not generated & suite_texts


def test_labels_follow_the_negation_and_the_polarity():
    rows = negation_contrasts(2000, seed=5)
    assert len(rows) == len({t for t, _ in rows}) == 2000
    for text, label in rows:
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        positive = bool(words & {*POSITIVE_ADJECTIVES, *POSITIVE_VERBS, *POSITIVE_VERBS.values()})
        negated = bool(NEGATION.search(text))
        expected = ("negative" if positive else "neutral") if negated else ("positive" if positive else "negative")
        assert label == expected, text
    counts = Counter(label for _, label in rows)
    assert counts["neutral"] > 400 and counts["positive"] > 400 and counts["negative"] > 800
    assert negation_contrasts(200, seed=5) == negation_contrasts(200, seed=5)


def test_prepare_adds_contrasts_to_train_only_and_the_teacher_keeps_them_all(tmp_path: Path):
    cfg = DataConfig(**fixture_sources(), negation_contrasts=60)
    data = prepare(cfg, tmp_path, seed=13)
    synthetic = [e for e in data.train if e.group.startswith(GROUP_PREFIX)]
    assert len(synthetic) == data.summary["sources"]["negation_contrasts"]["train"] == 60
    assert not any(e.group.startswith(GROUP_PREFIX) for split in data.tests.values() for e in split)
    subset = teacher_subset(data.train, 20, seed=13)
    assert len(subset) == 80 and set(map(id, synthetic)) <= set(map(id, subset))


def test_teacher_subset_without_synthetic_rows_is_the_balanced_cap_row_for_row():
    rows = [Example(f"t{i}", i % 3, f"g{i}") for i in range(30)]
    assert teacher_subset(rows, 9, seed=1) == balanced_cap(rows, 9, seed=1)
    assert Counter(e.label for e in teacher_subset(rows, 9, seed=1)) == {0: 3, 1: 3, 2: 3}


def test_a_contrast_that_is_also_a_test_text_stays_out_of_training(tmp_path: Path):
    contrasts = negation_contrasts(30, seed=13)
    held = tmp_path / "held.jsonl"  # a check set is all test: its texts must never be trained on
    held.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in contrasts[:5]))
    cfg = DataConfig(**{**fixture_sources(), "checks": [{"kind": "file", "path": str(held)}]}, negation_contrasts=30)
    trained = {e.text for e in prepare(cfg, tmp_path, seed=13).train if e.group.startswith(GROUP_PREFIX)}
    assert trained == {t for t, _ in contrasts[5:]}
