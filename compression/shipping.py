"""Turn evaluated candidates into bundles (inference.bundle layout + manifest + model card) and the report."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sentimon.inference.bundle import CARD_FILE, MODEL_FILE, TOKENIZER_FILE, DataSource, Manifest, write_manifest
from sentimon.core.host import machine_description as machine

from .data import LABELS
from .modeling import load_tokenizer
from .recipe import CompressionError, Recipe
from .report import PRETTY, targets, write_report

KIND = {"student_int8": "transformer", "student_fp32": "transformer", "pruned_int8": "transformer", "static": "static"}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def teacher_name(provenance: dict[str, Any]) -> str:
    """A portable name for the teacher's starting point (never a local cache path)."""
    if provenance.get("source") == "pypi":
        return f"{provenance['package']}=={provenance['version']}:{provenance['path']}"
    return str(provenance.get("name") or provenance.get("path") or provenance.get("source"))


def model_card(manifest: Manifest, candidate: str, recipe: Recipe, tgt: list) -> str:
    rows = "\n".join(
        f"| {split} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {m.get('binary_accuracy', float('nan')):.3f} |"
        for split, m in manifest.metrics.items()
    )
    kind_text = (
        "a distilled transformer student (soft teacher targets + gold labels), exported to ONNX, ORT-optimized"
        + (" and dynamically INT8-quantized" if candidate.endswith("int8") else "")
        if manifest.kind == "transformer"
        else "a static-embedding model (model2vec-style): per-token vectors distilled from the teacher, mean-pooled "
        "over the mask, linear head trained on teacher soft labels"
    )
    return f"""# sentimon model `{manifest.name}` ({PRETTY.get(candidate, candidate)})

{kind_text[0].upper() + kind_text[1:]}. Labels: {", ".join(manifest.labels)}. Max length {manifest.max_length} tokens.

- Teacher: {manifest.teacher.get("model")} ({manifest.teacher.get("architecture")}), fine-tuned on the training splits.
- Data: {", ".join(d.name for d in manifest.data)}; held-out test splits per source (grouped by tweet id where
  rows are paraphrases). No labeled financial data: finance quality comes from distillation on Guardian business
  headlines only; fine-tune on your own data (`data.sources: [{{kind: file, ...}}]`) before relying on it.
- Size {manifest.size_bytes / 1e6:.1f} MB; {manifest.throughput.get("texts_per_s", 0):,.0f} texts/s on \
{manifest.throughput.get("machine")} (batch {manifest.throughput.get("batch_size")}, \
{manifest.throughput.get("threads")} threads, load average {manifest.throughput.get("load_avg_1m")}).
- Rebuild: `{manifest.build.get("command")}` (recipe `{recipe.name}`, seed {recipe.seed}).

| test split | accuracy | macro-F1 | binary accuracy |
|---|---:|---:|---:|
{rows}

Targets of this build: {"; ".join(f"{w}: {'met' if m else 'NOT met'} ({d})" for w, m, d in tgt) or "n/a"}.

Limitations: trained on English tweets and movie-review snippets; sarcasm, finance jargon and non-English text are
weak spots. Scores are P(positive) - P(negative).
"""


