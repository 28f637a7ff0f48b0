"""Turn evaluated candidates into bundles (inference.bundle layout + manifest + model card) and the report.

The numbers (report, manifest metrics, model card) are written by report.py, which the re-scoring of shipped
bundles shares."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentimon.core.host import machine_description as machine
from sentimon.inference.bundle import MODEL_FILE, TOKENIZER_FILE, DataSource, Manifest

from .data import LABELS
from .evaluate import candidate_kind
from .modeling import load_tokenizer
from .recipe import CompressionError, Recipe
from .report import write_report, write_results
from .workspace import Workspace


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


def calibration_records(infos: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each model's dev-split temperature fit (None where the recipe has no dev split), by report row name."""
    prune = infos.get("prune", {})
    return {"teacher": infos.get("teacher", {}).get("calibration"),
            "student": infos.get("student", {}).get("calibration"),
            "pruned": prune.get("calibration"), "low-rank": prune.get("lowrank", {}).get("calibration")}  # fmt: skip


def shipped_candidate(recipe: Recipe) -> str:
    """The transformer candidate the recipe ships (the one the targets are checked on)."""
    return next((c for c in recipe.ship.bundles if c != "static"), "student_int8")


def ship(
    recipe: Recipe, ws: Workspace, infos: dict[str, dict[str, Any]], command: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """Write the report and every bundle the recipe names from the earlier stages' infos (stage name -> info)."""
    results = infos["evaluate"]["results"]
    tput = infos["evaluate"]["throughput"]
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = {"recipe": recipe.name, "date": date, "machine": machine(), "command": command,
              "batch": tput["batch_size"], "threads": tput["threads"], "texts": tput["texts"],
              "load_avg": tput.get("load_avg"), "parity": infos["export"].get("parity"),
              "timings": {stage: info["seconds"] for stage, info in infos.items()},
              "calibration": calibration_records(infos), "shipped": shipped_candidate(recipe),
              "ensemble": infos.get("teacher", {}).get("ensemble"), "note": recipe.ship.note}  # fmt: skip
    shipped = header["shipped"]
    if shipped in results:
        from .evaluate import load_candidate
        from .report import behaviour_record

        scorer = load_candidate(ws, shipped, recipe.max_length, tput["threads"], tput["batch_size"])
        header["behaviour"] = behaviour_record(scorer, shipped)
    report_dir = Path(recipe.ship.report_dir) if recipe.ship.report_dir else ws.report_dir
    md, png = write_report(results, ws.report_dir, header)
    bundles: dict[str, str] = {}
    data_json = json.loads(ws.data_summary.read_text())
    for candidate, where in recipe.ship.bundles.items():
        if candidate not in results:
            raise CompressionError(f"ship.bundles names {candidate!r} but this recipe did not build it "
                                   f"(built: {', '.join(r for r in results if r != 'vader')})")  # fmt: skip
        bundle = Path(where)
        bundles[candidate] = str(write_bundle(recipe, ws, candidate, bundle, results, header, infos, data_json))
        say(f"bundle {candidate}: {bundle}")
    # After the bundles: a report_dir may be a bundle's own folder, which writing the bundle replaces.
    if report_dir != ws.report_dir:
        report_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(md, report_dir / md.name)
        shutil.copy(png, report_dir / png.name)
        md, png = report_dir / md.name, report_dir / png.name
    say(f"report: {md}")
    return {"report": str(md), "plot": str(png), "bundles": bundles, "results": results}


def write_bundle(recipe, ws: Workspace, candidate, bundle: Path, results, header, infos, data_json) -> Path:
    exported = infos["export"]["candidates"][candidate]
    tmp = bundle.with_name(bundle.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shutil.copy(ws.onnx(candidate), tmp / MODEL_FILE)
    # Truncation is recorded in the tokenizer file itself, so any runtime reading it cuts at max_length.
    load_tokenizer(ws.teacher_tokenizer, recipe.max_length).save(str(tmp / TOKENIZER_FILE))
    size = sum((tmp / n).stat().st_size for n in (MODEL_FILE, TOKENIZER_FILE))
    if size > recipe.export.max_bundle_mb * 1e6:
        raise CompressionError(f"bundle {candidate} is {size / 1e6:.1f} MB > export.max_bundle_mb "
                               f"{recipe.export.max_bundle_mb}; ship an int8 or pruned candidate")  # fmt: skip
    import onnxruntime
    import torch
    import transformers

    teacher, student = infos["teacher"], infos["student"]
    files = [*data_json["files"], *teacher.get("files", []), *student.get("files", [])]
    manifest = Manifest(
        name=bundle.name,
        version=recipe.version,
        kind=candidate_kind(candidate),
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
            "parity": infos["export"].get("parity", {}).get(candidate.rsplit("_", 1)[0]),
            "calibration": header["calibration"],
            "stage_seconds": header["timings"],
            "data_split": data_json["sources"],
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "student": {k: v for k, v in student.items() if k != "fingerprint"},
        },  # fmt: skip
    )
    write_results(tmp, manifest, candidate, recipe, results, header)
    if bundle.exists():
        shutil.rmtree(bundle)
    tmp.rename(bundle)
    return bundle
