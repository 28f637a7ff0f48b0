"""Structured pruning (attention heads, FFN neurons) and optional low-rank factorization of FFN matrices.

Unstructured sparsity buys no speed in ONNX Runtime, so whole heads and neurons are removed: the pruned
model has smaller matrices. Importance is first-order Taylor |w * dL/dw| summed over each head's q/k/v/output
slices and each neuron's in/out weights, accumulated over a few distillation batches.
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from .modeling import encode, encoder_of
from .training import kd_loss, model_logits


def importance(model, tok: Tokenizer, texts, labels, teacher_logits, n_batches: int, batch_size: int, seed: int,
               temperature: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:  # fmt: skip
    """Per layer: head scores [heads] and FFN neuron scores [intermediate]."""
    base = encoder_of(model)
    layers = base.encoder.layer
    rng = np.random.default_rng(seed)
    grads_w = {id(p): torch.zeros_like(p) for p in model.parameters()}
    model.train()
    for _ in range(n_batches):
        idx = rng.choice(len(texts), size=min(batch_size, len(texts)), replace=False)
        ids, mask = encode(tok, [texts[i] for i in idx])
        model.zero_grad()
        loss = kd_loss(model_logits(model, ids, mask), torch.from_numpy(labels[idx]).long(),
                       torch.from_numpy(teacher_logits[idx]).float(), temperature, 1.0, 0.0)  # fmt: skip
        loss.backward()
        for p in model.parameters():
            if p.grad is not None:
                grads_w[id(p)] += (p.grad * p.detach()).abs()
    model.zero_grad()
    model.eval()
    head_scores, ffn_scores = [], []
    for layer in layers:
        att = layer.attention.self
        size = att.attention_head_size
        score = torch.zeros(att.query.out_features // size)
        for lin in (att.query, att.key, att.value):
            score += grads_w[id(lin.weight)].view(-1, size, lin.in_features).sum(dim=(1, 2))
        out_w = grads_w[id(layer.attention.output.dense.weight)]
        score += out_w.view(out_w.shape[0], -1, size).sum(dim=(0, 2))
        head_scores.append(score)
        inter, out = layer.intermediate.dense, layer.output.dense
        ffn_scores.append(grads_w[id(inter.weight)].sum(dim=1) + grads_w[id(out.weight)].sum(dim=0))
    return head_scores, ffn_scores


def _slice_linear(lin: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping rows (dim=0, output features) or columns (dim=1, input features)."""
    weight = lin.weight.data.index_select(dim, keep).clone()
    bias = lin.bias.data.clone() if lin.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias.index_select(0, keep).clone()
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new


def prune(model, head_scores, ffn_scores, heads_fraction: float, ffn_fraction: float) -> dict[str, list[int]]:
    """Remove the lowest-scoring heads and FFN neurons in every layer, in place; returns what remains."""
    layers = encoder_of(model).encoder.layer
    kept: dict[str, list[int]] = {"heads": [], "ffn": []}
    for layer, h_score, f_score in zip(layers, head_scores, ffn_scores, strict=True):
        att = layer.attention.self
        size = att.attention_head_size
        n_heads = len(h_score)
        keep_heads = torch.sort(
            torch.argsort(h_score, descending=True)[: max(1, round(n_heads * (1 - heads_fraction)))]
        ).values
        cols = torch.cat([torch.arange(h * size, (h + 1) * size) for h in keep_heads.tolist()])
        att.query, att.key, att.value = (_slice_linear(lin, cols, 0) for lin in (att.query, att.key, att.value))
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, cols, 1)
        att.num_attention_heads = len(keep_heads)
        att.all_head_size = len(cols)
        n_ffn = len(f_score)
        keep_ffn = torch.sort(
            torch.argsort(f_score, descending=True)[: max(1, round(n_ffn * (1 - ffn_fraction)))]
        ).values
        layer.intermediate.dense = _slice_linear(layer.intermediate.dense, keep_ffn, 0)
        layer.output.dense = _slice_linear(layer.output.dense, keep_ffn, 1)
        kept["heads"].append(len(keep_heads))
        kept["ffn"].append(len(keep_ffn))
    return kept


class LowRankLinear(nn.Module):
    """W ~ U_r S_r V_r^T as two smaller matmuls (in -> r -> out)."""

    def __init__(self, lin: nn.Linear, rank: int):
        super().__init__()
        u, s, vh = torch.linalg.svd(lin.weight.data, full_matrices=False)
        root = s[:rank].sqrt()
        self.down = nn.Linear(lin.in_features, rank, bias=False)
        self.up = nn.Linear(rank, lin.out_features, bias=lin.bias is not None)
        self.down.weight.data.copy_(root.unsqueeze(1) * vh[:rank])
        self.up.weight.data.copy_(u[:, :rank] * root.unsqueeze(0))
        if lin.bias is not None:
            self.up.bias.data.copy_(lin.bias.data)

    @property
    def in_features(self) -> int:
        return self.down.in_features

    @property
    def out_features(self) -> int:
        return self.up.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


def low_rank(model, rank_fraction: float) -> list[int]:
    """Factorize each layer's FFN matrices at rank = rank_fraction * min(in, out), in place; returns ranks."""
    ranks = []
    for layer in encoder_of(model).encoder.layer:
        for owner, attr in ((layer.intermediate, "dense"), (layer.output, "dense")):
            lin = getattr(owner, attr)
            rank = max(1, int(min(lin.in_features, lin.out_features) * rank_fraction))
            setattr(owner, attr, LowRankLinear(lin, rank))
            ranks.append(rank)
    return ranks


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