def ship(recipe: Recipe, ws, evaluated: dict[str, Any], ctx: dict[str, Any], say) -> dict[str, Any]:
    results = evaluated["results"]
    tput = evaluated["throughput"]
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = {"recipe": recipe.name, "date": date, "machine": machine(), "command": ctx["command"],
              "batch": tput["batch_size"], "threads": tput["threads"], "texts": tput["texts"],
              "load_avg": tput.get("load_avg"),
              "parity": ctx["export"].get("parity"), "timings": ctx["timings"]}  # fmt: skip
    report_dir = Path(recipe.ship.report_dir) if recipe.ship.report_dir else ws.root
    md, png = write_report(results, ws.root, header)
    if report_dir != ws.root:
        report_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(md, report_dir / md.name)
        shutil.copy(png, report_dir / png.name)
        md, png = report_dir / md.name, report_dir / png.name
    say(f"report: {md}")
    summary: dict[str, Any] = {"report": str(md), "plot": str(png), "bundles": {}, "results": results}
    data_json = json.loads((ws.root / "data" / "data.json").read_text())
    for candidate, where in recipe.ship.bundles.items():
        if candidate not in results:
            raise CompressionError(f"ship.bundles names {candidate!r} but this recipe did not build it "
                                   f"(built: {', '.join(r for r in results if r != 'vader')})")  # fmt: skip
        bundle = Path(where)
        summary["bundles"][candidate] = str(write_bundle(recipe, ws, candidate, bundle, results, header, ctx,
                                                         data_json))  # fmt: skip
        say(f"bundle {candidate}: {bundle}")
    return summary


def write_bundle(recipe, ws, candidate, bundle: Path, results, header, ctx, data_json) -> Path:
    exported = ctx["export"]["candidates"][candidate]
    tmp = bundle.with_name(bundle.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shutil.copy(ws.root / "export" / exported["file"], tmp / MODEL_FILE)
    # Truncation is recorded in the tokenizer file itself, so any runtime reading it cuts at max_length.
    load_tokenizer(ws.root / "teacher" / "tokenizer.json", recipe.max_length).save(str(tmp / TOKENIZER_FILE))
    size = sum((tmp / n).stat().st_size for n in (MODEL_FILE, TOKENIZER_FILE))
    if size > recipe.export.max_bundle_mb * 1e6:
        raise CompressionError(f"bundle {candidate} is {size / 1e6:.1f} MB > export.max_bundle_mb "
                               f"{recipe.export.max_bundle_mb}; ship an int8 or pruned candidate")  # fmt: skip
    import onnxruntime
    import torch
    import transformers

    entry = results[candidate]
    teacher = ctx["teacher"]
    files = [*data_json["files"], *teacher.get("files", []), *ctx["student"].get("files", [])]
    manifest = Manifest(
        name=bundle.name,
        version=recipe.version,
        kind=KIND[candidate],
        labels=list(LABELS),
        max_length=recipe.max_length,
        teacher={
            "model": teacher_name(teacher["provenance"]),
            "architecture": teacher["architecture"],
            "parameters": teacher["parameters"],
            "metrics": results["teacher_fp32"]["metrics"],
            "texts_per_s": results["teacher_fp32"]["texts_per_s"],
        },  # fmt: skip
        data=[DataSource(name=f["name"], sha256=f["sha256"], rows=f.get("rows")) for f in files],
        build={
            "command": header["command"],
            "recipe_file": recipe.source_file,
            "recipe": recipe.to_dict(),
            "candidate": candidate,
            "seeds": {"seed": recipe.seed},
            "git_commit": _git_commit(),
            "date": header["date"],
            "host": header["machine"],
            "optimization": exported["optimization"],
            "parity": ctx["export"].get("parity", {}).get(candidate.rsplit("_", 1)[0]),
            "stage_seconds": header["timings"],
            "data_split": data_json["sources"],
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "student": {k: v for k, v in ctx["student"].items() if k not in ("fingerprint",)},
            "baseline_vader": results["vader"]["metrics"],
        },  # fmt: skip
        metrics=entry["metrics"],
        throughput={
            "texts_per_s": entry["texts_per_s"],
            "batch_size": header["batch"],
            "threads": header["threads"],
            "texts": header["texts"],
            "machine": header["machine"],
            "max_length": recipe.max_length,
            "load_avg_1m": header.get("load_avg"),
        },  # fmt: skip
    )
    manifest = write_manifest(tmp, manifest)
    (tmp / CARD_FILE).write_text(model_card(manifest, candidate, recipe, targets(results)))
    if bundle.exists():
        shutil.rmtree(bundle)
    tmp.rename(bundle)
    return bundle
