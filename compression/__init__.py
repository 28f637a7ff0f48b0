"""Model building: `load_recipe(path)` then `run(recipe, cache_dir, work_dir)` walks the stage table `STAGES`
(data, teacher, students, pruning, ONNX + INT8 export, evaluation against VADER, bundles + REPORT.md), resuming
stages whose recipe sections are unchanged. Start reading at pipeline.py.
Running a build needs the `train` extra (torch, onnx, scikit-learn, matplotlib): pip install 'sentimon[train]'.
"""

from .pipeline import STAGES, Stage, run
from .recipe import CompressionError, Recipe, load_recipe, shipped_recipes

__all__ = ["STAGES", "CompressionError", "Recipe", "Stage", "load_recipe", "run", "shipped_recipes"]
