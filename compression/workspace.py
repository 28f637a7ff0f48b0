"""The work directory of one build: a typed accessor for every artifact a stage leaves for later stages.

A stage asks the workspace where an earlier stage put its output (``ws.teacher_tokenizer``) instead of joining
paths into that stage's folder, so each file name is written once. The layout is also what a resumed build
reads back: keep a path unchanged while the recipe sections that produce its artifact are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data import PreparedData, read_jsonl, write_jsonl

MARKER_FILE = "DONE.json"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def default(cls, cache_dir: Path, recipe_name: str) -> Workspace:
        """Where `sentimon compress` builds a recipe unless told otherwise: ``<cache_dir>/compress/<recipe>``."""
        return cls(Path(cache_dir) / "compress" / recipe_name)

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def marker(self, stage: str) -> Path:
        """The stage's completion record: its info plus the fingerprint of the recipe sections it was built from."""
        return self.stage_dir(stage) / MARKER_FILE

    # --- data ---------------------------------------------------------------------------------------------------

    @property
    def data_summary(self) -> Path:
        return self.stage_dir("data") / "data.json"

    @property
    def train_file(self) -> Path:
        return self.stage_dir("data") / "train.jsonl"

    @property
    def transfer_file(self) -> Path:
        return self.stage_dir("data") / "transfer.jsonl"

    def test_file(self, split: str) -> Path:
        return self.stage_dir("data") / f"test_{split}.jsonl"

    def dev_file(self, split: str) -> Path:
        return self.stage_dir("data") / f"dev_{split}.jsonl"

    def test_files(self) -> list[Path]:
        """Every held-out split the data stage wrote (none before it ran)."""
        return sorted(self.stage_dir("data").glob("test_*.jsonl"))

    def save_data(self, data: PreparedData) -> None:
        for name, examples in data.tests.items():
            write_jsonl(self.test_file(name), examples)
        for name, examples in data.dev.items():
            write_jsonl(self.dev_file(name), examples)
        write_jsonl(self.train_file, data.train)
        write_jsonl(self.transfer_file, data.transfer)
        self.data_summary.write_text(json.dumps(data.summary, indent=2))

    def load_data(self) -> PreparedData:
        summary = json.loads(self.data_summary.read_text())
        tests = {name: read_jsonl(self.test_file(name)) for name in summary["tests"]}
        dev = {name: read_jsonl(self.dev_file(name)) for name in summary.get("dev", [])}
        return PreparedData(read_jsonl(self.train_file), read_jsonl(self.transfer_file), tests, summary, dev)

    # --- teacher: the tokenizer every student and every bundle shares -------------------------------------------

    @property
    def teacher_model_dir(self) -> Path:
        return self.stage_dir("teacher") / "model"

    @property
    def teacher_tokenizer(self) -> Path:
        return self.stage_dir("teacher") / "tokenizer.json"

    def member_tokenizer(self, i: int) -> Path:
        """The tokenizer of teacher.ensemble member ``i`` (from 1) that brings its own model."""
        return self.stage_dir("teacher") / f"member{i}_tokenizer.json"

    @property
    def teacher_logits(self) -> Path:
        """Teacher logits on PreparedData.distill, row for row."""
        return self.stage_dir("teacher") / "logits.npy"

    # --- students -----------------------------------------------------------------------------------------------

    @property
    def student_model_dir(self) -> Path:
        return self.stage_dir("student") / "model"

    @property
    def static_model(self) -> Path:
        return self.stage_dir("static") / "model.pt"

    @property
    def pruned_model(self) -> Path:
        return self.stage_dir("prune") / "model.pt"

    @property
    def lowrank_model(self) -> Path:
        return self.stage_dir("prune") / "lowrank.pt"

    # --- export and report --------------------------------------------------------------------------------------

    def onnx(self, candidate: str) -> Path:
        """The ONNX graph of an exported candidate (``student_int8``, ``static``, ...)."""
        return self.stage_dir("export") / f"{candidate}.onnx"

    def candidate_bundle(self, candidate: str) -> Path:
        """The exported candidate wrapped as a bundle the runtime loads (``evaluate.candidate_bundle`` fills it)."""
        return self.stage_dir("export") / "bundles" / candidate

    @property
    def parity_file(self) -> Path:
        return self.stage_dir("export") / "parity.json"

    @property
    def report_dir(self) -> Path:
        return self.stage_dir("ship")
