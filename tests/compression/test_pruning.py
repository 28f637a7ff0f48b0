from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sentimon.compression.modeling import encode
from sentimon.compression.pruning import LowRankLinear, count_parameters, importance, low_rank, prune

from .models import SENTENCES, tiny_bert, tiny_tokenizer


def _setup(tmp_path: Path):
    _, tok = tiny_tokenizer(tmp_path)
    model = tiny_bert(tok.get_vocab_size(), layers=2, heads=4, hidden=32, intermediate=64)
    texts = SENTENCES * 4
    labels = np.array([0, 2, 1, 1, 2] * 4)
    logits = np.random.default_rng(0).normal(size=(len(texts), 3)).astype(np.float32)
    return tok, model, texts, labels, logits


def test_importance_scores_every_head_and_neuron(tmp_path: Path):
    tok, model, texts, labels, logits = _setup(tmp_path)
    heads, ffn = importance(model, tok, texts, labels, logits, n_batches=2, batch_size=8, seed=0, temperature=2.0)
    assert [h.shape for h in heads] == [torch.Size([4])] * 2 and [f.shape for f in ffn] == [torch.Size([64])] * 2
    assert all(bool((h >= 0).all()) and float(h.sum()) > 0 for h in heads)


def test_prune_removes_lowest_heads_and_neurons(tmp_path: Path):
    tok, model, texts, labels, logits = _setup(tmp_path)
    before = count_parameters(model)
    heads = [torch.tensor([4.0, 1.0, 3.0, 2.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])]
    ffn = [torch.arange(64.0), torch.arange(64.0).flip(0)]
    kept = prune(model, heads, ffn, heads_fraction=0.5, ffn_fraction=0.25)
    assert kept == {"heads": [2, 2], "ffn": [48, 48]}
    layer0, layer1 = model.bert.encoder.layer
    assert layer0.attention.self.query.out_features == 16 and layer0.attention.output.dense.in_features == 16
    # layer 0 keeps heads 0 and 2 (scores 4 and 3): query rows 0-7 and 16-23 of the original
    assert layer0.intermediate.dense.out_features == 48 and layer1.output.dense.in_features == 48
    assert count_parameters(model) < before
    ids, mask = encode(tok, SENTENCES)
    assert model(input_ids=ids, attention_mask=mask).logits.shape == (len(SENTENCES), 3)


def test_prune_keeps_the_chosen_weights(tmp_path: Path):
    tok, model, *_ = _setup(tmp_path)
    original = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    prune(model, [torch.tensor([4.0, 1.0, 3.0, 2.0])] * 2, [torch.arange(64.0)] * 2, 0.5, 0.0)
    kept = model.bert.encoder.layer[0].attention.self.query.weight
    assert torch.equal(kept, torch.cat([original[0:8], original[16:24]]))


def test_low_rank_linear_is_exact_at_full_rank():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 24)
    x = torch.randn(5, 16)
    assert torch.allclose(LowRankLinear(lin, 16)(x), lin(x), atol=1e-5)
    assert not torch.allclose(LowRankLinear(lin, 4)(x), lin(x), atol=1e-3)


def test_low_rank_shrinks_the_ffn_and_still_runs(tmp_path: Path):
    tok, model, *_ = _setup(tmp_path)
    before = count_parameters(model)
    ranks = low_rank(model, 0.25)
    assert ranks == [8, 8, 8, 8]  # intermediate (32->64) and output (64->32) of 2 layers: rank 0.25 * 32
    assert count_parameters(model) < before
    ids, mask = encode(tok, SENTENCES)
    with torch.no_grad():
        assert model(input_ids=ids, attention_mask=mask).logits.shape == (len(SENTENCES), 3)


def test_training_batches_cover_epochs_and_bucket_by_length():
    from sentimon.compression.training import batches

    plan = batches(100, 10, 2.0, seed=0)
    assert len(plan) == 20 and sorted(np.concatenate(plan[:10]).tolist()) == list(range(100))
    assert len(batches(100, 10, 0.25, seed=0)) == 3
    lengths = list(range(1000))
    bucketed = batches(1000, 10, 1.0, seed=0, lengths=lengths)
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in bucketed])
    assert spread < 100  # random batches of 10 from 0..999 would spread ~800
