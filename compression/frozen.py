"""Partial fine-tuning of an encoder too large to fine-tune on a CPU (a teacher.ensemble member with ``frozen_layers``).

The embeddings and the lower ``frozen`` transformer layers stay as pre-trained. Their output for each text is
computed once (``FrozenStates``) and cached in memory as float16, so every epoch runs only the upper layers and the
classifier head, forward and backward. On all-mpnet-base-v2 (12 layers) with 8 frozen, on the 2-core build box
(2026-12-07): caching 13,600 finance texts took 240 s and an epoch over the 8,023 training tweets 270-350 s, where
whole-model fine-tuning steps ran at 4.6 texts/s (about 30 min an epoch; a probe of 4 batches of 32).

Works for BERT-style classifiers (pooler + linear head) and MPNet/RoBERTa-style ones (the head reads the sequence).
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from .modeling import encode
from .training import adamw_with_warmup, batches


def _base(model):
    return getattr(model, model.base_model_prefix)


def _additive_mask(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class FrozenStates:
    """The frozen lower part's output (one float16 ``[tokens, hidden]`` tensor per text) and the trainable top."""

    def __init__(self, model, frozen: int):
        layers = _base(model).encoder.layer
        if not 0 < frozen < len(layers):
            raise ValueError(f"frozen_layers must be between 1 and {len(layers) - 1} for this model, got {frozen}")
        self.model, self.frozen, self.layers = model, frozen, layers
        self.states: dict[str, torch.Tensor] = {}
        for p in model.parameters():
            p.requires_grad = False
        for p in list(layers[frozen:].parameters()) + list(self._head_parameters()):
            p.requires_grad = True

    def _head_parameters(self):
        base = _base(self.model)
        pooler = getattr(base, "pooler", None)
        yield from self.model.classifier.parameters()
        if pooler is not None:
            yield from pooler.parameters()

    def _run(self, layers, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        encoder = _base(self.model).encoder
        kept = encoder.layer
        encoder.layer = torch.nn.ModuleList(layers)
        try:
            return encoder(hidden, attention_mask=_additive_mask(mask))[0]
        finally:
            encoder.layer = kept

    @torch.no_grad()
    def cache(self, tok: Tokenizer, texts: list[str], batch_size: int = 64, desc: str = "frozen layers") -> None:
        """Compute and keep the frozen layers' output for every text not cached yet."""
        todo = sorted({t for t in texts if t not in self.states}, key=len)
        self.model.eval()
        base = _base(self.model)
        for start in tqdm(range(0, len(todo), batch_size), desc=desc, unit="batch", mininterval=5):
            chunk = todo[start : start + batch_size]
            ids, mask = encode(tok, chunk)
            hidden = self._run(self.layers[: self.frozen], base.embeddings(input_ids=ids), mask)
            for i, text in enumerate(chunk):
                self.states[text] = hidden[i, : int(mask[i].sum())].to(torch.float16)

    def logits(self, texts: list[str]) -> torch.Tensor:
        """The model's logits from the cached states (the texts must have been cached)."""
        rows = [self.states[t] for t in texts]
        width = max(r.shape[0] for r in rows)
        hidden = torch.zeros((len(rows), width, rows[0].shape[1]))
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            hidden[i, : r.shape[0]] = r.float()
            mask[i, : r.shape[0]] = 1
        out = self._run(self.layers[self.frozen :], hidden, mask)
        pooler = getattr(_base(self.model), "pooler", None)
        if pooler is not None:  # BERT: pooled [CLS] -> dropout -> linear
            return self.model.classifier(self.model.dropout(pooler(out)))
        return self.model.classifier(out)  # MPNet/RoBERTa: the head reads the sequence itself

    def fit(self, texts: list[str], labels: np.ndarray, *, epochs: float, batch_size: int, lr: float, seed: int,
            warmup_fraction: float = 0.1, desc: str = "train top layers") -> list[float]:  # fmt: skip
        """Train the top layers and the head on cached texts with AdamW + linear warmup/decay; loss per step."""
        torch.manual_seed(seed)
        random.seed(seed)
        plan = batches(len(texts), batch_size, epochs, seed, [self.states[t].shape[0] for t in texts])
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt, sched = adamw_with_warmup(params, lr, len(plan), warmup_fraction)
        self.model.train()
        losses: list[float] = []
        bar = tqdm(plan, desc=desc, unit="batch", mininterval=5)
        for idx in bar:
            loss = F.cross_entropy(self.logits([texts[i] for i in idx]), torch.from_numpy(labels[idx]).long())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        self.model.eval()
        return losses

    @torch.no_grad()
    def predict(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """Logits for cached texts, rows in input order."""
        self.model.eval()
        order = np.argsort([self.states[t].shape[0] for t in texts], kind="stable")
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.logits([texts[i] for i in idx]).float().numpy()
        return out
