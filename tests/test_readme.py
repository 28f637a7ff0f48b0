"""README.md's generated sections (settings tables, compression stages) match the code they describe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_sections_are_current() -> None:
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "tools" / "update_readme.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = (ROOT / "README.md").read_text()
    for name in script.sections():
        assert f"<!-- {name}:start -->" in readme and f"<!-- {name}:end -->" in readme, f"README lacks {name} markers"
    assert script.regenerate(readme) == readme, "README.md is stale: run `make docs`"
