"""The model bundle: a directory that carries everything needed to score (like an HF model folder).

    <bundle>/
        model.onnx        inputs int64 [batch, seq] named in manifest.inputs (input_ids, attention_mask
                          [, token_type_ids]); output "logits" float32 [batch, len(labels)] in manifest.labels order
        tokenizer.json    HF `tokenizers` fast-tokenizer file (the only tokenizer file the runtime reads)
        manifest.json     Manifest below: how it was built, what it scored, checksums of the files above
        README.md         the model card

Both kinds (a transformer student and the static-embedding tier) share this layout and I/O, so one
runtime scores either. ``compression`` writes bundles with ``write_manifest``; ``inference`` loads them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentimon.core.errors import UserError

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"
FORMAT_VERSION = 1
LABELS = ("negative", "neutral", "positive")


M = TypeVar("M", bound=BaseModel)


class BundleError(UserError):
    """A bundle is missing, incomplete or corrupt; the message names the file and the fix."""


class DataSource(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    sha256: str
    rows: int | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    format_version: int = FORMAT_VERSION
    name: str
    version: str
    kind: Literal["transformer", "static"]
    labels: list[str] = Field(default_factory=lambda: list(LABELS))
    max_length: int = Field(gt=0)
    inputs: list[str] = Field(default_factory=lambda: ["input_ids", "attention_mask"])
    teacher: dict[str, Any] = Field(default_factory=dict)  # name/path, architecture, its metrics
    data: list[DataSource] = Field(default_factory=list)
    build: dict[str, Any] = Field(default_factory=dict)  # command, config, seeds, git commit, date, host
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)  # test split -> accuracy, macro_f1, ...
    throughput: dict[str, Any] = Field(default_factory=dict)  # texts_per_s, batch size, threads, machine
    size_bytes: int | None = None
    files: dict[str, str] = Field(default_factory=dict)  # file name -> sha256

    @field_validator("labels")
    @classmethod
    def _three_labels(cls, labels: list[str]) -> list[str]:
        if sorted(labels) != sorted(LABELS):
            raise ValueError(f"labels must be a permutation of {list(LABELS)}, got {labels}")
        return labels


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(bundle_dir: Path, manifest: Manifest) -> Manifest:
    """Record checksums and size of the bundle's files, then write manifest.json; returns the final manifest."""
    files = {name: sha256_file(bundle_dir / name) for name in (MODEL_FILE, TOKENIZER_FILE)}
    size = sum((bundle_dir / name).stat().st_size for name in files)
    final = manifest.model_copy(update={"files": files, "size_bytes": size})
    (bundle_dir / MANIFEST_FILE).write_text(json.dumps(final.model_dump(mode="json"), indent=2) + "\n")
    return final


def read_json_model(path: Path, model: type[M], if_missing: str, fix: str = "") -> M:
    """Parse and validate a JSON file into ``model``; every problem is one BundleError naming the file."""
    try:
        return model.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise BundleError(f"{path} is missing: {if_missing}") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}){'; ' + fix if fix else ''}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{path} is invalid: {problems}") from None


def read_manifest(bundle_dir: Path, verify_files: bool = True) -> Manifest:
    """Validate a bundle directory and return its manifest; BundleError names what is wrong."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"model bundle {bundle_dir} is not a directory")
    manifest_path = bundle_dir / MANIFEST_FILE
    manifest = read_json_model(manifest_path, Manifest, "not a sentimon model bundle", "rebuild the bundle")
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path} has format_version {manifest.format_version}; this sentimon reads {FORMAT_VERSION}"
        )
    for name in (MODEL_FILE, TOKENIZER_FILE):
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"{path} is missing from the bundle; rebuild it with `sentimon compress`")
        expected = manifest.files.get(name)
        if verify_files and expected and sha256_file(path) != expected:
            raise BundleError(f"{path} does not match the sha256 in {MANIFEST_FILE}: the file is corrupt or was edited")
    return manifest
