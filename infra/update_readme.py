"""Regenerate the generated parts of README.md (`make docs`): the settings table."""

import re
from pathlib import Path

from sentimon.core.settings import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"

text = README.read_text()
text = re.sub(
    r"<!-- settings:start -->.*<!-- settings:end -->",
    lambda _: f"<!-- settings:start -->\n{markdown_table()}\n<!-- settings:end -->",
    text,
    flags=re.S,
)
README.write_text(text)
