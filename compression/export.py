"""ONNX export (dynamic batch/sequence axes), ORT transformer graph optimization, dynamic INT8, parity check."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .recipe import CompressionError
from .training import model_logits

log = logging.getLogger(__name__)
INPUTS = ["input_ids", "attention_mask"]


class _LogitsOnly(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return model_logits(self.model, input_ids, attention_mask)


def export_onnx(model: nn.Module, path: Path, opset: int) -> Path:
    """Export to ONNX with inputs int64 [batch, seq] and output logits float32 [batch, 3]."""
    config = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    if config is not None:
        # The eager attention graph is the pattern ORT's BERT fusion recognises (and exports everywhere).
        config._attn_implementation = "eager"
    model.eval()
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], dtype=torch.int64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int64)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}  # fmt: skip
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_LogitsOnly(model), (ids, mask), str(path), input_names=INPUTS,
                              output_names=["logits"], dynamic_axes=axes, opset_version=opset,
                              dynamo=False)  # fmt: skip
    finally:
        if config is not None and previous is not None:
            config._attn_implementation = previous
    return path


def optimize(src: Path, dst: Path, num_heads: int = 0, hidden_size: int = 0) -> str:
    """ORT transformer fusions (attention, LayerNorm, GELU); falls back to ORT's generic passes. Returns which."""
    from onnxruntime.transformers.optimizer import optimize_by_onnxruntime, optimize_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                 opt_level=1, use_gpu=False)  # fmt: skip
        opt.save_model_to_file(str(dst))
        fused = opt.get_fused_operator_statistics()
        return "bert-fusion " + ",".join(f"{k}={v}" for k, v in sorted(fused.items()) if v)
    except Exception as exc:  # fusion is an optimisation: a graph it cannot fuse still runs unfused
        log.warning("transformer fusion failed (%s); using ORT basic graph optimization", exc)
        # ORT's offline optimizer (basic level, CPU) writes the optimized graph; scoring sessions stay in inference.
        optimize_by_onnxruntime(str(src), use_gpu=False, optimized_model_path=str(dst), opt_level=1)
        return "ort-basic"


def quantize_int8(src: Path, dst: Path, per_channel: bool = True) -> Path:
    """Dynamic INT8: weights int8 offline, activations quantized per batch at run time (no calibration set)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference; their outputs are fp32.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fmt: skip
    return dst


@dataclass(frozen=True)
class Parity:
    label_agreement: float
    max_prob_diff: float
    mean_prob_diff: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"label_agreement": self.label_agreement, "max_prob_diff": self.max_prob_diff,
                "mean_prob_diff": self.mean_prob_diff, "texts": self.n}  # fmt: skip


def parity(probs_ref: np.ndarray, probs_new: np.ndarray) -> Parity:
    if probs_ref.shape != probs_new.shape or len(probs_ref) == 0:
        raise CompressionError(f"parity check needs two equal, non-empty prob arrays, got {probs_ref.shape} "
                               f"and {probs_new.shape}")  # fmt: skip
    agree = float((probs_ref.argmax(1) == probs_new.argmax(1)).mean())
    diff = np.abs(probs_ref - probs_new)
    return Parity(agree, float(diff.max()), float(diff.mean()), len(probs_ref))


def check_parity(result: Parity, min_label_agreement: float, max_prob_diff: float, what: str) -> None:
    """Fail the build when the quantized model drifts from fp32 beyond the recipe's thresholds."""
    problems = []
    if result.label_agreement < min_label_agreement:
        problems.append(f"label agreement {result.label_agreement:.4f} < {min_label_agreement}")
    if result.max_prob_diff > max_prob_diff:
        problems.append(f"max probability difference {result.max_prob_diff:.4f} > {max_prob_diff}")
    if problems:
        raise CompressionError(
            f"parity check failed for {what} on {result.n} test texts: {'; '.join(problems)}. Compare the fp32 and "
            "int8 rows of a build that passes, then relax export.min_label_agreement / export.max_prob_diff only "
            "if the int8 accuracy holds"
        )


def check_export(model: nn.Module, scorer, texts: list[str], what: str, tolerance: float = 1e-3) -> float:
    """The optimized fp32 graph, scored by the runtime (an ``inference`` OnnxScorer), must reproduce the PyTorch
    model on the same token windows (a wrong fusion would pass silently otherwise)."""
    from sentimon.inference.batching import aggregate_windows

    ids, _, owners = scorer.windows(texts)
    # Padding content is irrelevant under the attention mask (and the static tier pools over the mask only).
    input_ids = torch.zeros((len(ids), max(len(x) for x in ids)), dtype=torch.int64)
    mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    model.eval()
    with torch.no_grad():
        ref = _LogitsOnly(model)(input_ids, mask).double().softmax(-1).numpy()
    got = scorer.score_probs(texts)
    diff = float(np.abs(aggregate_windows(ref, owners, len(texts)) - got).max())
    if diff > tolerance:
        raise CompressionError(f"exported ONNX graph for {what} differs from the PyTorch model (max |dp| {diff:.2e} "
                               f"> {tolerance}); the graph optimization is wrong for this architecture")  # fmt: skip
    return diff
