"""The build stages; each returns a JSON-able info dict and leaves its artefacts in its workspace folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import balanced_cap, prepare
from .modeling import StaticClassifier, build_student, build_teacher, encoder_of, load_tokenizer, token_vectors
from .pipeline import Workspace, _labels, prepared
from .recipe import Recipe
from .training import fit, hidden_mse_loss, predict_logits


def data_stage(recipe: Recipe, cache_dir: Path, out: Path) -> dict[str, Any]:
    summary = prepare(recipe.data, cache_dir, out, recipe.seed)
    return {"train": summary["train"], "transfer": summary["transfer"], "tests": list(summary["tests"])}


def _load_hf(path: Path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path)


def teacher_stage(recipe: Recipe, cache_dir: Path, ws: Workspace) -> dict[str, Any]:
    train, transfer, _, _ = prepared(ws)
    out = ws.dir("teacher")
    cfg = recipe.teacher
    model, tok_path, provenance, files = build_teacher(cfg.model, cache_dir, out, [e.text for e in train])
    tok = load_tokenizer(tok_path, recipe.max_length)
    subset = balanced_cap(train, cfg.max_train, recipe.seed)
    losses = fit(model, tok, [e.text for e in subset], _labels(subset), None, epochs=cfg.epochs,
                 batch_size=cfg.batch_size, lr=cfg.lr, seed=recipe.seed, warmup_fraction=cfg.warmup_fraction,
                 desc="teacher fine-tune")  # fmt: skip
    model.save_pretrained(out / "model")
    distill = train + transfer
    logits = predict_logits(model, tok, [e.text for e in distill], desc="teacher logits")
    np.save(out / "logits.npy", logits)
    return {
        "provenance": provenance,
        "files": [{"name": f.origin, "sha256": f.sha256} for f in files],
        "trained_on": len(subset),
        "final_loss": float(np.mean(losses[-20:])),
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": f"{model.config.model_type} {model.config.num_hidden_layers}L/{model.config.hidden_size}",
    }


def _distill_set(ws: Workspace):
    train, transfer, _, _ = prepared(ws)
    distill = train + transfer
    logits = np.load(ws.root / "teacher" / "logits.npy")
    return [e.text for e in distill], _labels(distill), logits


def student_stage(recipe: Recipe, cache_dir: Path, ws: Workspace) -> dict[str, Any]:
    cfg = recipe.student
    teacher = _load_hf(ws.root / "teacher" / "model")
    tok = load_tokenizer(ws.root / "teacher" / "tokenizer.json", recipe.max_length)
    model, provenance, files = build_student(cfg.init, teacher, cache_dir, tok.get_vocab_size())
    texts, labels, logits = _distill_set(ws)
    info: dict[str, Any] = {"provenance": provenance, "files": [{"name": f.origin, "sha256": f.sha256} for f in files]}
    if cfg.hidden_mse_weight > 0 and cfg.hidden_mse_epochs > 0:
        n_s, n_t = model.config.num_hidden_layers, teacher.config.num_hidden_layers
        layer_map = [round((i + 1) * n_t / n_s) - 1 for i in range(n_s)]
        proj = None
        if model.config.hidden_size != teacher.config.hidden_size:
            proj = torch.nn.Linear(model.config.hidden_size, teacher.config.hidden_size)
            model.add_module("mse_proj", proj)
        loss_fn = hidden_mse_loss(model, teacher, layer_map, proj)
        losses = fit(model, tok, texts, labels, None, epochs=cfg.hidden_mse_epochs, batch_size=cfg.batch_size,
                     lr=cfg.lr, seed=recipe.seed, desc="student hidden-state MSE",
                     loss_fn=lambda m, i, k, idx: cfg.hidden_mse_weight * loss_fn(m, i, k, idx))  # fmt: skip
        if proj is not None:
            del model.mse_proj
        info["hidden_mse"] = {"layer_map": layer_map, "final_loss": float(np.mean(losses[-20:]))}
    losses = fit(model, tok, texts, labels, logits, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 seed=recipe.seed, temperature=cfg.temperature, soft_weight=cfg.soft_weight,
                 hard_weight=cfg.hard_weight, desc="student distillation")  # fmt: skip
    model.save_pretrained(ws.dir("student") / "model")
    info.update(
        final_loss=float(np.mean(losses[-20:])),
        parameters=sum(p.numel() for p in model.parameters()),
        architecture=f"{model.config.model_type} {model.config.num_hidden_layers}L/{model.config.hidden_size}",
    )
    return info


def static_stage(recipe: Recipe, ws: Workspace) -> dict[str, Any]:
    cfg = recipe.static
    teacher = _load_hf(ws.root / "teacher" / "model")
    tok = load_tokenizer(ws.root / "teacher" / "tokenizer.json", recipe.max_length)
    vectors = token_vectors(teacher, tok, cfg.dim)
    model = StaticClassifier(vectors)
    texts, labels, logits = _distill_set(ws)
    losses = fit(model, tok, texts, labels, logits, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 seed=recipe.seed, temperature=cfg.temperature, soft_weight=0.7, hard_weight=0.3,
                 desc="static student")  # fmt: skip
    torch.save(model, ws.dir("static") / "model.pt")
    return {"dim": vectors.shape[1], "vocab": vectors.shape[0], "final_loss": float(np.mean(losses[-20:])),
            "parameters": sum(p.numel() for p in model.parameters()),
            "init": "teacher token vectors + PCA"}  # fmt: skip


def prune_stage(recipe: Recipe, ws: Workspace) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification

    from .pruning import count_parameters, importance, low_rank, prune

    cfg, scfg = recipe.prune, recipe.student
    tok = load_tokenizer(ws.root / "teacher" / "tokenizer.json", recipe.max_length)
    texts, labels, logits = _distill_set(ws)
    student_dir = ws.root / "student" / "model"
    model = AutoModelForSequenceClassification.from_pretrained(student_dir)
    before = count_parameters(model)
    heads, ffn = importance(model, tok, texts, labels, logits, cfg.importance_batches, scfg.batch_size,
                            recipe.seed, scfg.temperature)  # fmt: skip
    kept = prune(model, heads, ffn, cfg.heads_fraction, cfg.ffn_fraction)
    kw = dict(batch_size=scfg.batch_size, lr=scfg.lr / 2, seed=recipe.seed + 1, temperature=scfg.temperature,
              soft_weight=scfg.soft_weight, hard_weight=scfg.hard_weight)  # fmt: skip
    if cfg.recovery_epochs > 0:
        fit(model, tok, texts, labels, logits, epochs=cfg.recovery_epochs, desc="pruning recovery", **kw)
    out = ws.dir("prune")
    torch.save(model, out / "model.pt")
    info: dict[str, Any] = {"kept": kept, "parameters_before": before, "parameters": count_parameters(model)}
    if cfg.lowrank:
        lr_model = AutoModelForSequenceClassification.from_pretrained(student_dir)
        ranks = low_rank(lr_model, cfg.lowrank_rank_fraction)
        if cfg.recovery_epochs > 0:
            fit(lr_model, tok, texts, labels, logits, epochs=cfg.recovery_epochs, desc="low-rank recovery", **kw)
        torch.save(lr_model, out / "lowrank.pt")
        info["lowrank"] = {"ranks": ranks, "parameters": count_parameters(lr_model)}
    return info


def export_stage(recipe: Recipe, ws: Workspace) -> dict[str, Any]:
    from .evaluate import OrtScorer
    from .export import check_export, check_parity, export_onnx, optimize, parity, quantize_int8

    out = ws.dir("export")
    tok_path = ws.root / "teacher" / "tokenizer.json"
    _, _, tests, _ = prepared(ws)
    all_test = [e.text for examples in tests.values() for e in examples]
    info: dict[str, Any] = {"candidates": {}, "parity": {}}

    def transformer(name: str, model, quantize: bool) -> None:
        raw = export_onnx(model, out / f"{name}.raw.onnx", recipe.export.opset)
        # Pruned layers keep the same head count in every layer, so the fusion can be told the pruned shape.
        att = encoder_of(model).encoder.layer[0].attention.self
        fused = optimize(raw, out / f"{name}_fp32.onnx", att.num_attention_heads, att.all_head_size)
        raw.unlink()
        check_export(model, OrtScorer(out / f"{name}_fp32.onnx", tok_path, recipe.max_length), all_test[:128], name)
        info["candidates"][f"{name}_fp32"] = {"file": f"{name}_fp32.onnx", "optimization": fused}
        if quantize:
            quantize_int8(out / f"{name}_fp32.onnx", out / f"{name}_int8.onnx")
            info["candidates"][f"{name}_int8"] = {"file": f"{name}_int8.onnx", "optimization": fused + "+int8"}
            fp = OrtScorer(out / f"{name}_fp32.onnx", tok_path, recipe.max_length, recipe.export.eval_threads)
            q8 = OrtScorer(out / f"{name}_int8.onnx", tok_path, recipe.max_length, recipe.export.eval_threads)
            result = parity(fp.probs(all_test), q8.probs(all_test))
            info["parity"][name] = result.as_dict()
            (out / "parity.json").write_text(json.dumps(info["parity"], indent=2))
            check_parity(result, recipe.export.min_label_agreement, recipe.export.max_prob_diff, f"{name}_int8")

    transformer("teacher", _load_hf(ws.root / "teacher" / "model"), quantize=False)
    transformer("student", _load_hf(ws.root / "student" / "model"), quantize=True)
    if recipe.prune.enabled:
        transformer("pruned", torch.load(ws.root / "prune" / "model.pt", weights_only=False), quantize=True)
        if recipe.prune.lowrank:
            transformer("lowrank", torch.load(ws.root / "prune" / "lowrank.pt", weights_only=False), quantize=True)
    if recipe.static.enabled:
        static = torch.load(ws.root / "static" / "model.pt", weights_only=False)
        export_onnx(static, out / "static.onnx", recipe.export.opset)
        check_export(static, OrtScorer(out / "static.onnx", tok_path, recipe.max_length), all_test[:128], "static")
        info["candidates"]["static"] = {"file": "static.onnx", "optimization": "none (Gather, ReduceSum, Gemm)"}
    for cand in info["candidates"].values():
        cand["size_bytes"] = (out / cand["file"]).stat().st_size
    return info


def evaluate_stage(recipe: Recipe, ws: Workspace) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from .evaluate import OrtScorer, evaluate, throughput, vader_probs

    _, _, tests, _ = prepared(ws)
    exported = json.loads((ws.root / "export" / "DONE.json").read_text())
    tok_path = ws.root / "teacher" / "tokenizer.json"
    pool = [e.text for examples in tests.values() for e in examples]
    rng = np.random.default_rng(recipe.seed)
    bench = [pool[i] for i in rng.choice(len(pool), size=recipe.export.throughput_texts, replace=True)]
    batch = recipe.export.throughput_batch
    import os

    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    names = ["vader", *exported["candidates"]]
    for name in tqdm(names, desc="evaluate", unit="model"):
        if name == "vader":
            score, size = vader_probs, None
        else:
            cand = exported["candidates"][name]
            scorer = OrtScorer(
                ws.root / "export" / cand["file"], tok_path, recipe.max_length, recipe.export.eval_threads
            )
            score, size = (lambda texts, s=scorer: s.probs(texts, batch)), cand["size_bytes"]
        results[name] = {
            "metrics": evaluate(score, tests),
            "texts_per_s": round(throughput(score, bench), 1),
            "size_bytes": size,
        }
    # The 1-minute load average brackets the timings: on a shared box the figures are only comparable within a run.
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return {"results": results, "throughput": {"batch_size": batch, "texts": len(bench),
                                               "threads": recipe.export.eval_threads, "load_avg": load}}  # fmt: skip
