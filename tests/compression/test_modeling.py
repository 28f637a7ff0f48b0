from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sentimon.compression import CompressionError
from sentimon.compression.modeling import build_student, encode, onnx_minilm_state, token_vectors

from .models import SENTENCES, tiny_bert, tiny_tokenizer


class _SentenceTransformerLike(nn.Module):
    """Module path model.0.auto_model.* like a sentence-transformers export (the MiniLM-L3 student init)."""

    def __init__(self, bert):
        super().__init__()
        inner = nn.Module()
        inner.auto_model = bert
        self.model = nn.ModuleList([inner])

    def forward(self, input_ids, attention_mask):
        return self.model[0].auto_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def test_onnx_minilm_weights_map_back_into_a_bert(tmp_path: Path):
    _, tok = tiny_tokenizer(tmp_path)
    source = tiny_bert(tok.get_vocab_size(), layers=2, heads=4, hidden=32, intermediate=64, seed=3).bert
    source.config._attn_implementation = "eager"
    with torch.no_grad():  # distinct values everywhere: the exporter merges identical initializers (zero biases)
        for param in source.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    ids, mask = encode(tok, SENTENCES)
    with torch.no_grad():
        torch.onnx.export(_SentenceTransformerLike(source), (ids, mask), str(tmp_path / "st.onnx"),
                          input_names=["input_ids", "attention_mask"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}})  # fmt: skip
    state, dims = onnx_minilm_state(tmp_path / "st.onnx")
    assert dims["num_hidden_layers"] == 2 and dims["hidden_size"] == 32 and dims["intermediate_size"] == 64
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("pooler.") and "position_ids" not in k}
    assert set(expected) <= set(state)
    for key, value in expected.items():
        assert torch.allclose(state[key], value), key


def test_student_from_teacher_layers_copies_the_picked_layers(tmp_path: Path):
    _, tok = tiny_tokenizer(tmp_path)
    teacher = tiny_bert(tok.get_vocab_size(), layers=3)
    student, provenance, files = build_student({"source": "teacher_layers", "layers": [0, 2]}, teacher, tmp_path, 0)
    assert student.config.num_hidden_layers == 2 and provenance["layers"] == [0, 2] and files == []
    t_layer2 = teacher.bert.encoder.layer[2].output.dense.weight
    assert torch.equal(student.bert.encoder.layer[1].output.dense.weight, t_layer2)
    with pytest.raises(CompressionError, match="must pick teacher layers"):
        build_student({"source": "teacher_layers", "layers": [5]}, teacher, tmp_path, 0)
    with pytest.raises(CompressionError, match="unknown student.init source"):
        build_student({"source": "magic"}, teacher, tmp_path, 0)


def test_static_token_vectors_are_reduced_per_token(tmp_path: Path):
    _, tok = tiny_tokenizer(tmp_path)
    teacher = tiny_bert(tok.get_vocab_size(), hidden=32)
    vectors = token_vectors(teacher, tok, dim=8, batch_size=64)
    assert vectors.shape == (tok.get_vocab_size(), 8)
    assert np.isfinite(vectors.numpy()).all() and float(vectors.std()) > 0
