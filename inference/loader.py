"""``load(model)``: a name under models_dir, a bundle or cascade directory, or the built-in "vader"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentimon.inference.bundle import MANIFEST_FILE, BundleError
from sentimon.inference.cascade import CASCADE_FILE, CascadeScorer, read_cascade
from sentimon.inference.options import RuntimeOptions
from sentimon.inference.prediction import Scorer
from sentimon.core.settings import Settings, load_settings

BUILTIN = ("vader",)


def available_models(models_dir: Path) -> list[str]:
    """Names ``load`` accepts: built-ins plus every bundle or cascade directory under models_dir."""
    found = []
    if Path(models_dir).is_dir():
        found = sorted(
            p.name for p in Path(models_dir).iterdir() if (p / MANIFEST_FILE).is_file() or (p / CASCADE_FILE).is_file()
        )
    return [*BUILTIN, *found]


def resolve(model: str | Path, models_dir: Path) -> Path:
    """A model name or path -> the directory to load; BundleError naming what was looked for."""
    text = str(model)
    as_path = Path(text).expanduser()
    looks_like_path = isinstance(model, Path) or "/" in text or text.startswith(".") or as_path.is_dir()
    path = as_path if looks_like_path else Path(models_dir) / text
    if not path.exists():
        known = ", ".join(available_models(models_dir))
        what = f"model bundle {path}" if looks_like_path else f"no model named {text!r}: {path}"
        raise BundleError(f"{what} does not exist (models available: {known}); give a bundle path or a name")
    return path


def load(model: str | Path = "default", settings: Settings | None = None, **options: Any) -> Scorer:
    """Load a scorer. ``options`` override the inference_* settings (threads, max_batch, threshold, ...)."""
    settings = settings if settings is not None else load_settings()
    opts = RuntimeOptions.build(settings, options)
    if str(model) in BUILTIN:
        from sentimon.inference.vader import VaderScorer

        return VaderScorer()
    path = resolve(model, settings.models_dir)
    if (path / CASCADE_FILE).is_file():
        config = read_cascade(path)
        parts = []
        for ref in (config.fast, config.accurate):
            # A reference is a path relative to the cascade dir when one exists there, else a model name.
            local = path / ref
            parts.append(load(local if local.is_dir() else ref, settings, **{**options, "threshold": None}))
        threshold = opts.threshold if opts.threshold is not None else config.threshold
        return CascadeScorer(*parts, threshold=threshold, name=config.name, version=config.version)
    from sentimon.inference.onnx_scorer import OnnxScorer

    return OnnxScorer(path, opts)
