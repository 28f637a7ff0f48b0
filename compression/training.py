"""Training loops: supervised fine-tuning, soft-target distillation, hidden-state distillation, inference.

One loop serves teacher, students and pruning recovery: loss = soft_weight * T^2 * KL(teacher_T || student_T)
+ hard_weight * CE(gold) on the rows that have a gold label (transfer texts have none).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from .modeling import encode


def model_logits(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits of an HF classifier (output object) or of the static model (a plain tensor)."""
    out = model(input_ids=ids, attention_mask=mask)
    return out if isinstance(out, torch.Tensor) else out.logits


def kd_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    temperature: float,
    soft_weight: float,
    hard_weight: float,
) -> torch.Tensor:
    """Soft KL at temperature T (scaled by T^2) plus CE on rows whose label is >= 0."""
    loss = student_logits.new_zeros(())
    if teacher_logits is not None and soft_weight > 0:
        t = temperature
        kl = F.kl_div(F.log_softmax(student_logits / t, -1), F.softmax(teacher_logits / t, -1), reduction="batchmean")
        loss = loss + soft_weight * kl * t * t
    has_label = labels >= 0
    if hard_weight > 0 and bool(has_label.any()):
        loss = loss + hard_weight * F.cross_entropy(student_logits[has_label], labels[has_label])
    return loss


def batches(n: int, batch_size: int, epochs: float, seed: int, lengths: list[int] | None = None) -> list[np.ndarray]:
    """Shuffled index batches covering ``epochs`` passes (fractions allowed).

    With ``lengths``, each run of 50 batches is sorted by text length before it is cut into batches (then the
    batch order is shuffled again): batches pad to similar lengths, which cuts CPU time on short texts.
    """
    rng = np.random.default_rng(seed)
    total = max(1, math.ceil(n * epochs / batch_size))
    out: list[np.ndarray] = []
    chunk = batch_size * 50
    while len(out) < total:
        order = rng.permutation(n)
        epoch: list[np.ndarray] = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            if lengths is not None:
                part = part[np.argsort([lengths[i] for i in part], kind="stable")]
            epoch.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
        out.extend(epoch[i] for i in rng.permutation(len(epoch)))
    return out[:total]


def adamw_with_warmup(params: list, lr: float, steps: int, warmup_fraction: float):
    """AdamW (weight decay 0.01) and a schedule of linear warmup over ``warmup_fraction`` of ``steps``, then linear
    decay to 0."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = max(1, int(steps * warmup_fraction))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    return opt, sched


def fit(
    model,
    tok: Tokenizer,
    texts: list[str],
    labels: np.ndarray,
    teacher_logits: np.ndarray | None,
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
    temperature: float = 1.0,
    soft_weight: float = 0.0,
    hard_weight: float = 1.0,
    warmup_fraction: float = 0.1,
    desc: str = "train",
    loss_fn: Callable | None = None,
) -> list[float]:
    """Train in place with AdamW + linear warmup/decay; returns the loss per step."""
    torch.manual_seed(seed)
    random.seed(seed)
    plan = batches(len(texts), batch_size, epochs, seed, [len(t) for t in texts])
    opt, sched = adamw_with_warmup([p for p in model.parameters() if p.requires_grad], lr, len(plan), warmup_fraction)
    model.train()
    losses = []
    bar = tqdm(plan, desc=desc, unit="batch", mininterval=5)
    for idx in bar:
        ids, mask = encode(tok, [texts[i] for i in idx])
        y = torch.from_numpy(labels[idx]).long()
        t_logits = torch.from_numpy(teacher_logits[idx]).float() if teacher_logits is not None else None
        if loss_fn is not None:
            loss = loss_fn(model, ids, mask, idx)
        else:
            loss = kd_loss(model_logits(model, ids, mask), y, t_logits, temperature, soft_weight, hard_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
    model.eval()
    return losses


@torch.no_grad()
def predict_logits(model, tok: Tokenizer, texts: list[str], batch_size: int = 128, desc: str = "logits") -> np.ndarray:
    """Logits for texts, batched by length so padding stays small; rows in input order."""
    model.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), 3), dtype=np.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch", mininterval=5):
        idx = order[start : start + batch_size]
        ids, mask = encode(tok, [texts[i] for i in idx])
        out[idx] = model_logits(model, ids, mask).float().numpy()
    return out


def hidden_mse_loss(student, teacher, layer_map: list[int], proj: torch.nn.Module | None):
    """TinyBERT-style intermediate loss: student layer i's hidden states vs teacher layer layer_map[i]."""

    def loss_fn(model, ids, mask, _idx):
        s_out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        with torch.no_grad():
            t_out = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        m = mask.unsqueeze(-1).float()
        total = s_out.logits.new_zeros(())
        # hidden_states[0] is the embedding output; layer i's output is hidden_states[i + 1]
        pairs = [(0, 0)] + [(i + 1, t + 1) for i, t in enumerate(layer_map)]
        for s_i, t_i in pairs:
            s_h = s_out.hidden_states[s_i]
            if proj is not None:
                s_h = proj(s_h)
            total = total + (((s_h - t_out.hidden_states[t_i]) ** 2) * m).sum() / (m.sum() * s_h.shape[-1])
        return total / len(pairs)

    return loss_fn
