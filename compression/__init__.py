"""Model building: `load_recipe(path)` then `run(recipe, cache_dir, work_dir)` builds every candidate
(teacher, distilled transformer student, static tier, pruned), exports ONNX + INT8, evaluates them against
VADER in one run, and writes bundles (inference.bundle layout) and REPORT.md. Start reading at pipeline.py.
Needs the `train` extra (torch, onnx, scikit-learn, matplotlib): pip install 'sentimon[train]'.
"""

from .recipe import CompressionError, Recipe, load_recipe, shipped_recipes

__all__ = ["CompressionError", "Recipe", "load_recipe", "run", "shipped_recipes"]


def run(*args, **kwargs):
    """See compression.pipeline.run (imported lazily: it needs torch)."""
    try:
        from .pipeline import run as _run
    except ImportError as exc:
        raise CompressionError(f"building models needs the train extra ({exc.name} missing): "
                               "pip install 'sentimon[train]'") from None  # fmt: skip
    return _run(*args, **kwargs)
