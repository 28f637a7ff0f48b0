"""Pure batching logic: which sequences share an ORT call, how long each call pads, how windows recombine.

Sequences are sorted by length so each batch pads to its own longest member (little wasted compute), a batch
closes when it would exceed ``max_batch`` sequences or ``max_batch_tokens`` padded tokens, or when its next
member would add more padding to the rows already in it than one more ORT call costs (``CALL_COST_TOKENS``),
and results are put back in input order by the caller. A text longer than the model's max_length is scored as
overlapping windows (seed 000's local-window idea for long news); its probabilities are the mean over its windows, so
every part of a long article counts equally whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def padded_length(length: int, pad_multiple: int, cap: int) -> int:
    """Round ``length`` up to a multiple of ``pad_multiple`` (buckets), never beyond ``cap`` (the model's max)."""
    length = max(length, 1)
    rounded = -(-length // pad_multiple) * pad_multiple
    return max(length, min(rounded, cap))


# What one more ORT call costs, in padded tokens of work: about 0.5 ms per call against 50-90 us per token for
# the default MiniLM-L3 on one core here. A micro-batch of 40 tweets (5 to 64 tokens, mean 24) padded to its
# longest member ran 3.5 ms/text; split where the padding outweighs a call, 1.9 ms/text (BENCHMARKS.md,
# Streaming).
CALL_COST_TOKENS = 32


def plan_batches(
    lengths: Sequence[int],
    max_batch: int,
    max_batch_tokens: int,
    pad_multiple: int = 1,
    cap: int | None = None,
    call_cost_tokens: int | None = CALL_COST_TOKENS,
) -> list[list[int]]:
    """Group sequence indices into batches, shortest first; a sequence alone over the token cap gets its own.
    ``call_cost_tokens`` None: never split a batch to save padding."""
    cap = cap if cap is not None else max(lengths, default=1)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    current_width = 0
    for i in order:
        # Sorted ascending: the newcomer is the batch's longest, so it sets the padded width.
        width = padded_length(lengths[i], pad_multiple, cap)
        wasteful = call_cost_tokens is not None and len(current) * (width - current_width) > call_cost_tokens
        if current and (len(current) + 1 > max_batch or width * (len(current) + 1) > max_batch_tokens or wasteful):
            batches.append(current)
            current = []
        current.append(i)
        current_width = width
    if current:
        batches.append(current)
    return batches


def aggregate_windows(window_probs: np.ndarray, owners: Sequence[int], n_texts: int) -> np.ndarray:
    """Mean of each text's window probabilities; ``owners[k]`` is the text index of window ``k``."""
    owner_idx = np.asarray(owners, dtype=np.int64)
    sums = np.zeros((n_texts, window_probs.shape[1]), dtype=np.float64)
    np.add.at(sums, owner_idx, window_probs)
    counts = np.bincount(owner_idx, minlength=n_texts).astype(np.float64)
    if (counts == 0).any():
        raise ValueError("every text needs at least one window")
    return sums / counts[:, None]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
