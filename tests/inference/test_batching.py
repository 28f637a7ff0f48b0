import numpy as np
import pytest

from sentimon.inference.batching import aggregate_windows, padded_length, plan_batches


def test_padded_length_buckets_and_cap():
    assert padded_length(5, 8, 512) == 8
    assert padded_length(8, 8, 512) == 8
    assert padded_length(509, 8, 512) == 512
    assert padded_length(30, 8, 32) == 32 and padded_length(31, 16, 32) == 32 and padded_length(0, 8, 32) == 8


def test_plan_batches_sorted_capped_and_complete():
    lengths = [50, 3, 20, 3, 100, 7, 60, 20]
    batches = plan_batches(lengths, max_batch=3, max_batch_tokens=120, pad_multiple=1)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every sequence exactly once
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 120
    assert [4] in batches  # 100 tokens: alone (2 x 100 > 120)


def test_oversized_sequence_gets_its_own_batch():
    assert plan_batches([500, 10], max_batch=8, max_batch_tokens=64) == [[1], [0]]


def test_aggregate_windows_is_the_mean_per_text():
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    out = aggregate_windows(probs, owners=[0, 1, 1, 2], n_texts=3)
    assert np.allclose(out, [[0.2, 0.3, 0.5], [0.8, 0.1, 0.1], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError):
        aggregate_windows(probs, owners=[0, 0, 2, 2], n_texts=3)
