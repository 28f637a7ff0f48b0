"""Scoring runtime. Start here: ``inference.load(model).score(texts) -> list[Prediction]``.

``model`` is a bundle name under ``settings.inference.models_dir`` ("default": int8 transformer student, "static": the
static-embedding tier, "cascade": static first, student for unsure texts), a bundle directory, or "vader".
Bundle layout and validation: ``inference.bundle``; batching and long-text windows: ``inference.batching``.
Labelled data and metrics (accuracy, macro-F1, per-class F1, confusion; the binary-set rule):
``evaluate(scorer, read_labelled(path)) -> Metrics`` from ``inference.evaluation`` (calibration:
``expected_calibration_error``, ``reliability``); `sentimon eval` reports: ``inference.eval_report``; the behavioural
suite: ``inference.behaviour.run_suite(scorer)``; every loaded scorer checks languages first: ``inference.language``.
"""

from sentimon.inference.bundle import LABELS, BundleError, Manifest
from sentimon.inference.evaluation import LabelledSet, Metrics, evaluate, metrics, read_labelled
from sentimon.inference.loader import available_models, load
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Prediction, Scorer

__all__ = [
    "LABELS", "BundleError", "InferenceError", "LabelledSet", "Manifest", "Metrics", "Prediction", "Scorer",
    "available_models", "evaluate", "load", "metrics", "read_labelled",
]  # fmt: skip
