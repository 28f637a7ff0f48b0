"""``load(model)``: a name under models_dir, a bundle or cascade directory, or the built-in "vader"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentimon.core.parts import InferenceSettings
from sentimon.inference.bundle import MANIFEST_FILE, BundleError
from sentimon.inference.cascade import CASCADE_FILE, CascadeScorer, read_cascade
from sentimon.inference.options import with_overrides
from sentimon.inference.prediction import Scorer
from sentimon.inference.registry.refs import is_ref

BUILTIN = ("vader",)


def available_models(models_dir: Path) -> list[str]:
    """Names ``load`` accepts: built-ins plus every bundle or cascade directory under models_dir."""
    found = []
    if Path(models_dir).is_dir():
        found = sorted(
            p.name for p in Path(models_dir).iterdir() if (p / MANIFEST_FILE).is_file() or (p / CASCADE_FILE).is_file()
        )
    return [*BUILTIN, *found]


def resolve(model: str | Path, models_dir: Path, registry: InferenceSettings | None = None) -> Path:
    """A model name, path or registry reference -> the directory to load; BundleError naming what was looked for.
    ``registry``: the settings naming the model registry (their defaults when None)."""
    text = str(model)
    as_path = Path(text).expanduser()
    looks_like_path = isinstance(model, Path) or "/" in text or text.startswith(".") or as_path.is_dir()
    # Model registry: NAME@VERSION, NAME@champion, NAME@candidate (inference.registry).
    if not looks_like_path and is_ref(text):
        from sentimon.inference.registry import resolve_ref

        return resolve_ref(text, registry or InferenceSettings())
    path = as_path if looks_like_path else Path(models_dir) / text
    if not path.exists():
        known = ", ".join(available_models(models_dir))
        what = f"model bundle {path}" if looks_like_path else f"no model named {text!r}: {path}"
        raise BundleError(f"{what} does not exist (models available: {known}); give a bundle path or a name")
    return path


def load(model: str | Path | None = None, settings: InferenceSettings | None = None, **options: Any) -> Scorer:
    """Load a scorer (``model`` None: ``settings.model``). ``settings`` is the settings' inference part, its
    defaults when None; ``options`` override its fields (threads, max_batch, threshold, languages, ...).

    The scorer checks each text's language first (``inference.language``) unless ``languages`` is empty."""
    opts = with_overrides(settings, options)
    scorer = _load(opts.model if model is None else model, opts)
    if not opts.languages:
        return scorer
    from sentimon.inference.language import LanguageGate, LanguageIdentifier

    return LanguageGate(scorer, LanguageIdentifier.from_settings(opts))


def _load(model: str | Path, opts: InferenceSettings) -> Scorer:
    if str(model) in BUILTIN:
        from sentimon.inference.vader import VaderScorer

        return VaderScorer()
    path = resolve(model, opts.models_dir, opts)
    if (path / CASCADE_FILE).is_file():
        config = read_cascade(path)
        # A reference is a path relative to the cascade dir when one exists there, else a model name.
        parts = opts.model_copy(update={"threshold": None})
        fast, accurate = (
            _load(path / ref if (path / ref).is_dir() else ref, parts) for ref in (config.fast, config.accurate)
        )
        threshold = opts.threshold if opts.threshold is not None else config.threshold
        return CascadeScorer(fast, accurate, threshold=threshold, name=config.name, version=config.version)
    from sentimon.inference.onnx_scorer import OnnxScorer

    return OnnxScorer(path, opts)
