"""plan_batches splits a batch where the padding it would add costs more than one more ORT call."""

from __future__ import annotations

from sentimon.inference.batching import CALL_COST_TOKENS, padded_length, plan_batches


def padded_tokens(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(len(b) * max(padded_length(lengths[i], 8, 64) for i in b) for b in batches)


def test_a_long_text_does_not_pad_many_short_ones():
    lengths = [5] * 10 + [60]
    assert plan_batches(lengths, 64, 8192, 8, 64, call_cost_tokens=None) == [list(range(11))]
    split = plan_batches(lengths, 64, 8192, 8, 64)
    assert split == [list(range(10)), [10]]
    assert padded_tokens(lengths, split) == 10 * 8 + 64 < 11 * 64


def test_a_little_padding_is_cheaper_than_another_call():
    lengths = [8, 9, 15]  # padded widths 8, 16, 16: one row widened by 8 tokens < CALL_COST_TOKENS
    assert 8 < CALL_COST_TOKENS
    assert plan_batches(lengths, 64, 8192, 8, 64) == [[0, 1, 2]]


def test_every_sequence_once_in_length_order():
    lengths = [30, 3, 64, 12, 12, 40, 7, 64, 25, 3] * 7
    batches = plan_batches(lengths, 16, 8192, 8, 64)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths))) and [lengths[i] for i in flat] == sorted(lengths)
    assert all(len(b) <= 16 for b in batches)
