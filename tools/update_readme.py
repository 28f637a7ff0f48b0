"""Regenerate the generated parts of README.md (`make docs`): the settings tables and the compression stage list.

A development script, not part of the installed package: it sits above every layer and imports what it documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def sections() -> dict[str, Callable[[], str]]:
    """Marker name -> the Markdown between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""
    from sentimon.compression.pipeline import stage_list_markdown
    from sentimon.core.settings import markdown_table

    return {"settings": markdown_table, "compress-stages": stage_list_markdown}


def regenerate(text: str) -> str:
    for name, render in sections().items():
        text = re.sub(
            rf"<!-- {name}:start -->.*<!-- {name}:end -->",
            lambda _, name=name, render=render: f"<!-- {name}:start -->\n{render()}\n<!-- {name}:end -->",
            text,
            flags=re.S,
        )
    return text


if __name__ == "__main__":
    README.write_text(regenerate(README.read_text()))
