"""The stage functions: each takes the Build, leaves its artifacts where the Workspace says and returns a JSON-able
info dict (kept in its DONE.json). Their order, inputs and outputs are declared in pipeline.STAGES.

PyTorch and the modules built on it are imported inside the functions: the stage table (and with it
`sentimon compress --help`) must load without the train extra.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import label_array, prepare, teacher_subset
from .recipe import Recipe
from .workspace import Workspace

Say = Callable[[str], None]


@dataclass
class Build:
    """What a stage function sees: the recipe, the workspace and the info of every stage that ran before it."""

    recipe: Recipe
    ws: Workspace
    cache_dir: Path
    say: Say = print
    command: str = ""
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)  # stages the recipe disabled are absent


def _tokenizer(b: Build):
    from .modeling import load_tokenizer

    return load_tokenizer(b.ws.teacher_tokenizer, b.recipe.max_length)


def _load_hf(path: Path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path)


def _distill_set(ws: Workspace) -> tuple[list[str], np.ndarray, np.ndarray]:
    distill = ws.load_data().distill
    return [e.text for e in distill], label_array(distill), np.load(ws.teacher_logits)


def _files(fetched) -> list[dict[str, str]]:
    return [{"name": f.origin, "sha256": f.sha256} for f in fetched]


def _trained(model, losses: list[float]) -> dict[str, Any]:
    info: dict[str, Any] = {"final_loss": float(np.mean(losses[-20:])),
                            "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip
    config = getattr(model, "config", None)
    if config is not None:
        info["architecture"] = f"{config.model_type} {config.num_hidden_layers}L/{config.hidden_size}"
    return info


def _calibrate(
    model, tok, data, what: str, predict: Callable[[list[str]], np.ndarray] | None = None
) -> dict[str, Any] | None:
    """Temperature-scale ``model`` on the dev split (folded into its output layer); None without a dev split.
    ``predict`` gives its logits for texts (default: the model run on ``tok``'s ids)."""
    from .calibration import calibration_report, fold_temperature
    from .training import predict_logits

    dev = data.dev_examples()
    if not dev:
        return None
    texts = [e.text for e in dev]
    logits = predict(texts) if predict else predict_logits(model, tok, texts, desc=f"{what} dev logits")
    report = calibration_report(logits, label_array(dev))
    fold_temperature(model, report["temperature"])
    return report


def data_stage(b: Build) -> dict[str, Any]:
    data = prepare(b.recipe.data, b.cache_dir, b.recipe.seed)
    b.ws.save_data(data)
    return {"train": len(data.train), "transfer": len(data.transfer), "tests": list(data.tests)}


def teacher_stage(b: Build) -> dict[str, Any]:
    from .modeling import build_teacher
    from .training import fit, predict_logits

    recipe, ws, cfg = b.recipe, b.ws, b.recipe.teacher
    data = ws.load_data()
    train_texts = [e.text for e in data.train]
    model, provenance, fetched = build_teacher(cfg.model, b.cache_dir, ws.teacher_tokenizer, train_texts)
    tok = _tokenizer(b)
    subset = teacher_subset(data.train, cfg.max_train, recipe.seed)
    losses = fit(model, tok, [e.text for e in subset], label_array(subset), None, epochs=cfg.epochs,
                 batch_size=cfg.batch_size, lr=cfg.lr, seed=recipe.seed, warmup_fraction=cfg.warmup_fraction,
                 desc="teacher fine-tune")  # fmt: skip
    # Calibrated before anything reads it: the soft targets, the exported teacher row and the report share T.
    calibration = _calibrate(model, tok, data, "teacher")
    model.save_pretrained(ws.teacher_model_dir)
    distill_texts = [e.text for e in data.distill]
    logits = predict_logits(model, tok, distill_texts, desc="teacher logits")
    info = {"provenance": provenance, "files": _files(fetched), "trained_on": len(subset), **_trained(model, losses),
            "calibration": calibration}  # fmt: skip
    if cfg.ensemble:
        logits, info["ensemble"] = _ensemble(b, model, tok, subset, logits, distill_texts)
        info["files"] += info["ensemble"].pop("files")
    np.save(ws.teacher_logits, logits)
    return info


def _ensemble(b: Build, teacher, tok, subset, logits: np.ndarray, distill_texts: list[str]):
    """Fine-tune and calibrate each teacher.ensemble member; returns the soft targets (the mean of the members'
    and the teacher's calibrated log-probabilities) and an info dict with every member's and the ensemble's test
    metrics."""
    import torch

    from sentimon.inference.evaluation import metrics

    from .modeling import build_student, build_teacher
    from .training import fit, predict_logits

    recipe, cfg, data = b.recipe, b.recipe.teacher, b.ws.load_data()
    log_probs = [torch.log_softmax(torch.from_numpy(logits), -1).numpy()]
    test_logits = [{name: predict_logits(teacher, tok, [e.text for e in ex]) for name, ex in data.tests.items()}]
    members: list[dict[str, Any]] = []
    files: list[dict[str, str]] = []
    train_texts, train_labels = [e.text for e in subset], label_array(subset)
    predict: Callable[[list[str]], np.ndarray]
    for i, spec in enumerate(cfg.ensemble):
        what, seed = f"ensemble member {i + 1}", recipe.seed + 1 + i
        epochs, lr = float(spec.get("epochs", cfg.epochs)), float(spec.get("lr", cfg.lr))
        if "model" in spec:  # its own encoder and tokenizer, lower layers frozen (compression.frozen)
            from .frozen import FrozenStates
            from .modeling import load_tokenizer

            model, provenance, fetched = build_teacher(spec["model"], b.cache_dir, b.ws.member_tokenizer(i + 1),
                                                       train_texts)  # fmt: skip
            member_tok = load_tokenizer(b.ws.member_tokenizer(i + 1), recipe.max_length)
            states = FrozenStates(model, int(spec["frozen_layers"]))
            tests = [e.text for ex in data.tests.values() for e in ex]
            states.cache(member_tok, train_texts + [e.text for e in data.dev_examples()] + distill_texts + tests,
                         desc=f"{what}: frozen layers")  # fmt: skip
            losses = states.fit(train_texts, train_labels, epochs=epochs, batch_size=cfg.batch_size, lr=lr,
                                seed=seed, warmup_fraction=cfg.warmup_fraction, desc=f"{what}: top layers")  # fmt: skip
            predict = states.predict
            calibration = _calibrate(model, member_tok, data, what, predict)
        else:
            model, provenance, fetched = build_student(spec["init"], teacher, b.cache_dir, tok.get_vocab_size())
            losses = fit(model, tok, train_texts, train_labels, None, epochs=epochs, batch_size=cfg.batch_size,
                         lr=lr, seed=seed, warmup_fraction=cfg.warmup_fraction, desc=f"{what} fine-tune")  # fmt: skip
            calibration = _calibrate(model, tok, data, what)
            predict = functools.partial(predict_logits, model, tok, desc=f"{what} logits")

        log_probs.append(torch.log_softmax(torch.from_numpy(predict(distill_texts)), -1).numpy())
        test_logits.append({name: predict([e.text for e in ex]) for name, ex in data.tests.items()})
        member = {"provenance": provenance, "calibration": calibration, **_trained(model, losses)}
        if "model" in spec:
            member["frozen_layers"] = int(spec["frozen_layers"])
        members.append(member)
        files += _files(fetched)

    def test_metrics(per_split: list[dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
        out = {}
        for name, examples in data.tests.items():
            mean = np.mean([torch.softmax(torch.from_numpy(m[name]), -1).numpy() for m in per_split], axis=0)
            got = metrics(mean, label_array(examples))
            out[name] = {"accuracy": got.accuracy, "macro_f1": got.macro_f1}
        return out

    for member, split_logits in zip(members, test_logits[1:], strict=True):
        member["test"] = test_metrics([split_logits])
    summary = {"members": members, "test": test_metrics(test_logits), "teacher_test": test_metrics(test_logits[:1]),
               "files": files}  # fmt: skip
    return np.mean(log_probs, axis=0).astype(np.float32), summary


def student_stage(b: Build) -> dict[str, Any]:
    import torch

    from .modeling import build_student
    from .training import fit, hidden_mse_loss

    recipe, cfg = b.recipe, b.recipe.student
    teacher = _load_hf(b.ws.teacher_model_dir)
    tok = _tokenizer(b)
    model, provenance, fetched = build_student(cfg.init, teacher, b.cache_dir, tok.get_vocab_size())
    texts, labels, logits = _distill_set(b.ws)
    info: dict[str, Any] = {"provenance": provenance, "files": _files(fetched)}
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
    info["calibration"] = _calibrate(model, tok, b.ws.load_data(), "student")
    model.save_pretrained(b.ws.student_model_dir)
    return {**info, **_trained(model, losses)}


def static_stage(b: Build) -> dict[str, Any]:
    import torch

    from .modeling import StaticClassifier, token_vectors
    from .training import fit

    recipe, cfg = b.recipe, b.recipe.static
    tok = _tokenizer(b)
    vectors = token_vectors(_load_hf(b.ws.teacher_model_dir), tok, cfg.dim)
    model = StaticClassifier(vectors)
    texts, labels, logits = _distill_set(b.ws)
    losses = fit(model, tok, texts, labels, logits, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                 seed=recipe.seed, temperature=cfg.temperature, soft_weight=0.7, hard_weight=0.3,
                 desc="static student")  # fmt: skip
    torch.save(model, b.ws.static_model)
    return {"dim": vectors.shape[1], "vocab": vectors.shape[0], "init": "teacher token vectors + PCA",
            **_trained(model, losses)}  # fmt: skip


def prune_stage(b: Build) -> dict[str, Any]:
    import torch

    from .pruning import count_parameters, importance, low_rank, prune
    from .training import fit

    recipe, ws, cfg, scfg = b.recipe, b.ws, b.recipe.prune, b.recipe.student
    tok = _tokenizer(b)
    texts, labels, logits = _distill_set(ws)
    model = _load_hf(ws.student_model_dir)
    before = count_parameters(model)
    heads, ffn = importance(model, tok, texts, labels, logits, cfg.importance_batches, scfg.batch_size,
                            recipe.seed, scfg.temperature)  # fmt: skip
    kept = prune(model, heads, ffn, cfg.heads_fraction, cfg.ffn_fraction)
    kw: dict[str, Any] = dict(batch_size=scfg.batch_size, lr=scfg.lr / 2, seed=recipe.seed + 1,
                              temperature=scfg.temperature, soft_weight=scfg.soft_weight,
                              hard_weight=scfg.hard_weight)  # fmt: skip
    if cfg.recovery_epochs > 0:
        fit(model, tok, texts, labels, logits, epochs=cfg.recovery_epochs, desc="pruning recovery", **kw)
    data = ws.load_data()
    calibration = _calibrate(model, tok, data, "pruned")
    torch.save(model, ws.pruned_model)
    info: dict[str, Any] = {"kept": kept, "parameters_before": before, "parameters": count_parameters(model),
                            "calibration": calibration}  # fmt: skip
    if cfg.lowrank:
        lr_model = _load_hf(ws.student_model_dir)
        ranks = low_rank(lr_model, cfg.lowrank_rank_fraction)
        if cfg.recovery_epochs > 0:
            fit(lr_model, tok, texts, labels, logits, epochs=cfg.recovery_epochs, desc="low-rank recovery", **kw)
        lr_calibration = _calibrate(lr_model, tok, data, "low-rank")
        torch.save(lr_model, ws.lowrank_model)
        info["lowrank"] = {"ranks": ranks, "parameters": count_parameters(lr_model), "calibration": lr_calibration}
    return info


def export_stage(b: Build) -> dict[str, Any]:
    import torch

    from .evaluate import load_candidate
    from .export import check_export, check_parity, export_onnx, optimize, parity, quantize_int8
    from .modeling import encoder_of

    recipe, ws = b.recipe, b.ws
    all_test = ws.load_data().test_texts()
    info: dict[str, Any] = {"candidates": {}, "parity": {}}

    def scorer(candidate: str):
        return load_candidate(ws, candidate, recipe.max_length, recipe.export.eval_threads,
                              recipe.export.throughput_batch)  # fmt: skip

    def transformer(name: str, model, quantize: bool) -> None:
        fp32, int8 = f"{name}_fp32", f"{name}_int8"
        raw = export_onnx(model, ws.onnx(f"{name}_unoptimized"), recipe.export.opset)
        # Pruned layers keep the same head count in every layer, so the fusion can be told the pruned shape.
        att = encoder_of(model).encoder.layer[0].attention.self
        fused = optimize(raw, ws.onnx(fp32), att.num_attention_heads, att.all_head_size)
        raw.unlink()
        check_export(model, scorer(fp32), all_test[:128], name)
        info["candidates"][fp32] = {"optimization": fused}
        if quantize:
            quantize_int8(ws.onnx(fp32), ws.onnx(int8))
            info["candidates"][int8] = {"optimization": fused + "+int8"}
            result = parity(scorer(fp32).score_probs(all_test), scorer(int8).score_probs(all_test))
            info["parity"][name] = result.as_dict()
            ws.parity_file.write_text(json.dumps(info["parity"], indent=2))
            check_parity(result, recipe.export.min_label_agreement, recipe.export.max_prob_diff, int8)

    transformer("teacher", _load_hf(ws.teacher_model_dir), quantize=False)
    transformer("student", _load_hf(ws.student_model_dir), quantize=True)
    if recipe.prune.enabled:
        transformer("pruned", torch.load(ws.pruned_model, weights_only=False), quantize=True)
        if recipe.prune.lowrank:
            transformer("lowrank", torch.load(ws.lowrank_model, weights_only=False), quantize=True)
    if recipe.static.enabled:
        static = torch.load(ws.static_model, weights_only=False)
        export_onnx(static, ws.onnx("static"), recipe.export.opset)
        check_export(static, scorer("static"), all_test[:128], "static")
        info["candidates"]["static"] = {"optimization": "none (Gather, ReduceSum, Gemm)"}
    for name, cand in info["candidates"].items():
        cand["size_bytes"] = ws.onnx(name).stat().st_size
    return info


def evaluate_stage(b: Build) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from sentimon.inference import load

    from .evaluate import labelled_sets, load_candidate, measure, timing_texts

    recipe, ws = b.recipe, b.ws
    tests = ws.load_data().tests
    exported = b.infos["export"]
    sets = labelled_sets(tests)
    texts = timing_texts(sets, recipe.export.throughput_texts, recipe.seed)
    threads, batch = recipe.export.eval_threads, recipe.export.throughput_batch

    def models():
        yield "vader", load("vader"), None
        for name, cand in tqdm(exported["candidates"].items(), desc="evaluate", unit="model"):
            scorer = load_candidate(ws, name, recipe.max_length, threads, batch)
            yield name, scorer, cand["size_bytes"]

    measured = measure(models(), sets, texts)
    info = {"batch_size": batch, "texts": len(texts), "threads": threads, "load_avg": measured["load_avg"]}
    return {"results": measured["results"], "throughput": info}


def ship_stage(b: Build) -> dict[str, Any]:
    from .shipping import ship

    return ship(b.recipe, b.ws, b.infos, b.command, b.say)
