"""Scoring runtime. Start here: ``inference.load(model).score(texts) -> list[Prediction]``.

``model`` is a bundle name under ``settings.models_dir`` ("default": int8 transformer student, "static": the
static-embedding tier, "cascade": static first, student for unsure texts), a bundle directory, or "vader".
Bundle layout and validation: ``inference.bundle``; batching and long-text windows: ``inference.batching``.
"""

from sentimon.inference.bundle import LABELS, BundleError, Manifest
from sentimon.inference.loader import available_models, load
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Prediction, Scorer

__all__ = ["LABELS", "BundleError", "InferenceError", "Manifest", "Prediction", "Scorer", "available_models", "load"]
