"""Tiny in-memory models for unit tests (random weights: tests check structure and equivalence, not accuracy)."""

from __future__ import annotations

from pathlib import Path

import torch

from sentimon.compression.data import normalize
from sentimon.compression.modeling import ID2LABEL, LABEL2ID, StaticClassifier, load_tokenizer, train_wordpiece

from .conftest import DATA


def tiny_tokenizer(tmp_path: Path, max_length: int = 32):
    texts = [line.split(",", 2)[-1] for line in (DATA / "tiny.csv").read_text().splitlines()[1:]]
    path = train_wordpiece([normalize(t) for t in texts], 300, tmp_path / "tokenizer.json")
    return path, load_tokenizer(path, max_length)


def tiny_bert(vocab_size: int, layers: int = 2, heads: int = 4, hidden: int = 32, intermediate: int = 64, seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, num_labels=3, id2label=ID2LABEL, label2id=LABEL2ID)  # fmt: skip
    model = BertForSequenceClassification(config)
    model.eval()
    return model


def tiny_static(vocab_size: int, dim: int = 8, seed: int = 0) -> StaticClassifier:
    torch.manual_seed(seed)
    return StaticClassifier(torch.randn(vocab_size, dim)).eval()


SENTENCES = ["the airline is great", "my phone keeps crashing", "the report was announced today", "ok", "wow " * 40]
